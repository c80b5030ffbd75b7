"""Benchmark of the feedback webhooks: events/s through HTTP, beside the domain's own cost.

    .venv/bin/python bench/webhook.py                      # 20,000 events per endpoint
    .venv/bin/python bench/webhook.py --events 5000 --clients 8 --batch 100

1. The real server in a subprocess (`python -m server serve`, a temporary SQLite file,
   MTA_URL=capture://, FEEDBACK_MODE=EFS, SPARKPOST_WEBHOOK_AUTH set): 2 x N profiles imported,
   one delivery to all of them prepared, confirmed and relayed (capture reports nothing), and
   every message id read back through sendingLogs.
2. The baseline: a copy of that database (sqlite3's backup API, taken before any feedback)
   opened in this process with tortoise, and the first N messages' events applied by calling
   models.feedback.apply_feedback directly, one batch at a time: the domain's work without
   HTTP, JSON, authentication or the event bus.
3. The same N events posted to `POST /mta/feedback` (HMAC-signed) in batches, from a few
   concurrent clients; then N events for the other N messages posted to
   `POST /mta/feedback/sparkpost` in SparkPost's format (Basic auth). Bodies and signatures are
   built before the clock starts, so the figures are the server's. The time runs from the first
   request to the last answer.

Mix of events: 90 % delivered, 5 % hard bounces (USER_UNKNOWN: the address is quarantined),
5 % soft bounces (MAILBOX_FULL), one event per message.
"""

import argparse
import asyncio
import base64
import contextlib
import json
import platform
import shutil
import sqlite3
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from harness import (
    Client,
    command_line,
    environment,
    machine,
    operator_token,
    running_server,
    sending_logs,
    sent_to_all,
)
from tortoise import Tortoise

from models.enums import FailureReason, FeedbackType
from models.feedback import Event, apply_feedback
from server.db import tortoise_config
from server.http.feedback import sign

SPARKPOST_AUTH = "bench:bench-secret"
BODY = '<p>Hello</p><a href="https://example.com/offer">Offer</a>'


def kind_of(i: int) -> tuple[FeedbackType, FailureReason | None]:
    if i % 20 == 0:
        return FeedbackType.HARD_BOUNCE, FailureReason.USER_UNKNOWN
    if i % 20 == 1:
        return FeedbackType.SOFT_BOUNCE, FailureReason.MAILBOX_FULL
    return FeedbackType.DELIVERED, None


SPARKPOST_OF = {
    FeedbackType.DELIVERED: ("delivery", None),
    FeedbackType.HARD_BOUNCE: ("bounce", "10"),
    FeedbackType.SOFT_BOUNCE: ("bounce", "22"),
}


async def sent_delivery(client: Client, n: int) -> tuple[str, list[str]]:
    """Import n profiles, send one delivery to all, wait until relayed; the message ids."""
    delivery_id = await sent_to_all(client, n, "webhook bench", BODY)
    return delivery_id, [
        log["messageId"] for log in await sending_logs(client, delivery_id, "messageId")
    ]


def contract_events(ids: list[str], run: str) -> list[Event]:
    now = datetime.now(UTC)
    events = []
    for i, message_id in enumerate(ids):
        kind, reason = kind_of(i)
        events.append(Event(f"{run}-{i}", message_id, kind, now, reason))
    return events


def contract_bodies(
    events: list[Event], batch: int, secret: str
) -> list[tuple[bytes, dict[str, str]]]:
    out = []
    for start in range(0, len(events), batch):
        body = json.dumps(
            {
                "events": [
                    {
                        "eventId": e.event_id,
                        "messageId": e.message_id,
                        "type": e.type.value,
                        "timestamp": e.timestamp.isoformat(),
                        **({"reason": e.reason.value} if e.reason else {}),
                    }
                    for e in events[start : start + batch]
                ]
            }
        ).encode()
        headers = {"content-type": "application/json", "X-Feedback-Signature": sign(secret, body)}
        out.append((body, headers))
    return out


def sparkpost_bodies(ids: list[str], batch: int) -> list[tuple[bytes, dict[str, str]]]:
    auth = "Basic " + base64.b64encode(SPARKPOST_AUTH.encode()).decode()
    stamp = str(int(time.time()))
    out = []
    for start in range(0, len(ids), batch):
        items = []
        for i in range(start, min(len(ids), start + batch)):
            kind, bounce_class = SPARKPOST_OF[kind_of(i)[0]]
            raw: dict[str, Any] = {
                "type": kind,
                "event_id": str(10**15 + i),
                "message_id": f"000443ee1457{i:08x}",
                "transmission_id": "65832150921904138",
                "rcpt_to": f"u{i}@example.com",
                "rcpt_meta": {"delivery_message_id": ids[i]},
                "timestamp": stamp,
            }
            if bounce_class:
                raw["bounce_class"] = bounce_class
            items.append({"msys": {"message_event": raw}})
        out.append(
            (
                json.dumps(items).encode(),
                {"content-type": "application/json", "Authorization": auth},
            )
        )
    return out


