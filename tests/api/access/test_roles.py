"""SPEC §1: who may do what. A missing role is FORBIDDEN, names the role, and writes nothing."""

import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support import flows
from tests.support.client import Api, event
from tests.support.server import api_for

SNAPSHOT = """
  id label status subject body feedbackMode validityPeriod scheduledAt requireApproval
  approvedBy approvedAt confirmedBy confirmedAt startedAt stoppedBy endedAt excludedCount
  warnings kpis { toSend processed sent pending failed statsComputedAt }
"""
EDIT = {
    "label": "Edited",
    "channel": "EMAIL",
    "subject": "Edited subject",
    "body": flows.BODY,
    "audience": {"profileIds": []},
}


@pytest.fixture
async def api(make_server: Callable[..., Any]) -> AsyncIterator[Api]:
    """Engine off: a confirmed delivery stays IN_PROGRESS, so pause/resume/stop can be tried."""
    async for client in api_for(await make_server(engine_enabled=False)):
        yield client


@dataclass(frozen=True)
class Case:
    mutation: str
    role: str
    denied: tuple[str, ...]
    state: str | None  # the delivery the mutation targets, if any
    query: str
    extra: tuple[tuple[str, Any], ...] = ()


NOT_PREPARERS = ("approver", "reader")
NOT_STARTERS = ("preparer", "approver", "reader")
CASES = [
    Case(
        "importProfiles",
        "PREPARE_DELIVERIES",
        NOT_PREPARERS,
        None,
        'mutation { importProfiles(profiles: [{email: "fresh@example.com"}]) { created } }',
    ),
    Case(
        "createDelivery",
        "PREPARE_DELIVERIES",
        NOT_PREPARERS,
        None,
        "mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) { id } }",
    ),
    Case(
        "updateDelivery",
        "PREPARE_DELIVERIES",
        NOT_PREPARERS,
        "READY",
        "mutation($id: ID!, $i: CreateDeliveryInput!)"
        " { updateDelivery(id: $id, input: $i) { id } }",
    ),
    Case(
        "deleteDelivery",
        "PREPARE_DELIVERIES",
        NOT_PREPARERS,
        "DRAFT",
        "mutation($id: ID!) { deleteDelivery(id: $id) }",
    ),
    Case(
        "prepareDelivery",
        "PREPARE_DELIVERIES",
        NOT_PREPARERS,
        "DRAFT",
        "mutation($id: ID!) { prepareDelivery(id: $id) { id } }",
    ),
    Case(
        "approveDelivery",
        "APPROVE_DELIVERIES",
        ("preparer", "starter", "reader"),
        "READY",
        "mutation($id: ID!) { approveDelivery(id: $id) { id } }",
        (("requireApproval", True),),
    ),
    Case(
        "confirmSend",
        "START_DELIVERIES",
        NOT_STARTERS,
        "READY",
        "mutation($id: ID!) { confirmSend(deliveryId: $id) { id } }",
    ),
    Case(
        "pauseDelivery",
        "START_DELIVERIES",
        NOT_STARTERS,
        "IN_PROGRESS",
        "mutation($id: ID!) { pauseDelivery(id: $id) { id } }",
    ),
    Case(
        "resumeDelivery",
        "START_DELIVERIES",
        NOT_STARTERS,
        "PAUSED",
        "mutation($id: ID!) { resumeDelivery(id: $id) { id } }",
    ),
    Case(
        "stopDelivery",
        "START_DELIVERIES",
        NOT_STARTERS,
        "SCHEDULED",
        "mutation($id: ID!) { stopDelivery(id: $id) { id } }",
    ),
    Case(
        "computeStats",
        "START_DELIVERIES",
        NOT_STARTERS,
        "IN_PROGRESS",
        "mutation($id: ID!) { computeStats(deliveryId: $id) { toSend } }",
    ),
    Case(
        "createOperator",
        "ADMINISTRATION",
        ("starter", "preparer", "approver", "reader"),
        None,
        'mutation { createOperator(name: "mallory", roles: [ADMINISTRATION]) { token } }',
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.mutation for c in CASES])
async def test_an_operator_without_the_role_is_forbidden_and_nothing_changes(
    api: Api, case: Case
) -> None:
    delivery_id = (
        await flows.delivery_in(api, case.state, **dict(case.extra)) if case.state else None
    )
    before = await flows.delivery(api, delivery_id, SNAPSHOT) if delivery_id else None
    count_before = (await api.gql("{ deliveries { totalCount } }"))["deliveries"]["totalCount"]
    variables: dict[str, Any] = {"id": delivery_id}
    if case.mutation in ("createDelivery", "updateDelivery"):
        variables["i"] = EDIT
    for who in case.denied:
        error = await api.error(case.query, variables, as_=who)
        assert error["extensions"]["code"] == "FORBIDDEN", (who, error)
        assert case.role in error["message"], (who, error)
        assert error["path"] == [case.mutation]

    if delivery_id:
        assert await flows.delivery(api, delivery_id, SNAPSHOT) == before
    count_after = (await api.gql("{ deliveries { totalCount } }"))["deliveries"]["totalCount"]
    assert count_after == count_before
    if case.mutation == "importProfiles":
        again = await api.gql(case.query)
        assert again["importProfiles"]["created"] == 1  # the refused import created nothing
    if case.mutation == "createOperator":
        await api.gql(case.query)  # the name is still free: the refused call created no one


