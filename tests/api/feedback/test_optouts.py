"""Complaints and unsubscribes (issue 15 §1) over the real API: the contract's webhook and the
product's own one-click link. Each one is recorded against the message's sending log once, counts
in the delivery's `complaints` / `unsubscriptions` (and `complaintRate` over sent), puts the
address on the deny list with its reason and time, and the next preparation excludes it. The
provider formats (SES `Complaint`, SparkPost `spam_complaint` / `*_unsubscribe`) are tested in
tests/api/feedback/test_webhook_ses.py and tests/api/feedback/test_webhook_sparkpost.py with the
helpers below."""

import asyncio
from datetime import UTC, datetime, timedelta

import httpx

from models.tracking import Token, TokenKind
from tests.support import clock, flows
from tests.support.client import Api, event
from tests.support.feedback_steps import (
    excluded_later,
    log_marks,
    opt_out_kpis,
    recounted,
    standing,
)
from tests.support.server import RunningServer
from tests.support.tracking import path


def same_instant(text: str | None, at: datetime) -> bool:
    return text is not None and abs(datetime.fromisoformat(text) - at) < timedelta(seconds=1)


async def test_webhook_complaints_and_unsubscribes_count_once_and_deny_list(api: Api) -> None:
    done, logs = await flows.sent_delivery(api, [f"o{i}@example.com" for i in range(4)])
    delivery_id = done["id"]  # LEGACY: every relayed log is SENT at once
    ids = {log["address"]: log["messageId"] for log in logs}
    complained = datetime(2025, 6, 2, 9, 30, tzinfo=UTC)
    first = [
        event(ids["o0@example.com"], "complaint", at=complained, event_id="c-1"),
        event(ids["o1@example.com"], "unsubscribe", event_id="u-1"),
        # the same recipient complains again, through another report: counts once
        event(ids["o0@example.com"], "complaint", event_id="c-2"),
    ]
    response = await api.feedback(first)
    assert response.json() == {"accepted": 3, "duplicates": 0, "unknown": 0}
    replay = await api.feedback(first)
    assert replay.json() == {"accepted": 0, "duplicates": 3, "unknown": 0}

    expected = {
        "toSend": 4,
        "sent": 4,
        "complaints": 1,
        "unsubscriptions": 1,
        "complaintRate": 25.0,
    }
    assert await opt_out_kpis(api, delivery_id) == expected
    assert await recounted(api, delivery_id) == expected
    marks = await log_marks(api, delivery_id)
    status, complained_at, unsubscribed_at = marks["o0@example.com"]
    assert status == "SENT" and unsubscribed_at is None  # no status changes
    assert same_instant(complained_at, complained)  # the first report's time
    assert marks["o1@example.com"][2] is not None and marks["o2@example.com"][1:] == (None, None)

    o0 = await standing(api, "o0@example.com")
    assert o0 is not None and o0["denylisted"] and o0["denylistReason"] == "COMPLAINT"
    assert same_instant(o0["denylistedAt"], complained) and not o0["quarantined"]
    o1 = await standing(api, "o1@example.com")
    assert o1 is not None and o1["denylistReason"] == "UNSUBSCRIBED"
    assert await standing(api, "o2@example.com") is None
    listed = await api.gql(
        "{ denylistedAddresses { totalCount edges { node { address denylistReason } } } }"
    )
    assert [e["node"] for e in listed["denylistedAddresses"]["edges"]] == [
        {"address": "o0@example.com", "denylistReason": "COMPLAINT"},
        {"address": "o1@example.com", "denylistReason": "UNSUBSCRIBED"},
    ]
    emails = [f"o{i}@example.com" for i in range(4)]
    assert await excluded_later(api, emails) == {
        "o0@example.com": "DENYLISTED",
        "o1@example.com": "DENYLISTED",
    }


async def test_a_bad_complaint_request_writes_nothing(api: Api) -> None:
    done, logs = await flows.sent_delivery(api, ["p0@example.com", "p1@example.com"])
    message_id = logs[0]["messageId"]
    before = await opt_out_kpis(api, done["id"])
    good = event(message_id, "complaint")
    bad_bodies = [
        [good, event(logs[1]["messageId"], "complaint", reason="USER_UNKNOWN")],  # no reason
        [good, event(logs[1]["messageId"], "hard_bounce", reason="MAILBOX_FULL")],  # soft only
        [good, event(logs[1]["messageId"], "soft_bounce", reason="DENYLISTED")],  # hard only
        [good, {**good, "eventId": "x", "type": "spam"}],
    ]
    for body in bad_bodies:
        response = await api.feedback(body)
        assert response.status_code == 400, response.text
        assert "reason" in response.json()["error"] or "type" in response.json()["error"]
    forged = await api.feedback([good], secret="not-the-secret")
    assert forged.status_code == 401
    assert await opt_out_kpis(api, done["id"]) == before
    assert await standing(api, "p0@example.com") is None
    # The same report, sent properly afterwards, is new (nothing was recorded).
    assert (await api.feedback([good])).json()["accepted"] == 1
    assert (await opt_out_kpis(api, done["id"]))["complaints"] == 1


