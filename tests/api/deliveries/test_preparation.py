"""SPEC §3: preparation resolves the audience into sending logs and excludes, with a reason."""

from collections import Counter
from typing import Any

from tests.support import flows
from tests.support.client import Api, event
from tests.support.server import RunningServer

IMPORT = (
    "mutation($p: [ProfileInput!]!) { importProfiles(profiles: $p)"
    " { profiles { id email phone } } }"
)
LOGS = (
    "query($id: ID!) { sendingLogs(deliveryId: $id, first: 500) { totalCount edges { node {"
    " address status failureType failureReason messageId excluded profile { id } } } } }"
)
REPORT = (
    "query($id: ID!) { delivery(id: $id) { status excludedCount exclusions { reason count }"
    " warnings kpis { toSend processed } } }"
)


async def import_rows(api: Api, rows: list[dict[str, Any]]) -> list[str]:
    data = await api.gql(IMPORT, {"p": rows})
    return [p["id"] for p in data["importProfiles"]["profiles"]]


async def all_logs(api: Api, delivery_id: str) -> list[dict[str, Any]]:
    data = await api.gql(LOGS, {"id": delivery_id})
    return [e["node"] for e in data["sendingLogs"]["edges"]]


async def report(api: Api, delivery_id: str) -> dict[str, Any]:
    return (await api.gql(REPORT, {"id": delivery_id}, as_="reader"))["delivery"]  # type: ignore[no-any-return]


async def prepared(api: Api, profile_ids: list[str], **extra: Any) -> str:
    delivery_id: str = (await flows.create_delivery(api, profile_ids, **extra))["id"]
    await flows.prepare(api, delivery_id)
    return delivery_id


async def relay_all(api: Api, delivery_id: str) -> dict[str, Any]:
    await flows.confirm(api, delivery_id)
    return await flows.wait_for(api, delivery_id, lambda d: d["status"] == "SENT")


async def test_preparation_excludes_duplicates_invalid_and_empty_addresses_with_a_reason(
    api: Api, server: RunningServer
) -> None:
    ids = await import_rows(
        api,
        [
            {"email": "ok1@example.com"},
            {"email": "ok2@example.com"},
            {"email": "OK1@Example.COM"},  # the same address as the first, in other case
            {"email": "not-an-address"},
            {"email": "a@b"},
            {"phone": "+33612345678"},  # no email
            {"email": "   "},  # blank: no email either
        ],
    )
    audience = [*ids, ids[1]]  # the second profile listed twice: targeted once (finding 10)
    delivery_id = await prepared(api, audience)

    summary = await report(api, delivery_id)
    assert summary["status"] == "READY"
    assert summary["kpis"]["toSend"] == 2
    assert summary["excludedCount"] == 5
    assert summary["exclusions"] == [
        {"reason": "ADDRESS_EMPTY", "count": 2},
        {"reason": "DUPLICATE", "count": 1},
        {"reason": "INVALID_ADDRESS", "count": 2},
    ]
    assert "1 repeated profileIds collapsed: each profile is targeted once" in summary["warnings"]

    logs = await all_logs(api, delivery_id)
    assert len(logs) == len(ids)
    by_profile: dict[str, list[dict[str, Any]]] = {}
    for log in logs:
        by_profile.setdefault(log["profile"]["id"], []).append(log)
    expected: dict[str, list[tuple[str, str | None, str | None]]] = {
        ids[0]: [("TO_SEND", None, None)],
        ids[1]: [("TO_SEND", None, None)],
        ids[2]: [("IGNORED", "IGNORED", "DUPLICATE")],  # the first profile keeps the address
        ids[3]: [("IGNORED", "HARD", "INVALID_ADDRESS")],
        ids[4]: [("IGNORED", "HARD", "INVALID_ADDRESS")],
        ids[5]: [("IGNORED", "HARD", "ADDRESS_EMPTY")],
        ids[6]: [("IGNORED", "HARD", "ADDRESS_EMPTY")],
    }
    for profile_id, wanted in expected.items():
        got = sorted(
            [
                (log["status"], log["failureType"], log["failureReason"])
                for log in by_profile[profile_id]
            ],
            key=str,
        )
        assert got == sorted(wanted, key=str), profile_id
    for log in logs:
        assert log["excluded"] is (log["status"] == "IGNORED")
        assert log["messageId"] is None
    assert {log["address"] for log in logs if not log["excluded"]} == {
        "ok1@example.com",
        "ok2@example.com",
    }

    done = await relay_all(api, delivery_id)
    assert done["kpis"]["processed"] == 2
    relayed = server.runtime.mta.relayed
    assert sorted(relayed.values()) == [1, 1]  # excluded recipients are never relayed
    after = Counter(log["status"] for log in await all_logs(api, delivery_id))
    assert after == {"SENT": 2, "IGNORED": 5}