@dataclass
class Run:
    events: int
    seconds: float
    requests: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds


async def post_all(
    base: str, path: str, bodies: list[tuple[bytes, dict[str, str]]], clients: int
) -> tuple[Run, dict[str, int]]:
    queue = list(reversed(bodies))
    totals: dict[str, int] = {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as http:

        async def worker() -> None:
            while queue:
                body, headers = queue.pop()
                response = await http.post(path, content=body, headers=headers)
                if response.status_code != 200:
                    raise RuntimeError(f"{path}: {response.status_code} {response.text}")
                for key, value in response.json().items():
                    totals[key] = totals.get(key, 0) + value

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        seconds = time.perf_counter() - start
    return Run(totals.get("accepted", 0), seconds, len(bodies)), totals


async def baseline(copy: Path, events: list[Event], batch: int) -> Run:
    await Tortoise.init(config=tortoise_config(f"sqlite://{copy}"))
    try:
        start = time.perf_counter()
        accepted = 0
        for first in range(0, len(events), batch):
            result = await apply_feedback(events[first : first + batch], datetime.now(UTC))
            accepted += result.accepted
        seconds = time.perf_counter() - start
    finally:
        await Tortoise.close_connections()
    return Run(accepted, seconds, -(-len(events) // batch))


@dataclass
class Results:
    delivery_id: str
    setup_s: float
    baseline: Run
    contract: Run
    sparkpost: Run
    kpis: dict[str, int]


async def measure(
    base: str, token: str, db: Path, secret: str, args: argparse.Namespace
) -> Results:
    n = args.events
    async with httpx.AsyncClient(base_url=base, timeout=600) as http:
        client = Client(http, token)
        start = time.perf_counter()
        delivery_id, ids = await sent_delivery(client, 2 * n)
        setup_s = time.perf_counter() - start
        copy = db.with_name("baseline.sqlite3")
        with (
            contextlib.closing(sqlite3.connect(db)) as src,
            contextlib.closing(sqlite3.connect(copy)) as dst,
        ):
            src.backup(dst)  # a consistent snapshot, WAL included, before any feedback

        events = contract_events(ids[:n], "bench")
        base_run = await baseline(copy, events, args.batch)
        contract, totals = await post_all(
            base, "/mta/feedback", contract_bodies(events, args.batch, secret), args.clients
        )
        assert totals.get("accepted") == n, totals
        sparkpost, sp_totals = await post_all(
            base, "/mta/feedback/sparkpost", sparkpost_bodies(ids[n:], args.batch), args.clients
        )
        assert sp_totals.get("accepted") == n, sp_totals
        data = await client.gql(
            "query($id: ID!) { delivery(id: $id) { kpis { sent failed pending } } }",
            {"id": delivery_id},
        )
        kpis = data["delivery"]["kpis"]
        delivered = sum(1 for i in range(n) if kind_of(i)[0] is FeedbackType.DELIVERED)
        assert kpis["sent"] == 2 * delivered and kpis["pending"] == 0, kpis
    return Results(delivery_id, setup_s, base_run, contract, sparkpost, kpis)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per endpoint")
    parser.add_argument("--batch", type=int, default=100, help="events per request")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    n = args.events
    print(
        f"machine: {machine()}, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )
    print(f"command: {command_line()}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-webhook-"))
    try:
        db = tmp / "server.sqlite3"
        secret = uuid.uuid4().hex
        env = environment(
            DATABASE_URL=f"sqlite://{db}",
            MTA_URL="capture://",
            FEEDBACK_SECRET=secret,
            FEEDBACK_MODE="EFS",
            SPARKPOST_WEBHOOK_AUTH=SPARKPOST_AUTH,
            ENGINE_TICK_SECONDS="0.05",
        )
        token = operator_token(env, tmp)
        with running_server(env, tmp) as server:
            results = asyncio.run(measure(server.base_url, token, db, secret, args))
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print(
        f"setup:    {2 * n:,} recipients imported, prepared and relayed in {results.setup_s:.1f} s"
    )
    print(
        f"events:   {n:,} per endpoint, batches of {args.batch}, {args.clients} concurrent clients;"
        " 90 % delivered, 5 % hard, 5 % soft"
    )
    base_run = results.baseline
    print(
        f"baseline: {base_run.rate:8,.0f} events/s  apply_feedback in-process on a copy of the"
        f" database, {base_run.requests} batches in a row ({base_run.seconds:.2f} s)"
    )
    for name, run in (
        ("POST /mta/feedback", results.contract),
        ("POST /mta/feedback/sparkpost", results.sparkpost),
    ):
        print(
            f"{name:29} {run.rate:8,.0f} events/s  ({run.requests} requests, {run.seconds:.2f} s)"
            f"  = {run.rate / base_run.rate:.2f} x baseline"
        )
    kpis = results.kpis
    print(f"kpis after both: sent {kpis['sent']:,}, failed {kpis['failed']:,}, pending 0")


if __name__ == "__main__":
    main()
