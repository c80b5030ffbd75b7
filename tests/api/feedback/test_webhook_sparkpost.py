"""Momentum / SparkPost event webhooks on `POST /mta/feedback/sparkpost`.

The recorded sample (tests/support/samples/sparkpost/batch.json) holds one event of each kind that
matters; its MESSAGE_ID_n placeholders become the message ids the capture MTA relayed. Rejected
requests must leave every log and KPI as they were, and the same events, sent validly after,
must be accepted as new.
"""

import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from models.enums import HARD_REASONS, IGNORED_REASONS, SOFT_REASONS
from models.reasons import Verdict
from server.http.sparkpost import BOUNCE_CLASSES, PATH, SparkPostWebhook
from server.settings import Settings
from tests.support import flows
from tests.support.client import Api
from tests.support.flows import efs_delivery
from tests.support.server import api_for

SAMPLES = Path(__file__).resolve().parents[2] / "support" / "samples" / "sparkpost"
AUTH = "hook-user:s3cret:with-colon"
DOCUMENTED_CLASSES = {1, 10, 20, 21, 22, 23, 24, 25, 26, 30, 40, 50, 51, 52, 53, 54, 60, 70, 80}
DOCUMENTED_CLASSES |= {90, 100}


def basic(credentials: str, scheme: str = "Basic") -> dict[str, str]:
    return {"Authorization": f"{scheme} {base64.b64encode(credentials.encode()).decode()}"}