async def test_a_quarantined_address_is_excluded_from_later_deliveries(api: Api) -> None:
    _, logs = await flows.sent_delivery(api, ["q@example.com", "fine@example.com"])
    [bounced] = [log for log in logs if log["address"] == "q@example.com"]
    response = await api.feedback(
        [event(bounced["messageId"], "hard_bounce", reason="USER_UNKNOWN")]
    )
    assert response.status_code == 200
    assert response.json()["accepted"] == 1

    ids = await import_rows(
        api, [{"email": "q@example.com"}, {"email": "fine@example.com"}, {"email": "Q@EXAMPLE.com"}]
    )
    delivery_id = await prepared(api, ids)
    summary = await report(api, delivery_id)
    assert summary["kpis"]["toSend"] == 1
    assert summary["exclusions"] == [{"reason": "QUARANTINED_ADDRESS", "count": 2}]
    states = {
        (log["address"], log["status"], log["failureType"], log["failureReason"])
        for log in await all_logs(api, delivery_id)
    }
    assert states == {
        ("fine@example.com", "TO_SEND", None, None),
        ("q@example.com", "IGNORED", "HARD", "QUARANTINED_ADDRESS"),
    }


async def test_an_sms_delivery_targets_phone_numbers(api: Api, server: RunningServer) -> None:
    ids = await import_rows(
        api,
        [
            {"email": "sms1@example.com", "phone": "+33 6 12 34 56 78"},
            {"phone": "06 98 76 54 32"},
            {"email": "nophone@example.com"},
            {"phone": "call me"},
            {"phone": "+33612345678"},  # the first number, written without spaces
            {"phone": "12"},  # too short to be a number
        ],
    )
    delivery_id = await prepared(api, ids, channel="SMS", subject=None, body="Sale today!")
    summary = await report(api, delivery_id)
    assert summary["kpis"]["toSend"] == 2
    assert summary["exclusions"] == [
        {"reason": "ADDRESS_EMPTY", "count": 1},
        {"reason": "DUPLICATE", "count": 1},
        {"reason": "INVALID_ADDRESS", "count": 2},
    ]
    targeted = {
        log["profile"]["id"]: log["address"]
        for log in await all_logs(api, delivery_id)
        if not log["excluded"]
    }
    assert targeted == {ids[0]: "+33612345678", ids[1]: "0698765432"}

    done = await relay_all(api, delivery_id)
    assert done["kpis"]["processed"] == 2
    assert sorted(server.runtime.mta.relayed.values()) == [1, 1]


async def test_preparation_fails_when_every_recipient_is_excluded(api: Api) -> None:
    ids = await import_rows(api, [{"email": "broken"}, {"phone": "+33612345678"}])
    for channel, subject in (("EMAIL", "Hi"), ("PUSH", "Hi")):
        delivery_id = (await flows.create_delivery(api, ids, channel=channel, subject=subject))[
            "id"
        ]
        error = await api.error(
            "mutation($id: ID!) { prepareDelivery(id: $id) { id } }", {"id": delivery_id}
        )
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert "no recipient" in error["message"]
        assert (await report(api, delivery_id))["status"] == "DRAFT"
        assert await all_logs(api, delivery_id) == []


