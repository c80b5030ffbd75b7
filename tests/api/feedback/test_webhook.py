"""The MTA feedback webhook of CONTRACT.md: signature, body validation, idempotency, limits.

Every rejected request must leave the logs, the KPIs and the record of seen event ids as they
were: the "nothing changed" checks compare both, then send the rejected events again, validly,
and expect them to be accepted as new.
"""

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from server.http.feedback import sign
from tests.support import flows
from tests.support.client import Api, event
from tests.support.flows import efs_delivery
from tests.support.flows import feedback_snapshot as snapshot
from tests.support.server import SECRET, api_for


async def log_of(api: Api, delivery_id: str, message_id: str) -> dict[str, Any]:
    (log,) = [x for x in await flows.logs(api, delivery_id) if x["messageId"] == message_id]
    return log


def body_of(events: Any) -> bytes:
    return json.dumps({"events": events}).encode()


async def accepted_as_new(api: Api, events: list[dict[str, Any]]) -> None:
    """The events were never recorded: sent validly now, every one is accepted."""
    response = await api.feedback(events)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": len(events), "duplicates": 0, "unknown": 0}


async def post_chunked(api: Api, body: bytes) -> httpx.Response:
    """Post a signed body without Content-Length (chunked), as a streaming client would."""

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    headers = {"content-type": "application/json", "X-Feedback-Signature": sign(SECRET, body)}
    return await api.http.post("/mta/feedback", content=chunks(), headers=headers)


async def test_missing_wrong_or_foreign_signatures_get_401_and_change_nothing(api: Api) -> None:
    delivery_id, (message_id,) = await efs_delivery(api, 1)
    before = await snapshot(api, delivery_id)
    events = [event(message_id, "soft_bounce", reason="MAILBOX_FULL")]
    body = body_of(events)
    signatures = {
        "missing": "",
        "wrong hex": "sha256=" + "0" * 64,
        "another secret": sign("not-the-secret", body),
        "another body": sign(SECRET, body + b" "),
        "no scheme prefix": sign(SECRET, body).removeprefix("sha256="),
        "garbage": "sha256=not-hex",
    }
    for name, signature in signatures.items():
        response = await api.feedback(body, signature=signature)
        assert response.status_code == 401, (name, response.text)
        assert "accepted" not in response.json(), name
    assert await snapshot(api, delivery_id) == before
    await accepted_as_new(api, events)


async def test_malformed_bodies_get_400_and_change_nothing(api: Api) -> None:
    delivery_id, (first, second) = await efs_delivery(api, 2)
    before = await snapshot(api, delivery_id)
    good = event(first, "soft_bounce", reason="MAILBOX_FULL")
    also_good = event(second, "hard_bounce", reason="USER_UNKNOWN")

    def changed(**fields: Any) -> dict[str, Any]:
        bad = {**event(first, "delivered"), **fields}
        return {k: v for k, v in bad.items() if v is not None}

    without_event_id = event(first, "delivered")
    del without_event_id["eventId"]
    cases: dict[str, bytes] = {
        "not JSON": b"{not json",
        "not UTF-8": b"\xff\xfe\xfd",
        "a list, not an object": json.dumps([good]).encode(),
        "no events key": json.dumps({"event": [good]}).encode(),
        "events not a list": json.dumps({"events": good}).encode(),
        "events null": json.dumps({"events": None}).encode(),
        "0 events": body_of([]),
        "1001 events": body_of([event(first, "delivered") for _ in range(1001)]),
        "missing eventId": body_of([without_event_id]),
        "empty eventId": body_of([changed(eventId="")]),
        "numeric eventId": body_of([changed(eventId=7)]),
        "missing messageId": body_of([changed(messageId=None)]),
        "bad type": body_of([changed(type="opened")]),
        "missing type": body_of([changed(type=None)]),
        "unknown reason": body_of([changed(type="hard_bounce", reason="NO_SUCH_REASON")]),
        "a reason only the product gives": body_of(
            [changed(type="hard_bounce", reason="CANCELLED")]
        ),
        "bad timestamp": body_of([changed(timestamp="yesterday at noon")]),
        "missing timestamp": body_of([changed(timestamp=None)]),
        "timestamp before year 1 in UTC": body_of([changed(timestamp="0001-01-01T00:00:00+01:00")]),
        "timestamp after 9999 in UTC": body_of([changed(timestamp="9999-12-31T23:59:59-01:00")]),
        "NUL in messageId": body_of([changed(messageId=first + "\x00")]),
        "NUL in eventId": body_of([changed(eventId="id\x00")]),
        "numeric timestamp": body_of([changed(timestamp=1700000000)]),
        "non-object event": body_of(["delivered"]),
        "only the last event malformed": body_of([good, also_good, changed(type="bounced")]),
    }
    for name, body in cases.items():
        response = await api.feedback(body)
        assert response.status_code == 400, (name, response.text)
        assert response.json()["error"], name
    assert await snapshot(api, delivery_id) == before
    await accepted_as_new(api, [good, also_good])