async def test_concurrent_reports_of_one_recipient_count_once(api: Api) -> None:
    done, logs = await flows.sent_delivery(api, ["q0@example.com", "q1@example.com"])
    message_id = logs[0]["messageId"]
    responses = await asyncio.gather(
        *(api.feedback([event(message_id, "complaint")]) for _ in range(6)),
        *(api.feedback([event(message_id, "unsubscribe")]) for _ in range(6)),
    )
    assert all(r.json()["accepted"] == 1 for r in responses)
    kpis = await opt_out_kpis(api, done["id"])
    assert (kpis["complaints"], kpis["unsubscriptions"]) == (1, 1)
    assert await recounted(api, done["id"]) == kpis
    q0 = await standing(api, "q0@example.com")
    assert q0 is not None and q0["denylistReason"] in ("COMPLAINT", "UNSUBSCRIBED")


async def test_a_complaint_after_the_validity_period_still_deny_lists(api: Api) -> None:
    done, logs = await flows.sent_delivery(api, ["late@example.com"], validityPeriod=clock.VALIDITY)
    await clock.finished(api, done["id"])
    response = await api.feedback([event(logs[0]["messageId"], "complaint")])
    assert response.json()["accepted"] == 1
    assert (await opt_out_kpis(api, done["id"]))["complaints"] == 1
    late = await standing(api, "late@example.com")
    assert late is not None and late["denylistReason"] == "COMPLAINT"


async def test_our_unsubscribe_link_counts_once_and_an_administrator_can_take_it_back(
    server: RunningServer, api: Api
) -> None:
    done, logs = await flows.sent_delivery(api, ["u0@example.com", "u1@example.com"])
    delivery_id = done["id"]
    by_address = {log["address"]: int(log["id"]) for log in logs}
    target = path(
        server, Token(TokenKind.UNSUBSCRIBE, int(delivery_id), by_address["u0@example.com"])
    )
    query = (
        "subscription($d: ID!) { deploymentProgress(deliveryId: $d) { kpis { unsubscriptions } } }"
    )
    async with (
        api.subscribe(query, {"d": delivery_id}) as progress,
        httpx.AsyncClient(base_url=server.base_url) as http,
    ):
        first = await progress.next()
        assert first["data"]["deploymentProgress"]["kpis"]["unsubscriptions"] == 0
        for _ in range(2):  # a second click changes nothing
            assert (
                await http.post(target, content=b"List-Unsubscribe=One-Click")
            ).status_code == 200
        # live dashboards hear of it
        await progress.until(lambda d: d["deploymentProgress"]["kpis"]["unsubscriptions"] == 1)
    kpis = await opt_out_kpis(api, delivery_id)
    assert (kpis["unsubscriptions"], kpis["complaints"]) == (1, 0)
    assert await recounted(api, delivery_id) == kpis
    u0 = await standing(api, "u0@example.com")
    assert u0 is not None and u0["denylistReason"] == "UNSUBSCRIBED" and u0["denylistedAt"]

    removed = await api.gql(
        'mutation { removeFromDenylist(address: "u0@example.com") { denylisted denylistReason'
        " denylistedAt } }"
    )
    assert removed["removeFromDenylist"] == {
        "denylisted": False,
        "denylistReason": None,
        "denylistedAt": None,
    }
    trail = await api.gql(
        "{ auditEvents(action: ADDRESS_REMOVED_FROM_DENYLIST) { edges { node { detail } } } }"
    )
    assert len(trail["auditEvents"]["edges"]) == 1
    assert "u0@example.com" in str(trail["auditEvents"]["edges"][0]["node"]["detail"])
    assert await excluded_later(api, ["u0@example.com"]) == {}

    # The recipient unsubscribes again from the same email: back on the list, counted once.
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        assert (await http.post(target)).status_code == 200
    assert (await opt_out_kpis(api, delivery_id))["unsubscriptions"] == 1
    again = await standing(api, "u0@example.com")
    assert again is not None and again["denylistReason"] == "UNSUBSCRIBED"
    added = await api.gql(
        'mutation { denylistAddress(address: "u1@example.com") { denylistReason } }'
    )
    assert added["denylistAddress"] == {"denylistReason": "ADMINISTRATOR"}