async def test_an_all_profiles_audience_is_resolved_at_preparation(api: Api) -> None:
    await import_rows(api, [{"email": "all1@example.com"}, {"email": "all2@example.com"}])
    created = await api.gql(
        "mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) { id } }",
        {
            "i": {
                "label": "Everyone",
                "channel": "EMAIL",
                "subject": "Hi",
                "body": flows.BODY,
                "audience": {"allProfiles": True},
            }
        },
    )
    delivery_id = created["createDelivery"]["id"]
    await import_rows(api, [{"email": "late@example.com"}, {"email": "ALL1@example.com"}])
    await flows.prepare(api, delivery_id)
    summary = await report(api, delivery_id)
    assert summary["kpis"]["toSend"] == 3
    assert summary["exclusions"] == [{"reason": "DUPLICATE", "count": 1}]


async def test_preparing_again_after_an_edit_recomputes_the_target(api: Api) -> None:
    ids = await import_rows(api, [{"email": "r1@example.com"}, {"email": "bad"}])
    delivery_id = await prepared(api, ids)
    assert (await report(api, delivery_id))["exclusions"] == [
        {"reason": "INVALID_ADDRESS", "count": 1}
    ]
    await api.gql(
        "mutation($id: ID!, $i: CreateDeliveryInput!) { updateDelivery(id: $id, input: $i)"
        " { id } }",
        {
            "id": delivery_id,
            "i": {
                "label": "Again",
                "channel": "EMAIL",
                "subject": "Hi",
                "body": flows.BODY,
                "audience": {"profileIds": [ids[0], ids[0]]},
            },
        },
    )
    assert (await report(api, delivery_id))["exclusions"] == []
    await flows.prepare(api, delivery_id)
    summary = await report(api, delivery_id)
    assert summary["kpis"]["toSend"] == 1
    assert summary["exclusions"] == []  # the id listed twice is targeted once (finding 10)
    assert len(await all_logs(api, delivery_id)) == 1


CREATE = "mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) { id warnings } }"
UPDATE = (
    "mutation($id: ID!, $i: CreateDeliveryInput!) { updateDelivery(id: $id, input: $i)"
    " { id warnings } }"
)


async def test_finding_10_repeated_profile_ids_are_collapsed_and_the_list_as_sent_is_capped(
    api: Api,
) -> None:
    """The issue's probe: one id 100,000 times. It targets that profile once (not 99,999
    DUPLICATE logs) and the delivery says how many ids were collapsed; one more id is refused,
    repeats included, and writes nothing."""
    a, b = await import_rows(api, [{"email": "a@example.com"}, {"email": "b@example.com"}])
    draft = {"label": "Repeats", "channel": "EMAIL", "subject": "Hi", "body": flows.BODY}
    created = (await api.gql(CREATE, {"i": {**draft, "audience": {"profileIds": [a] * 100_000}}}))[
        "createDelivery"
    ]
    collapsed = "99999 repeated profileIds collapsed: each profile is targeted once"
    assert created["warnings"] == [collapsed]
    await flows.prepare(api, created["id"])
    summary = await report(api, created["id"])
    assert (summary["kpis"]["toSend"], summary["excludedCount"]) == (1, 0)
    assert summary["warnings"] == [collapsed]
    assert [log["address"] for log in await all_logs(api, created["id"])] == ["a@example.com"]

    edited = await api.gql(
        UPDATE, {"id": created["id"], "i": {**draft, "audience": {"profileIds": [b, a, b]}}}
    )
    assert edited["updateDelivery"]["warnings"] == [
        "1 repeated profileIds collapsed: each profile is targeted once"
    ]
    await flows.prepare(api, created["id"])
    assert sorted(log["address"] for log in await all_logs(api, created["id"])) == [
        "a@example.com",
        "b@example.com",
    ]
    edited = await api.gql(
        UPDATE, {"id": created["id"], "i": {**draft, "audience": {"profileIds": [a]}}}
    )
    assert edited["updateDelivery"]["warnings"] == []

    error = await api.error(CREATE, {"i": {**draft, "audience": {"profileIds": [a] * 100_001}}})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"] == ("at most 100000 profileIds (got 100001); use allProfiles for more")
    assert (await api.gql("{ deliveries { totalCount } }"))["deliveries"]["totalCount"] == 1