async def test_confirm_send_without_the_role_gives_the_products_message(api: Api) -> None:
    delivery_id = await flows.delivery_in(api, "READY")
    error = await api.error(
        "mutation($id: ID!) { confirmSend(deliveryId: $id) { id } }",
        {"id": delivery_id},
        as_="preparer",
    )
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert "START_DELIVERIES" in error["message"]
    assert "confirm the send" in error["message"]


@pytest.mark.parametrize("who", ["starter", "preparer", "approver", "reader"])
async def test_sending_logs_are_for_administrators_only(api: Api, who: str) -> None:
    delivery_id = await flows.delivery_in(api, "READY")
    top = await api.raw(
        "query($id: ID!) { sendingLogs(deliveryId: $id)"
        " { totalCount edges { node { address } } } }",
        {"id": delivery_id},
        api.tokens[who],
    )
    assert [e["extensions"]["code"] for e in top["errors"]] == ["FORBIDDEN"]
    assert "ADMINISTRATION" in top["errors"][0]["message"]
    assert top["data"] == {"sendingLogs": None}  # nullable: an unknown delivery reads null too

    nested = await api.raw(
        "query($id: ID!) { delivery(id: $id) { id sendingLogs { edges { node { address } } } } }",
        {"id": delivery_id},
        api.tokens[who],
    )
    assert [e["extensions"]["code"] for e in nested["errors"]] == ["FORBIDDEN"]
    assert "ADMINISTRATION" in nested["errors"][0]["message"]
    assert "example.com" not in str(nested["data"])


async def test_finding_5_an_operator_without_a_role_sees_deliveries_and_their_figures_only(
    api: Api,
) -> None:
    ids = await flows.import_profiles(api, ["r1@example.com", "not-an-address"])
    delivery_id = (await flows.create_delivery(api, ids))["id"]
    await flows.prepare(api, delivery_id)
    data = await api.gql(
        "query($id: ID!) { delivery(id: $id) { status exclusions { reason count }"
        " kpis { toSend } auditTrail { totalCount } } deliveries { totalCount }"
        " kpis(deliveryId: $id) { toSend } me { roles } }",
        {"id": delivery_id},
        as_="reader",
    )
    assert data["delivery"]["status"] == "READY"
    assert data["delivery"]["exclusions"] == [{"reason": "INVALID_ADDRESS", "count": 1}]
    assert data["delivery"]["kpis"]["toSend"] == data["kpis"]["toSend"] == 1
    assert data["delivery"]["auditTrail"]["totalCount"] == 2
    assert data["deliveries"]["totalCount"] == 1
    assert data["me"]["roles"] == []

    # Profiles need a role (any of the four): the message names them.
    body = await api.raw(
        "query($p: ID!) { profile(id: $p) { email history { status } } }",
        {"p": ids[0]},
        api.tokens["reader"],
    )
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    message = body["errors"][0]["message"]
    assert all(role in message for role in ROLES), message
    assert body["data"] == {"profile": None}


ROLES = ("ADMINISTRATION", "PREPARE_DELIVERIES", "APPROVE_DELIVERIES", "START_DELIVERIES")
# Every way a role-less operator could try to reach a recipient (issue 11, finding 5).
RECIPIENT_PATHS = {
    "profile": "query($p: ID!) { profile(id: $p) { email history { address } } }",
    "sendingLogs": "query($d: ID!) { sendingLogs(deliveryId: $d)"
    " { edges { node { address messageId profile { email } } } } }",
    "Delivery.sendingLogs": "query($d: ID!) { delivery(id: $d)"
    " { sendingLogs { edges { node { address profile { email } } } } } }",
    "importProfiles": "mutation { importProfiles(profiles:"
    ' [{email: "r1@example.com"}]) { profiles { email history { address messageId } } } }',
    "auditEvents": "{ auditEvents { edges { node { detail } } } }",
    "quarantinedAddresses": "{ quarantinedAddresses { edges { node { address } } } }",
    "addressStatus": '{ addressStatus(address: "r1@example.com") { address quarantined } }',
}


