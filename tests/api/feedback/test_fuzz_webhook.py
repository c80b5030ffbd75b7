"""Schema-driven fuzzing of `POST /mta/feedback` against docs/openapi-feedback.yaml.

schemathesis generates request bodies from the OpenAPI document: positive ones (valid batches)
and negative ones (bodies the document says are wrong). They go to a real uvicorn server over
HTTP, signed over the exact bytes sent (a `requests` auth hook runs after the body is
serialised), so that validation, not the signature check, is what the fuzzer meets; some go
unsigned or signed with another key. Positive batches mostly name the message ids of real
sending logs and fresh event ids, so events are applied, replayed and reordered for real; a few
get a blank or NUL-holding id, which the document's pattern refuses (schemathesis' negative
mode does not negate patterns).

Every answer must be documented (status, content type, body schema, headers) and not a 5xx; a
signed positive batch must be taken (200, `accepted + duplicates + unknown` = its events), a
signed negative one refused (400), an unsigned one 401. Around each case the database is read
directly: a refused request changed nothing at all, an accepted one recorded exactly `accepted`
events. At the end every delivery's counters still equal a recount (`computeStats` changes no
figure). FUZZ_SCALE multiplies the counts; FUZZ_SEED picks other cases.
"""

import asyncio
import hashlib
import os
import sqlite3
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from server.http.feedback import sign
from tests.support import flows
from tests.support.client import Api
from tests.support.server import SECRET, api_for

OPENAPI = Path(__file__).resolve().parents[3] / "docs" / "openapi-feedback.yaml"
SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
SEED = int(os.environ.get("FUZZ_SEED", "0"))
PHASES = [Phase.explicit, Phase.generate] + (
    [Phase.shrink] if os.environ.get("FUZZ_SHRINK") else []
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]

# (how the request is signed, generation mode, cases at FUZZ_SCALE=1)
# Generating a batch costs 30-50 ms here (hypothesis-jsonschema), against 15 ms for a GraphQL
# query, so this file runs fewer cases than tests/api/input/test_fuzz_graphql.py (1,000).
STREAMS: list[tuple[str, GenerationMode, int]] = [
    ("signed", GenerationMode.POSITIVE, 200),
    ("signed", GenerationMode.NEGATIVE, 60),
    ("unsigned", GenerationMode.POSITIVE, 20),
    ("wrong-key", GenerationMode.POSITIVE, 20),
]
MINIMUM_CASES = 300


@pytest.fixture
def db_kind() -> str:
    """SQLite only: the fuzzer looks for bad answers, not for dialect differences."""
    return "sqlite"


class Signature(requests.auth.AuthBase):
    """Sets X-Feedback-Signature over the prepared body: the exact bytes that go out."""

    def __init__(self, secret: str | None) -> None:
        self.secret = secret

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.pop("X-Feedback-Signature", None)
        if self.secret is not None:
            body = request.body or b""
            assert isinstance(body, str | bytes), "a streamed body cannot be signed here"
            request.headers["X-Feedback-Signature"] = sign(
                self.secret, body.encode() if isinstance(body, str) else body
            )
        return request


AUTH = {"signed": Signature(SECRET), "unsigned": Signature(None), "wrong-key": Signature("nope")}


@dataclass
class Tally:
    cases: int = 0
    by_stream: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)  # accepted / duplicates / unknown


class Database:
    """Reads the server's SQLite file directly (another connection, never a write)."""

    def __init__(self, url: str) -> None:
        self.path = url[len("sqlite://") :].split("?", 1)[0]

    def snapshot(self) -> tuple[int, str]:
        """The number of recorded events, and a digest of every log and delivery figure."""
        with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True) as conn:
            events = conn.execute("SELECT COUNT(*) FROM feedback_event").fetchone()[0]
            digest = hashlib.sha256()
            for table, sql in (
                (
                    "logs",
                    "SELECT id, status, failure_type, failure_reason, retries, event_at"
                    " FROM sending_log ORDER BY id",
                ),
                (
                    "deliveries",
                    "SELECT id, status, to_send, processed, sent, pending, failed"
                    " FROM delivery ORDER BY id",
                ),
                ("addresses", "SELECT * FROM address_status ORDER BY 1"),
            ):
                digest.update(table.encode())
                for row in conn.execute(sql):
                    digest.update(repr(row).encode())
        return int(events), digest.hexdigest()


# Strings the document's `pattern` refuses (blank, or holding a NUL). schemathesis' negative
# mode does not negate patterns, so the test plants these itself in a few valid batches.
NOT_TEXT = [" ", "\t\n", "\u00a0", "\u2003 ", "id\x00", "\x00"]


def steer(body: Any, data: st.DataObject, message_ids: list[str]) -> tuple[Any, bool]:
    """Most events name a real log and a fresh event id, so that they are applied; the rest
    keep what schemathesis drew (unknown messages, replayed ids). Returns the body and
    whether a field was spoiled with a string the document refuses."""
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        return body, False
    events = [item for item in body["events"] if isinstance(item, dict)]
    for item in events:
        if data.draw(st.integers(0, 3), label="real log") > 0:
            item["messageId"] = data.draw(st.sampled_from(message_ids), label="messageId")
            if data.draw(st.booleans(), label="fresh eventId"):
                item["eventId"] = f"fuzz-{uuid.uuid4()}"
    # Not 0: hypothesis draws the smallest value far more often than one time in ten.
    spoil = bool(events) and data.draw(st.integers(0, 9), label="spoil") == 5
    if spoil:
        item = data.draw(st.sampled_from(events), label="spoiled event")
        name = data.draw(st.sampled_from(["eventId", "messageId"]), label="spoiled field")
        item[name] = data.draw(st.sampled_from(NOT_TEXT), label="spoiled value")
    return body, spoil