async def post(api: Api, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await api.http.post(
        PATH,
        content=content,
        headers={
            "content-type": "application/json",
            **(basic(AUTH) if headers is None else headers),
        },
    )


def sample(message_ids: list[str]) -> list[dict[str, Any]]:
    """The recorded batch with our message ids in, and every time set to now."""
    text = (SAMPLES / "batch.json").read_text()
    for i, message_id in enumerate(message_ids):
        text = text.replace(f"MESSAGE_ID_{i}", message_id)
    batch: list[dict[str, Any]] = json.loads(text)
    for item in batch:
        for raw in item["msys"].values():
            raw["timestamp"] = str(int(time.time()))
    return batch


def sparkpost_event(message_id: str, event_id: str, kind: str = "delivery", **extra: Any) -> Any:
    raw = {
        "type": kind,
        "event_id": event_id,
        "timestamp": str(int(time.time())),
        "rcpt_meta": {"delivery_message_id": message_id},
        **extra,
    }
    return {"msys": {"message_event": raw}}


@pytest.fixture
async def hook(make_server: Callable[..., Any]) -> AsyncIterator[Api]:
    running = await make_server(sparkpost_webhook_auth=AUTH)
    async for api in api_for(running):
        yield api


async def quarantined(api: Api, emails: list[str]) -> set[str]:
    """Addresses a later delivery excludes as QUARANTINED_ADDRESS."""
    profile_ids = await flows.import_profiles(api, [*emails, "control@example.com"])
    created = await flows.create_delivery(api, profile_ids, label="Later offer")
    await flows.prepare(api, created["id"])
    return {
        log["address"]
        for log in await flows.logs(api, created["id"])
        if log["excluded"] and log["failureReason"] == "QUARANTINED_ADDRESS"
    }


def test_every_documented_bounce_class_has_a_row_on_spec_reasons() -> None:
    assert set(BOUNCE_CLASSES) == DOCUMENTED_CLASSES
    allowed = {Verdict.HARD: HARD_REASONS, Verdict.SOFT: SOFT_REASONS}
    allowed[Verdict.IGNORED] = IGNORED_REASONS
    for number, row in BOUNCE_CLASSES.items():
        assert row.reason in allowed[row.verdict], number


def test_credentials_without_a_colon_stop_the_server_at_start_up() -> None:
    settings = Settings(_env_file=None, sparkpost_webhook_auth="just-a-password")
    with pytest.raises(ValueError, match="SPARKPOST_WEBHOOK_AUTH"):
        SparkPostWebhook(settings, None)  # type: ignore[arg-type]


async def test_off_until_configured(api: Api) -> None:
    response = await post(api, json.loads((SAMPLES / "ping.json").read_text()))
    assert response.status_code == 404
    assert "SPARKPOST_WEBHOOK_AUTH" in response.json()["error"]


async def test_sample_batch_applies_by_event_type_and_bounce_class_and_replays_as_duplicates(
    hook: Api,
) -> None:
    delivery_id, ids = await efs_delivery(hook, 9)
    batch = sample(ids)
    response = await post(hook, batch)
    assert response.status_code == 200, response.text
    # 9 of ours and a complaint and an unsubscribe (tests/api/feedback/test_optouts.py); opens,
    # clicks,
    # injection and relay events skipped; one delivery without our id and one with an id no
    # log has.
    assert response.json() == {"accepted": 11, "duplicates": 0, "unknown": 2, "skipped": 4}

    logs = {log["messageId"]: log for log in await flows.logs(hook, delivery_id)}
    assert [flows.failure_state(logs[m]) for m in ids] == [
        ("SENT", None, None, 0),  # delivery
        ("FAILED", "HARD", "USER_UNKNOWN", 0),  # bounce, class 10
        ("FAILED", "SOFT", "MAILBOX_FULL", 1),  # bounce, class 22
        ("FAILED", "SOFT", "UNREACHABLE", 1),  # delay, class 24
        ("FAILED", "SOFT", "REFUSED", 1),  # bounce, class 50 (a block)
        ("PENDING", None, None, 0),  # out_of_band, class 60 (auto-reply): ignored
        ("PENDING", None, None, 0),  # policy_rejection, class 25: ignored
        ("FAILED", "SOFT", "INVALID_DOMAIN", 1),  # bounce, class 21
        ("PENDING", None, None, 0),  # generation_failure: ignored
    ]
    after = await flows.feedback_snapshot(hook, delivery_id)
    kpis = after[1]
    assert (kpis["sent"], kpis["failed"], kpis["pending"]) == (1, 5, 3)

    replay = await post(hook, batch)
    assert replay.json() == {"accepted": 0, "duplicates": 11, "unknown": 2, "skipped": 4}
    assert await flows.feedback_snapshot(hook, delivery_id) == after
    # The hard bounce quarantined its address; one soft bounce does not (threshold 5).
    assert await quarantined(hook, flows.addresses(9)) == {"efs1@example.com"}


async def test_bad_or_missing_basic_auth_gets_401_and_changes_nothing(hook: Api) -> None:
    delivery_id, (message_id,) = await efs_delivery(hook, 1)
    before = await flows.feedback_snapshot(hook, delivery_id)
    batch = [sparkpost_event(message_id, "1001", "bounce", bounce_class="10")]
    user, _, password = AUTH.partition(":")
    headers = {
        "missing": {},
        "wrong password": basic(f"{user}:nope"),
        "wrong user": basic(f"someone:{password}"),
        "password only": basic(password),
        "a longer secret": basic(AUTH + "x"),
        "bearer": {"Authorization": f"Bearer {AUTH}"},
        "not base64": {"Authorization": "Basic %%%"},
        "no scheme": {"Authorization": base64.b64encode(AUTH.encode()).decode()},
    }
    for name, header in headers.items():
        response = await post(hook, batch, header)
        assert response.status_code == 401, (name, response.text)
        assert response.headers["www-authenticate"].startswith("Basic"), name
        assert "accepted" not in response.json(), name
    assert await flows.feedback_snapshot(hook, delivery_id) == before

    accepted = await post(hook, batch, basic(AUTH, scheme="basic"))  # the scheme in any case
    assert accepted.json() == {"accepted": 1, "duplicates": 0, "unknown": 0, "skipped": 0}
    log = (await flows.logs(hook, delivery_id))[0]
    assert flows.failure_state(log) == ("FAILED", "HARD", "USER_UNKNOWN", 0)


async def test_malformed_bodies_get_400_and_change_nothing_and_the_ping_gets_200(
    hook: Api,
) -> None:
    delivery_id, (first, second) = await efs_delivery(hook, 2)
    before = await flows.feedback_snapshot(hook, delivery_id)
    good = [
        sparkpost_event(first, "2001", "bounce", bounce_class="22"),
        sparkpost_event(second, "2002"),
    ]

    def bad(**fields: Any) -> Any:
        event = sparkpost_event(first, "2003", "bounce", bounce_class="10")
        raw = event["msys"]["message_event"]
        raw.update(fields)
        for name in [k for k, v in raw.items() if v is None]:
            del raw[name]
        return event

    cases: dict[str, Any] = {
        "not JSON": b"[{not json",
        "not UTF-8": b"\xff\xfe\xfd",
        "an object, not an array": {"msys": {}},
        "an element not an object": ["delivery"],
        "no msys": [{"message_event": {}}],
        "msys not an object": [{"msys": []}],
        "an event not an object": [{"msys": {"message_event": "delivery"}}],
        "missing event_id": [bad(event_id=None)],
        "empty event_id": [bad(event_id="")],
        "event_id too long": [bad(event_id="9" * 200)],
        "missing timestamp": [bad(timestamp=None)],
        "bad timestamp": [bad(timestamp="yesterday")],
        "bounce_class not a number": [bad(bounce_class="ten")],
        "only the last event malformed": [*good, bad(timestamp="soon")],
    }
    for name, body in cases.items():
        response = await post(hook, body)
        assert response.status_code == 400, (name, response.text)
        assert response.json()["error"], name
    assert await flows.feedback_snapshot(hook, delivery_id) == before

    ping = await post(hook, json.loads((SAMPLES / "ping.json").read_text()))
    assert ping.status_code == 200, ping.text
    assert ping.json() == {"accepted": 0, "duplicates": 0, "unknown": 0, "skipped": 0}
    assert await flows.feedback_snapshot(hook, delivery_id) == before
    accepted = await post(hook, good)
    assert accepted.json() == {"accepted": 2, "duplicates": 0, "unknown": 0, "skipped": 0}


async def test_a_batch_larger_than_max_events_is_applied_in_chunks(hook: Api) -> None:
    delivery_id, (first, second) = await efs_delivery(hook, 2)
    batch = [
        sparkpost_event((first, second)[i % 2], str(10_000 + i), "delay", bounce_class="22")
        for i in range(1500)
    ]
    response = await post(hook, batch)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 1500, "duplicates": 0, "unknown": 0, "skipped": 0}
    logs = await flows.logs(hook, delivery_id)
    assert [flows.failure_state(log) for log in logs] == [
        ("FAILED", "SOFT", "MAILBOX_FULL", 750)
    ] * 2


