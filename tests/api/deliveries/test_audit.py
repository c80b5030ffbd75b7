"""The audit trail (docs/audit.md): who did what to each delivery and when, queryable.

Every committed action leaves one event written in its own transaction; a refused or failed
action leaves none; a deleted delivery keeps its history; only administrators read across
deliveries.
"""

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support import flows
from tests.support.client import Api, event
from tests.support.server import api_for

NODE = "id at action actor operatorId operatorName deliveryId deliveryLabel detail"
CONNECTION = f"totalCount pageInfo {{ hasNextPage endCursor }} edges {{ cursor node {{ {NODE} }} }}"
TRAIL = (
    "query($id: ID!, $f: Int, $a: String) { delivery(id: $id) { confirmedAt"
    f" auditTrail(first: $f, after: $a) {{ {CONNECTION} }} }} }}"
)
EVENTS = (
    "query($f: Int, $a: String, $d: ID, $o: ID, $x: AuditAction, $s: DateTime, $u: DateTime)"
    " { auditEvents(first: $f, after: $a, deliveryId: $d, operatorId: $o, action: $x,"
    f" since: $s, until: $u) {{ {CONNECTION} }} }}"
)
EDIT = {
    "label": "Edited offer",
    "channel": "EMAIL",
    "subject": "Edited",
    "body": flows.BODY,
    "audience": {"profileIds": []},
}


@pytest.fixture
async def api(make_server: Callable[..., Any]) -> AsyncIterator[Api]:
    """Engine off: a confirmed delivery stays IN_PROGRESS, so every operator action can run
    and the trail holds operators' actions only."""
    async for client in api_for(await make_server(engine_enabled=False)):
        yield client


async def whoami(api: Api, as_: str) -> dict[str, str]:
    return (await api.gql("{ me { id name } }", as_=as_))["me"]  # type: ignore[no-any-return]


async def mutate(api: Api, name: str, delivery_id: str, as_: str, arg: str = "id") -> None:
    await api.gql(
        f"mutation($id: ID!) {{ {name}({arg}: $id) {{ id }} }}", {"id": delivery_id}, as_=as_
    )


async def create(api: Api, as_: str, payload: dict[str, Any]) -> str:
    data = await api.gql(
        "mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) { id } }",
        {"i": payload},
        as_=as_,
    )
    return data["createDelivery"]["id"]  # type: ignore[no-any-return]


async def trail(api: Api, delivery_id: str, as_: str = "admin") -> list[dict[str, Any]]:
    data = await api.gql(TRAIL, {"id": delivery_id, "f": 500}, as_=as_)
    page = data["delivery"]["auditTrail"]
    assert not page["pageInfo"]["hasNextPage"]
    return [e["node"] for e in page["edges"]]


async def events(api: Api, **filters: Any) -> dict[str, Any]:
    """One page of auditEvents (as admin); filters: f a d o x s u (see EVENTS)."""
    return (await api.gql(EVENTS, filters))["auditEvents"]  # type: ignore[no-any-return]


async def total(api: Api) -> int:
    return int((await events(api, f=0))["totalCount"])


async def ready_delivery(api: Api, **extra: Any) -> str:
    ids = await flows.import_profiles(api, ["a@example.com", "b@example.com", "not-an-address"])
    delivery_id: str = (await flows.create_delivery(api, ids, **extra))["id"]
    await flows.prepare(api, delivery_id)
    return delivery_id