def expect(
    how: str,
    case: schemathesis.Case[Any],
    response: Any,
    before: tuple[int, str],
    after: tuple[int, str],
    spoiled: bool,
) -> str:
    """What the contract says about this request; returns the outcome's name."""
    body = response.json()
    if how != "signed":
        assert response.status_code == 401, (response.status_code, body)
        assert after == before, "a refused request wrote something"
        return "401"
    body_mode = case.meta.components[ParameterLocation.BODY].mode if case.meta else None
    if body_mode is GenerationMode.NEGATIVE or spoiled:
        assert response.status_code == 400, f"accepted a bad batch {case.body!r}: {body}"
        assert after == before, f"a 400 wrote something: {case.body!r}"
        return "400"
    assert response.status_code == 200, f"refused a valid batch {case.body!r}: {body}"
    events = cast(dict[str, Any], case.body)["events"]
    assert body["accepted"] + body["duplicates"] + body["unknown"] == len(events), body
    assert after[0] - before[0] == body["accepted"], (before, after, body)
    return "200"


def fuzz(base_url: str, database: Database, message_ids: list[str]) -> Tally:
    """Runs in a worker thread (blocking HTTP) while the server serves on the test's loop."""
    schema = schemathesis.openapi.from_path(OPENAPI)
    schema.validate()  # the document itself is valid OpenAPI 3
    operation = schema["/mta/feedback"]["POST"]
    tally = Tally()
    session = requests.Session()

    def stream(index: int, how: str, mode: GenerationMode, examples: int) -> None:
        # The signature header is fixed here (and replaced when the request is signed), so that
        # a negative case is always a bad body, never just a mangled header.
        strategy = operation.as_strategy(
            generation_mode=mode, headers={"X-Feedback-Signature": "sha256=unsigned"}
        )

        @hypothesis.seed(SEED * 100 + index)
        @hypothesis.settings(
            max_examples=max(1, int(examples * SCALE)),
            deadline=None,
            database=None,
            phases=PHASES,
            suppress_health_check=list(HealthCheck),
            print_blob=True,
        )
        @given(case=strategy, data=st.data())
        def run(case: schemathesis.Case[Any], data: st.DataObject) -> None:
            spoiled = False
            if mode is GenerationMode.POSITIVE:
                case.body, spoiled = steer(case.body, data, message_ids)
            before = database.snapshot()
            response = case.call(base_url=base_url, session=session, auth=AUTH[how], timeout=30)
            after = database.snapshot()
            case.validate_response(response, checks=CHECKS)
            outcome = expect(how, case, response, before, after, spoiled)
            tally.cases += 1
            kind = "positive, one field spoiled" if spoiled else mode.value
            tally.by_stream[f"{how} {kind} -> {outcome}"] += 1
            if outcome == "200":
                tally.events.update({k: v for k, v in response.json().items()})

        run()

    for index, (how, mode, examples) in enumerate(STREAMS):
        stream(index, how, mode, examples)
    return tally


async def figures(api: Api, delivery_id: str) -> tuple[Any, ...]:
    kpis = (await flows.delivery(api, delivery_id))["kpis"]
    return tuple(kpis[k] for k in ("toSend", "processed", "sent", "pending", "failed"))


async def test_webhook_fuzz_answers_as_documented_and_writes_all_or_nothing(
    make_server: Callable[..., Any],
) -> None:
    running = await make_server(auth_failure_limit=1_000_000)
    async for api in api_for(running):
        deliveries: list[str] = []
        message_ids: list[str] = []
        for mode in ("EFS", "LEGACY"):
            done, logs = await flows.sent_delivery(
                api, [f"hook-{mode}{i}@example.com" for i in range(4)], feedbackMode=mode
            )
            deliveries.append(done["id"])
            message_ids += [log["messageId"] for log in logs]
        database = Database(running.settings.database_url)
        tally = await asyncio.to_thread(fuzz, running.base_url, database, message_ids)

        for delivery_id in deliveries:
            stored = await figures(api, delivery_id)
            await api.gql(
                "mutation($id: ID!) { computeStats(deliveryId: $id) { toSend } }",
                {"id": delivery_id},
            )
            assert await figures(api, delivery_id) == stored, "counters drifted from the logs"
    print(f"\nwebhook fuzz: {tally.cases} cases; events {dict(tally.events)}")
    for name, count in sorted(tally.by_stream.items()):
        print(f"  {count:5d}  {name}")
    planned = sum(int(max(1, n * SCALE)) for _, _, n in STREAMS)
    assert tally.cases >= min(planned, MINIMUM_CASES), f"only {tally.cases} cases ran"
    assert tally.events["accepted"] and tally.events["duplicates"] and tally.events["unknown"]