async def test_complaints_and_unsubscribes_deny_list_and_count_once(hook: Api) -> None:
    """SparkPost `spam_complaint`, `list_unsubscribe` and `link_unsubscribe` (issue 15): the
    deny list with the reason, the KPIs (once per recipient), and nothing written on a bad
    request; an `fbtype` of not-spam is skipped."""
    from tests.support.feedback_steps import excluded_later, opt_out_kpis, recounted, standing

    delivery_id, ids = await efs_delivery(hook, 4, prefix="sp")
    complaint = sparkpost_event(ids[0], "sc-1", "spam_complaint", fbtype="abuse")
    list_unsub = sparkpost_event(ids[1], "lu-1", "list_unsubscribe")
    list_unsub["msys"] = {"unsubscribe_event": list_unsub["msys"]["message_event"]}
    link_unsub = sparkpost_event(ids[2], "ku-1", "link_unsubscribe")
    link_unsub["msys"] = {"unsubscribe_event": link_unsub["msys"]["message_event"]}
    not_spam = sparkpost_event(ids[3], "ns-1", "spam_complaint", fbtype="not-spam")
    batch = [complaint, list_unsub, link_unsub, not_spam]

    assert (await post(hook, batch, basic("hook-user:wrong"))).status_code == 401
    broken = [*batch, sparkpost_event(ids[3], "", "spam_complaint")]  # no event_id
    assert (await post(hook, broken)).status_code == 400
    assert (await opt_out_kpis(hook, delivery_id))["complaints"] == 0
    assert await standing(hook, "sp0@example.com") is None

    response = await post(hook, batch)
    assert response.json() == {"accepted": 3, "duplicates": 0, "unknown": 0, "skipped": 1}
    again = [sparkpost_event(ids[0], "sc-2", "spam_complaint"), *batch]  # a second complaint
    response = await post(hook, again)
    assert response.json() == {"accepted": 1, "duplicates": 3, "unknown": 0, "skipped": 1}
    kpis = await opt_out_kpis(hook, delivery_id)
    assert (kpis["complaints"], kpis["unsubscriptions"]) == (1, 2)
    assert await recounted(hook, delivery_id) == kpis
    reasons = {}
    for i in range(4):
        found = await standing(hook, f"sp{i}@example.com")
        reasons[i] = found and found["denylistReason"]
    assert reasons == {0: "COMPLAINT", 1: "UNSUBSCRIBED", 2: "UNSUBSCRIBED", 3: None}
    emails = [f"sp{i}@example.com" for i in range(4)]
    assert await excluded_later(hook, emails) == {e: "DENYLISTED" for e in emails[:3]}