def when(node: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(node["at"])


async def test_each_action_is_recorded_with_its_operator_in_order(api: Api) -> None:
    who = {name: await whoami(api, name) for name in ("preparer", "approver", "starter", "admin")}
    ids = await flows.import_profiles(api, ["a@example.com", "b@example.com", "not-an-address"])
    audience = {"audience": {"profileIds": ids}, "requireApproval": True}
    delivery_id = await create(api, "preparer", {**EDIT, "label": "Spring offer", **audience})
    await api.gql(
        "mutation($id: ID!, $i: CreateDeliveryInput!) { updateDelivery(id: $id, input: $i)"
        " { id } }",
        {"id": delivery_id, "i": {**EDIT, **audience}},
        as_="preparer",
    )
    await mutate(api, "prepareDelivery", delivery_id, "preparer")
    await mutate(api, "approveDelivery", delivery_id, "approver")
    await mutate(api, "confirmSend", delivery_id, "starter", arg="deliveryId")
    await mutate(api, "pauseDelivery", delivery_id, "starter")
    await mutate(api, "resumeDelivery", delivery_id, "admin")
    await mutate(api, "stopDelivery", delivery_id, "starter")

    nodes = await trail(api, delivery_id, as_="reader")  # any operator may read a delivery's trail
    assert [(n["action"], n["operatorName"]) for n in nodes] == [
        ("CREATED", who["preparer"]["name"]),
        ("UPDATED", who["preparer"]["name"]),
        ("PREPARED", who["preparer"]["name"]),
        ("APPROVED", who["approver"]["name"]),
        ("CONFIRMED", who["starter"]["name"]),
        ("PAUSED", who["starter"]["name"]),
        ("RESUMED", who["admin"]["name"]),
        ("STOPPED", who["starter"]["name"]),
    ]
    by_name = {w["name"]: w["id"] for w in who.values()}
    for node in nodes:
        assert node["actor"] == "OPERATOR"
        assert node["operatorId"] == by_name[node["operatorName"]]
        assert node["deliveryId"] == delivery_id
    assert [n["deliveryLabel"] for n in nodes] == ["Spring offer"] + ["Edited offer"] * 7
    assert [n["detail"] for n in nodes] == [
        {"to": "DRAFT"},
        {"from": "DRAFT", "to": "DRAFT"},
        {"from": "DRAFT", "to": "READY", "toSend": 2, "excluded": 1},
        {},
        {"from": "READY", "to": "IN_PROGRESS", "toSend": 2},
        {"from": "IN_PROGRESS", "to": "PAUSED", "processed": 0},
        {"from": "PAUSED", "to": "IN_PROGRESS", "processed": 0},
        {"from": "IN_PROGRESS", "to": "STOPPED", "cancelled": 2},  # never relayed: engine off
    ]
    times = [when(n) for n in nodes]
    assert times == sorted(times) and all(t.tzinfo is not None for t in times)
    confirmed_at = (await api.gql(TRAIL, {"id": delivery_id}))["delivery"]["confirmedAt"]
    assert when(nodes[4]) == datetime.fromisoformat(confirmed_at)

    # The administrators' view of the same delivery: the same events, newest first.
    page = await events(api, d=delivery_id)
    assert page["totalCount"] == 8
    assert [e["node"] for e in page["edges"]] == nodes[::-1]


async def test_refused_or_failed_actions_record_nothing(api: Api) -> None:
    delivery_id = await ready_delivery(api)
    before = await total(api)
    refused = [
        # a missing role
        ("mutation($id: ID!) { confirmSend(deliveryId: $id) { id } }", "preparer", "FORBIDDEN"),
        ("mutation($id: ID!) { stopDelivery(id: $id) { id } }", "approver", "FORBIDDEN"),
        ("mutation($id: ID!) { deleteDelivery(id: $id) }", "reader", "FORBIDDEN"),
        # a wrong state
        ("mutation($id: ID!) { pauseDelivery(id: $id) { id } }", "starter", "INVALID_STATE"),
        ("mutation($id: ID!) { prepareDelivery(id: $id) { id } }", "preparer", "INVALID_STATE"),
        ("mutation($id: ID!) { approveDelivery(id: $id) { id } }", "approver", "INVALID_STATE"),
        # bad input and an unknown delivery
        ("mutation($id: ID!) { confirmSend(deliveryId: $id) { id } }", "starter", None),
    ]
    for query, as_, code in refused:
        variables = {"id": delivery_id if code else "999999"}
        error = await api.error(query, variables, as_=as_)
        assert error["extensions"]["code"] == (code or "NOT_FOUND"), (query, error)
    error = await api.error(
        "mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) { id } }",
        {"i": {**EDIT, "label": "  "}},
        as_="preparer",
    )
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert await total(api) == before

    # A preparation that fails its content checks leaves the delivery DRAFT, and no event.
    draft = (await flows.create_delivery(api, [], body="<p>no links</p>", subject=None))["id"]
    before = await total(api)
    error = await api.error("mutation($id: ID!) { prepareDelivery(id: $id) { id } }", {"id": draft})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert await total(api) == before

    # Two confirmations at once: one succeeds, one is INVALID_STATE, one event.
    results = await asyncio.gather(
        *[
            api.raw(
                "mutation($id: ID!) { confirmSend(deliveryId: $id) { id } }",
                {"id": delivery_id},
                api.tokens[as_],
            )
            for as_ in ("starter", "admin")
        ]
    )
    assert sorted(bool(r.get("errors")) for r in results) == [False, True]
    assert await total(api) == before + 1
    confirmed = (await events(api, d=delivery_id, x="CONFIRMED"))["edges"]
    assert len(confirmed) == 1


async def test_a_deleted_delivery_keeps_its_trail(api: Api) -> None:
    delivery_id = await ready_delivery(api, label="Short-lived")
    await api.gql("mutation($id: ID!) { deleteDelivery(id: $id) }", {"id": delivery_id})

    assert (await api.gql(TRAIL, {"id": delivery_id}))["delivery"] is None
    page = await events(api, d=delivery_id)
    assert [(e["node"]["action"], e["node"]["deliveryLabel"]) for e in page["edges"]] == [
        ("DELETED", "Short-lived"),
        ("PREPARED", "Short-lived"),
        ("CREATED", "Short-lived"),
    ]
    assert page["edges"][0]["node"]["detail"] == {"from": "READY"}
    assert all(e["node"]["deliveryId"] == delivery_id for e in page["edges"])


async def test_pages_follow_cursors_and_filters_combine(api: Api) -> None:
    admin, preparer = await whoami(api, "admin"), await whoami(api, "preparer")
    start = datetime.now(UTC)
    since = start.isoformat()
    ids = await flows.import_profiles(api, ["a@example.com"])
    created = [
        await create(
            api,
            "preparer" if index % 2 else "admin",
            {**EDIT, "label": f"D{index}", "audience": {"profileIds": ids}},
        )
        for index in range(5)
    ]
    await mutate(api, "prepareDelivery", created[0], "admin")

    # Every page of 2, newest first, no event twice, the same total on each page.
    pages, after = [], None
    while True:
        page = await events(api, f=2, a=after, s=since)  # not the operators created before
        pages.append(page)
        if not page["pageInfo"]["hasNextPage"]:
            break
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        after = page["pageInfo"]["endCursor"]
    nodes = [e["node"] for p in pages for e in p["edges"]]
    assert len(pages) == 3 and {p["totalCount"] for p in pages} == {6}
    assert [int(n["id"]) for n in nodes] == sorted((int(n["id"]) for n in nodes), reverse=True)
    assert [n["deliveryLabel"] for n in nodes] == ["D0", "D4", "D3", "D2", "D1", "D0"]

    # A delivery's trail pages oldest first.
    first = (await api.gql(TRAIL, {"id": created[0], "f": 1}))["delivery"]["auditTrail"]
    assert [e["node"]["action"] for e in first["edges"]] == ["CREATED"]
    assert first["pageInfo"]["hasNextPage"] and first["totalCount"] == 2
    rest = await api.gql(TRAIL, {"id": created[0], "f": 1, "a": first["pageInfo"]["endCursor"]})
    assert [e["node"]["action"] for e in rest["delivery"]["auditTrail"]["edges"]] == ["PREPARED"]

    def labels(page: dict[str, Any]) -> list[tuple[str, str]]:
        return [(e["node"]["action"], e["node"]["deliveryLabel"]) for e in page["edges"]]

    by_preparer = await events(api, o=preparer["id"])
    assert labels(by_preparer) == [("CREATED", "D3"), ("CREATED", "D1")]
    assert by_preparer["totalCount"] == 2
    assert labels(await events(api, o=admin["id"], x="PREPARED")) == [("PREPARED", "D0")]
    assert labels(await events(api, o=preparer["id"], x="PREPARED")) == []
    assert labels(await events(api, d=created[2], x="CREATED")) == [("CREATED", "D2")]
    assert (await events(api, s=start.isoformat()))["totalCount"] == 6
    assert (await events(api, u=since, x="CREATED"))["totalCount"] == 0
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (await events(api, s=later))["totalCount"] == 0

    for variables, message in [
        ({"a": "bm9wZTox"}, "not a valid cursor"),
        ({"a": base64.urlsafe_b64encode(b"AuditEvent:4294967296").decode()}, "not a valid"),
        ({"a": first["pageInfo"]["endCursor"], "d": "x"}, "not a valid delivery id"),
        ({"f": 501}, "'first' must be between 0 and 500"),
    ]:
        error = await api.error(EVENTS, variables)
        assert error["extensions"]["code"] == "BAD_USER_INPUT", error
        assert message in error["message"]


async def test_only_administrators_read_audit_events(api: Api) -> None:
    delivery_id = await ready_delivery(api)
    for as_ in ("starter", "preparer", "approver", "reader"):
        error = await api.error(EVENTS, {}, as_=as_)
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert "the ADMINISTRATION role is required" in error["message"]
        assert len(await trail(api, delivery_id, as_=as_)) == 2  # a delivery's own: anyone
    body = await api.raw(EVENTS, {})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_the_engines_steps_and_occurrence_confirmations_are_recorded(live_api: Api) -> None:
    api = live_api
    starter = await whoami(api, "starter")
    done, _ = await flows.sent_delivery(api, ["a@example.com", "b@example.com"])
    nodes = await trail(api, done["id"])
    assert [(n["action"], n["actor"]) for n in nodes] == [
        ("CREATED", "OPERATOR"),
        ("PREPARED", "OPERATOR"),
        ("CONFIRMED", "OPERATOR"),
        ("SENT", "ENGINE"),
    ]
    assert nodes[-1]["operatorId"] is None and nodes[-1]["operatorName"] is None
    assert nodes[-1]["detail"] == {"from": "IN_PROGRESS", "to": "SENT"}

    # A recurring delivery whose occurrences wait for a confirmation.
    ids = await flows.import_profiles(api, ["r@example.com"])
    recurrence = {"intervalSeconds": 1, "count": 1, "confirmEachOccurrence": True}
    parent = await flows.create_delivery(api, ids, label="Weekly", recurrence=recurrence)
    await flows.prepare(api, parent["id"])
    await flows.confirm(api, parent["id"])
    await flows.wait_for(api, parent["id"], lambda d: d["status"] == "FINISHED")
    (spawned,) = (await events(api, x="CREATED", f=1))["edges"]
    occurrence = spawned["node"]
    assert occurrence["actor"] == "ENGINE" and occurrence["deliveryLabel"] == "Weekly #1"
    assert occurrence["detail"] == {
        "to": "PENDING_CONFIRMATION",
        "parentId": int(parent["id"]),
        "occurrence": 1,
        "toSend": 1,
        "excluded": 0,
    }
    await flows.confirm(api, occurrence["deliveryId"], as_="starter")
    actions = await trail(api, occurrence["deliveryId"])
    assert [n["action"] for n in actions[:2]] == ["CREATED", "CONFIRMED"]
    confirmed = actions[1]
    assert (confirmed["operatorId"], confirmed["operatorName"]) == (starter["id"], starter["name"])
    assert confirmed["detail"] == {
        "from": "PENDING_CONFIRMATION",
        "to": "IN_PROGRESS",
        "toSend": 1,
        "scheduledAt": confirmed["detail"]["scheduledAt"],  # the occurrence's due time
        "parentId": int(parent["id"]),
    }
    parent_trail = await trail(api, parent["id"])
    assert [(n["action"], n["actor"]) for n in parent_trail][-1] == ("FINISHED", "ENGINE")


async def test_address_list_actions_are_recorded_without_a_delivery(live_api: Api) -> None:
    api = live_api
    admin = await whoami(api, "admin")
    done, logs = await flows.sent_delivery(api, ["gone@example.com"], feedbackMode="EFS")
    response = await api.feedback(
        [event(logs[0]["messageId"], "hard_bounce", reason="USER_UNKNOWN")]
    )
    assert response.status_code == 200, response.text

    await api.gql('mutation { denylistAddress(address: " Spam@Example.com") { address } }')
    await api.gql('mutation { removeFromDenylist(address: "spam@example.com") { address } }')
    await api.gql('mutation { releaseAddress(address: "gone@example.com") { address } }')
    before = await total(api)
    for mutation in ("releaseAddress", "removeFromDenylist"):  # NOT_FOUND now: no event
        error = await api.error(
            f'mutation {{ {mutation}(address: "gone@example.com") {{ address }} }}'
        )
        assert error["extensions"]["code"] == "NOT_FOUND"
    error = await api.error(
        'mutation { denylistAddress(address: "x@example.com") { address } }', as_="starter"
    )
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert await total(api) == before

    nodes = [e["node"] for e in (await events(api, f=3))["edges"]]
    assert [(n["action"], n["detail"]) for n in nodes] == [
        ("ADDRESS_RELEASED", {"address": "gone@example.com"}),
        ("ADDRESS_REMOVED_FROM_DENYLIST", {"address": "spam@example.com"}),
        ("ADDRESS_DENYLISTED", {"address": "spam@example.com"}),
    ]
    for node in nodes:
        assert node["deliveryId"] is None and node["deliveryLabel"] is None
        assert (node["operatorId"], node["operatorName"]) == (admin["id"], admin["name"])
    released = await events(api, x="ADDRESS_RELEASED")
    assert released["totalCount"] == 1
    assert done["id"] not in {e["node"]["deliveryId"] for e in released["edges"]}