async def test_accepted_duplicates_and_unknown_are_counted_and_a_replay_changes_nothing(
    api: Api,
) -> None:
    delivery_id, (soft, delivered) = await efs_delivery(api, 2)
    bounce = event(soft, "soft_bounce", reason="MAILBOX_FULL")
    batch = [
        bounce,
        event(delivered, "delivered"),
        dict(bounce),  # the same eventId twice in one batch
        event("no-such-message@mta", "delivered"),
    ]
    response = await api.feedback(batch)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 2, "duplicates": 1, "unknown": 1}
    bounced = await log_of(api, delivery_id, soft)
    assert (bounced["status"], bounced["failureType"], bounced["retries"]) == ("FAILED", "SOFT", 1)
    after = await snapshot(api, delivery_id)
    assert after[1]["sent"] == 1 and after[1]["failed"] == 1 and after[1]["pending"] == 0

    replay = await api.feedback(batch)
    assert replay.status_code == 200, replay.text
    assert replay.json() == {"accepted": 0, "duplicates": 3, "unknown": 1}
    assert await snapshot(api, delivery_id) == after
    # A replay of the bounce alone, later, still changes nothing (no second retry counted).
    again = await api.feedback([{**bounce, "timestamp": datetime.now(UTC).isoformat()}])
    assert again.json() == {"accepted": 0, "duplicates": 1, "unknown": 0}
    assert await snapshot(api, delivery_id) == after


async def test_event_older_than_the_logs_last_event_changes_nothing(api: Api) -> None:
    delivery_id, (message_id,) = await efs_delivery(api, 1)
    now = datetime.now(UTC)
    await accepted_as_new(api, [event(message_id, "soft_bounce", reason="MAILBOX_FULL", at=now)])
    before = await snapshot(api, delivery_id)

    stale = event(message_id, "delivered", at=now - timedelta(minutes=1))
    await accepted_as_new(api, [stale])  # recorded, but out of order
    assert await snapshot(api, delivery_id) == before

    await accepted_as_new(api, [event(message_id, "delivered", at=now + timedelta(seconds=1))])
    assert (await log_of(api, delivery_id, message_id))["status"] == "SENT"


async def test_an_mta_clock_ahead_of_ours_does_not_freeze_the_log(api: Api) -> None:
    """A report dated in the future counts as received now, so later reports still apply."""
    delivery_id, (message_id,) = await efs_delivery(api, 1)
    ahead = datetime.now(UTC) + timedelta(days=365)
    await accepted_as_new(api, [event(message_id, "soft_bounce", reason="MAILBOX_FULL", at=ahead)])
    assert (await log_of(api, delivery_id, message_id))["status"] == "FAILED"
    await accepted_as_new(api, [event(message_id, "delivered")])
    assert (await log_of(api, delivery_id, message_id))["status"] == "SENT"


async def test_body_over_the_size_limit_gets_413_and_changes_nothing(
    make_server: Callable[..., Any],
) -> None:
    running = await make_server(max_body_bytes=4096)
    async for api in api_for(running):
        delivery_id, (message_id,) = await efs_delivery(api, 1)
        before = await snapshot(api, delivery_id)
        events = [event(message_id, "soft_bounce", reason="MAILBOX_FULL") for _ in range(40)]
        body = body_of(events)
        assert len(body) > 4096

        declared = await api.feedback(body)
        assert declared.status_code == 413, declared.text

        streamed = await post_chunked(api, body)
        assert streamed.status_code == 413, streamed.text

        assert await snapshot(api, delivery_id) == before
        small = await post_chunked(api, body_of(events[:1]))  # the same path, under the limit
        assert small.json() == {"accepted": 1, "duplicates": 0, "unknown": 0}


async def test_a_batch_of_1000_events_is_accepted_whole(api: Api) -> None:
    delivery_id, (first, second) = await efs_delivery(api, 2)
    start = datetime.now(UTC)
    events = [
        event((first, second)[i % 2], "soft_bounce", at=start + timedelta(milliseconds=i))
        for i in range(1000)
    ]
    response = await api.feedback(events)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 1000, "duplicates": 0, "unknown": 0}
    assert [log["retries"] for log in await flows.logs(api, delivery_id)] == [500, 500]


async def test_concurrent_batches_with_overlapping_event_ids_apply_each_event_once(
    api: Api,
) -> None:
    delivery_id, message_ids = await efs_delivery(api, 5)
    now = datetime.now(UTC)  # one timestamp, so that no event is older than another
    events = [
        event(message_ids[i % 5], "soft_bounce", reason="MAILBOX_FULL", at=now, event_id=f"e{i}")
        for i in range(40)
    ]
    responses = await asyncio.gather(
        *(api.feedback([events[i], events[i * 7 % 40]]) for i in range(40))
    )
    assert {r.status_code for r in responses} == {200}
    totals = Counter[str]()
    for response in responses:
        totals.update(response.json())
    assert totals == {"accepted": 40, "duplicates": 40, "unknown": 0}
    assert [log["retries"] for log in await flows.logs(api, delivery_id)] == [8] * 5
    kpis = (await flows.delivery(api, delivery_id))["kpis"]
    assert (kpis["pending"], kpis["failed"], kpis["bouncesAndErrorsRate"]) == (0, 5, 100.0)