async def bounced(api: Api) -> tuple[str, str, dict[str, Any]]:
    """A sent EFS delivery whose first recipient hard-bounced (and is quarantined): its id,
    that recipient's profile id and sending log."""
    ids = await flows.import_profiles(api, ["r1@example.com", "r2@example.com"])
    created = await flows.create_delivery(api, ids, feedbackMode="EFS")
    await flows.prepare(api, created["id"])
    await flows.confirm(api, created["id"])
    await flows.wait_for(api, created["id"], lambda d: d["status"] == "SENT")
    logs = {log["address"]: log for log in await flows.logs(api, created["id"])}
    first = logs["r1@example.com"]
    response = await api.feedback([event(first["messageId"], "hard_bounce", reason="USER_UNKNOWN")])
    assert response.status_code == 200, response.text
    return created["id"], ids[0], first


async def test_finding_5_no_path_leads_an_operator_without_a_role_to_a_recipient(
    live_api: Api,
) -> None:
    api = live_api
    delivery_id, profile_id, log = await bounced(api)
    for name, query in RECIPIENT_PATHS.items():
        variables = {k: v for k, v in (("p", profile_id), ("d", delivery_id)) if f"${k}" in query}
        body = await api.raw(query, variables, api.tokens["reader"])
        assert {e["extensions"]["code"] for e in body.get("errors", [])} == {"FORBIDDEN"}, name
        leaked = json.dumps(body["data"])
        assert "example.com" not in leaked and log["messageId"] not in leaked, (name, body)


async def test_finding_5_roles_read_profiles_and_history_but_failure_details_are_for_admins(
    live_api: Api,
) -> None:
    api = live_api
    delivery_id, profile_id, log = await bounced(api)
    history = "query($p: ID!) {{ profile(id: $p) {{ email history {{ {} }} }} }}"
    seen = "deliveryId status eventAt address retries profile { email }"
    admin = await api.gql(
        history.format(seen + " failureType failureReason messageId"), {"p": profile_id}
    )
    (entry,) = admin["profile"]["history"]
    assert (entry["deliveryId"], entry["status"]) == (delivery_id, "FAILED")
    assert (entry["failureType"], entry["failureReason"]) == ("HARD", "USER_UNKNOWN")
    assert entry["messageId"] == log["messageId"]
    for who in ("preparer", "approver", "starter"):
        data = await api.gql(history.format(seen), {"p": profile_id}, as_=who)
        assert data["profile"]["email"] == "r1@example.com"
        assert data["profile"]["history"] == [
            {k: entry[k] for k in ("deliveryId", "status", "eventAt", "address", "retries")}
            | {"profile": {"email": "r1@example.com"}}
        ]
        for field in ("failureType", "failureReason", "messageId"):
            body = await api.raw(history.format(field), {"p": profile_id}, api.tokens[who])
            assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], who
            assert "ADMINISTRATION" in body["errors"][0]["message"]
            assert body["data"]["profile"]["history"] == [{field: None}]


async def test_start_deliveries_may_do_all_that_prepare_deliveries_may_and_send(api: Api) -> None:
    as_ = "starter"
    imported = await api.gql(
        "mutation { importProfiles(profiles:"
        ' [{email: "s1@example.com"}, {email: "s2@example.com"}])'
        " { created profiles { id } } }",
        as_=as_,
    )
    ids = [p["id"] for p in imported["importProfiles"]["profiles"]]
    create = "mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) { id status } }"
    payload = {**EDIT, "audience": {"profileIds": ids}}
    delivery_id = (await api.gql(create, {"i": payload}, as_=as_))["createDelivery"]["id"]
    updated = await api.gql(
        "mutation($id: ID!, $i: CreateDeliveryInput!) { updateDelivery(id: $id, input: $i)"
        " { label } }",
        {"id": delivery_id, "i": {**payload, "label": "By starter"}},
        as_=as_,
    )
    assert updated["updateDelivery"]["label"] == "By starter"
    await api.gql(
        "mutation($id: ID!) { prepareDelivery(id: $id) { id } }", {"id": delivery_id}, as_=as_
    )
    sent = await flows.confirm(api, delivery_id, as_=as_)
    assert sent["status"] == "IN_PROGRESS"
    assert sent["confirmedBy"] == await flows.me(api, as_)
    for action, status in (
        ("pauseDelivery", "PAUSED"),
        ("resumeDelivery", "IN_PROGRESS"),
        ("stopDelivery", "STOPPED"),
    ):
        data = await api.gql(
            f"mutation($id: ID!) {{ {action}(id: $id) {{ status }} }}", {"id": delivery_id}, as_=as_
        )
        assert data[action]["status"] == status
    stats = await api.gql(
        "mutation($id: ID!) { computeStats(deliveryId: $id) { toSend statsComputedAt } }",
        {"id": delivery_id},
        as_=as_,
    )
    assert stats["computeStats"]["statsComputedAt"] is not None
    other = (await api.gql(create, {"i": payload}, as_=as_))["createDelivery"]["id"]
    deleted = await api.gql(
        "mutation($id: ID!) { deleteDelivery(id: $id) }", {"id": other}, as_=as_
    )
    assert deleted["deleteDelivery"] is True


