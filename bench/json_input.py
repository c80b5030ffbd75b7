"""Benchmark of the JSON parser every endpoint uses (issue 11, finding 12), beside json.loads.

    .venv/bin/python bench/json_input.py

server/http/json_input.py adds checks to json.loads (UTF-8, nesting depth, lone surrogates, and
NUL for GraphQL). This measures what they cost on the bodies the server gets, against plain
`json.loads` of the same bytes in the same run (the baseline), best of 5 rounds each:
- a small GraphQL request (the dashboard's kind);
- a feedback batch of 1,000 events (`/mta/feedback`, the largest batch allowed);
- a SparkPost batch of 1,000 events with 30 fields each, and one with escaped emoji (which
  makes the lone-surrogate search run);
- an importProfiles request of 10,000 profiles (GraphQL, `storable`).
It also times the refusal of 200,000 `[` (the finding's probe), which json.loads answers with
RecursionError.
"""

import json
import sys
import time
from collections.abc import Callable
from typing import Any

from harness import command_line, machine

from server.http import json_input


def best(call: Callable[[], Any], rounds: int = 5, number: int = 20) -> float:
    """Seconds per call, the best of `rounds` rounds of `number` calls."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(number):
            call()
        times.append((time.perf_counter() - started) / number)
    return min(times)


def refusal(body: bytes, **options: Any) -> Callable[[], Any]:
    def call() -> Any:
        try:
            return json_input.loads(body, **options)
        except json_input.InvalidJson as error:
            return error

    return call


def plain(body: bytes) -> Callable[[], Any]:
    def call() -> Any:
        try:
            return json.loads(body)
        except RecursionError as error:
            return error

    return call


def bodies() -> dict[str, tuple[bytes, bool]]:
    """name -> (body, storable)"""
    feedback = [
        {
            "eventId": f"e{i}",
            "messageId": f"d1.{i}@delivery.local",
            "type": "hard_bounce",
            "reason": "USER_UNKNOWN",
            "timestamp": "2026-01-01T00:00:00Z",
        }
        for i in range(1000)
    ]

    def sparkpost(extra: str) -> list[dict[str, Any]]:
        return [
            {
                "msys": {
                    "message_event": {
                        "type": "bounce",
                        "event_id": str(i),
                        "timestamp": "1700000000",
                        "bounce_class": "10",
                        "rcpt_meta": {"delivery_message_id": f"d1.{i}@delivery.local"},
                        **{f"field{j}": f"value {j}{extra}" for j in range(25)},
                    }
                }
            }
            for i in range(1000)
        ]

    profiles = [
        {"email": f"user{i}@example.com", "firstName": f"First{i}", "lastName": "Last"}
        for i in range(10_000)
    ]
    query = "mutation($p: [ProfileInput!]!) { importProfiles(profiles: $p) { created } }"
    return {
        "GraphQL { me { name } }": (
            json.dumps({"query": "{ me { name roles } }", "variables": {}}).encode(),
            True,
        ),
        "feedback, 1,000 events": (json.dumps({"events": feedback}).encode(), False),
        "SparkPost, 1,000 events x 30 fields": (json.dumps(sparkpost("")).encode(), False),
        "SparkPost, the same with escaped emoji": (
            json.dumps(sparkpost(" \U0001f600")).encode(),  # ensure_ascii: \ud83d\ude00
            False,
        ),
        "importProfiles, 10,000 profiles": (
            json.dumps({"query": query, "variables": {"p": profiles}}).encode(),
            True,
        ),
        "200,000 [ (refused)": (b"[" * 200_000, False),
    }


def main() -> None:
    print(f"$ {command_line()}\n{machine()}, Python {sys.version.split()[0]}\n")
    print(f"{'body':42} {'bytes':>10} {'json.loads':>12} {'json_input':>12} {'ratio':>6}")
    for name, (body, storable) in bodies().items():
        number = 2000 if len(body) < 1000 else 10
        baseline = best(plain(body), number=number)
        checked = best(refusal(body, storable=storable), number=number)
        print(
            f"{name:42} {len(body):>10,} {baseline * 1e3:>9.3f} ms {checked * 1e3:>9.3f} ms"
            f" {checked / baseline:>5.2f}x"
        )


if __name__ == "__main__":
    main()