async def test_administration_may_do_everything(api: Api) -> None:
    delivery_id = await flows.delivery_in(api, "READY", requireApproval=True)
    approved = await api.gql(
        "mutation($id: ID!) { approveDelivery(id: $id) { approvedBy } }", {"id": delivery_id}
    )
    assert approved["approveDelivery"]["approvedBy"] == await flows.me(api, "admin")
    assert (await flows.confirm(api, delivery_id, as_="admin"))["status"] == "IN_PROGRESS"
    for action in ("pauseDelivery", "resumeDelivery", "stopDelivery"):
        await api.gql(f"mutation($id: ID!) {{ {action}(id: $id) {{ id }} }}", {"id": delivery_id})
    await api.gql(
        "mutation($id: ID!) { computeStats(deliveryId: $id) { toSend } }", {"id": delivery_id}
    )
    logs = await api.gql(
        "query($id: ID!) { sendingLogs(deliveryId: $id) { totalCount } }", {"id": delivery_id}
    )
    assert logs["sendingLogs"]["totalCount"] == 2
    name = f"ops-{uuid.uuid4().hex[:6]}"
    created = await api.gql(
        "mutation($n: String!) { createOperator(name: $n, roles: [START_DELIVERIES])"
        " { token operator { name roles } } }",
        {"n": name},
    )
    payload = created["createOperator"]
    assert payload["operator"] == {"name": name, "roles": ["START_DELIVERIES"]}
    assert (await api.gql("{ me { name } }", as_=payload["token"]))["me"]["name"] == name


async def test_an_approver_may_approve_but_not_send(api: Api) -> None:
    delivery_id = await flows.delivery_in(api, "READY", requireApproval=True)
    await api.gql(
        "mutation($id: ID!) { approveDelivery(id: $id) { id } }",
        {"id": delivery_id},
        as_="approver",
    )
    assert (await flows.delivery(api, delivery_id, SNAPSHOT))["approvedBy"] == await flows.me(
        api, "approver"
    )
    error = await api.error(
        "mutation($id: ID!) { confirmSend(deliveryId: $id) { id } }",
        {"id": delivery_id},
        as_="approver",
    )
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert (await flows.delivery(api, delivery_id, SNAPSHOT))["status"] == "READY"


QUERIES = [
    "{ deliveries { totalCount } }",
    '{ delivery(id: "1") { id } }',
    '{ profile(id: "1") { id } }',
    "{ me { name } }",
    'mutation { importProfiles(profiles: [{email: "anon@example.com"}]) { created } }',
    'mutation { confirmSend(deliveryId: "1") { id } }',
    'mutation { createOperator(name: "anon", roles: [ADMINISTRATION]) { token } }',
]


async def test_no_token_or_a_bad_token_is_unauthenticated_on_queries_and_mutations(
    api: Api,
) -> None:
    delivery_id = await flows.delivery_in(api, "READY")
    assert delivery_id == "1"
    before = await flows.delivery(api, delivery_id, SNAPSHOT)
    bad_headers = ["Basic " + api.tokens["admin"], api.tokens["admin"], "Bearer", "Bearer x y"]
    for query in QUERIES:
        for token in (None, "not-a-token", api.tokens["admin"] + "x"):
            body = await api.raw(query, token=token)
            codes = [e["extensions"]["code"] for e in body["errors"]]
            assert codes == ["UNAUTHENTICATED"], (query, body)
            assert not any((body.get("data") or {}).values())  # nothing leaked
        for header in bad_headers:
            response = await api.http.post(
                "/graphql", json={"query": query}, headers={"Authorization": header}
            )
            codes = [e["extensions"]["code"] for e in response.json()["errors"]]
            assert codes == ["UNAUTHENTICATED"], (query, header)
    assert await flows.delivery(api, delivery_id, SNAPSHOT) == before
    again = await api.gql(
        'mutation { importProfiles(profiles: [{email: "anon@example.com"}]) { created } }'
    )
    assert again["importProfiles"]["created"] == 1
    await api.gql('mutation { createOperator(name: "anon", roles: []) { token } }')
