"""Delivery.allowedActions says what the mutations would do: every action it leaves out is
refused (FORBIDDEN or INVALID_STATE, nothing changed), for each operator and status a delivery
goes through, and the ones it lists succeed when taken."""

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support import flows
from tests.support.client import Api

ACTIONS = "query($id: ID!) { delivery(id: $id) { status version allowedActions } }"
OPERATORS = ("admin", "starter", "preparer", "approver", "reader")
EDIT = {"label": "Edited"}
MUTATIONS = {
    "PREPARE": "mutation($id: ID!) { prepareDelivery(id: $id) { id } }",
    "APPROVE": "mutation($id: ID!) { approveDelivery(id: $id) { id } }",
    "CONFIRM": "mutation($id: ID!) { confirmSend(deliveryId: $id) { id } }",
    "PAUSE": "mutation($id: ID!) { pauseDelivery(id: $id) { id } }",
    "RESUME": "mutation($id: ID!) { resumeDelivery(id: $id) { id } }",
    "STOP": "mutation($id: ID!) { stopDelivery(id: $id) { id } }",
    "EDIT": "mutation($id: ID!, $i: UpdateDeliveryInput!) { updateDelivery(id: $id, patch: $i)"
    " { id } }",
    "DELETE": "mutation($id: ID!) { deleteDelivery(id: $id) }",
    "COMPUTE_STATS": "mutation($id: ID!) { computeStats(deliveryId: $id) { toSend } }",
}


async def allowed(api: Api, delivery_id: str, as_: str) -> tuple[str, list[str]]:
    found = (await api.gql(ACTIONS, {"id": delivery_id}, as_=as_))["delivery"]
    return found["status"], found["allowedActions"]


async def check_refusals(api: Api, delivery_id: str) -> dict[str, list[str]]:
    """Every operator's allowed actions; each action left out is refused and changes nothing."""
    before = (await api.gql(ACTIONS, {"id": delivery_id}))["delivery"]
    lists = {}
    for who in OPERATORS:
        _, actions = await allowed(api, delivery_id, who)
        lists[who] = actions
        for action, mutation in MUTATIONS.items():
            if action in actions:
                continue
            error = await api.error(mutation, {"id": delivery_id, "i": EDIT}, as_=who)
            assert error["extensions"]["code"] in {"FORBIDDEN", "INVALID_STATE"}, (who, action)
    assert (await api.gql(ACTIONS, {"id": delivery_id}))["delivery"] == before
    return lists


async def take(api: Api, delivery_id: str, action: str, who: str) -> None:
    assert action in (await allowed(api, delivery_id, who))[1]
    await api.gql(MUTATIONS[action], {"id": delivery_id, "i": EDIT}, as_=who)


async def test_allowed_actions_follow_the_status_and_the_roles(api: Api) -> None:
    ids = await flows.import_profiles(api, ["aa1@example.com", "aa2@example.com"])
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    delivery_id = (await flows.create_delivery(api, ids, requireApproval=True, scheduledAt=later))[
        "id"
    ]

    draft = await check_refusals(api, delivery_id)
    assert draft["reader"] == [] and draft["approver"] == []
    assert draft["preparer"] == ["PREPARE", "EDIT", "DELETE"]
    assert draft["starter"] == ["PREPARE", "EDIT", "DELETE", "COMPUTE_STATS"]
    assert draft["admin"] == draft["starter"]

    await take(api, delivery_id, "PREPARE", "preparer")
    ready = await check_refusals(api, delivery_id)  # approval required: no CONFIRM yet
    assert ready["preparer"] == ["EDIT", "DELETE", "SEND_PROOF"]
    assert ready["approver"] == ["APPROVE"]
    assert "CONFIRM" not in ready["starter"]

    await take(api, delivery_id, "APPROVE", "approver")
    approved = await check_refusals(api, delivery_id)
    assert approved["approver"] == []
    assert approved["starter"] == ["CONFIRM", "EDIT", "DELETE", "SEND_PROOF", "COMPUTE_STATS"]

    await take(api, delivery_id, "CONFIRM", "starter")
    scheduled = await check_refusals(api, delivery_id)
    assert scheduled["starter"] == ["STOP", "COMPUTE_STATS"]
    assert scheduled["preparer"] == scheduled["reader"] == []

    await take(api, delivery_id, "STOP", "starter")
    stopped = await check_refusals(api, delivery_id)
    assert stopped["admin"] == ["COMPUTE_STATS"]


async def test_allowed_actions_are_read_where_the_delivery_is_read(api: Api) -> None:
    """The same list through the list query and a mutation's answer (a cache reads it)."""
    ids = await flows.import_profiles(api, ["ab@example.com"])
    delivery_id = (await flows.create_delivery(api, ids))["id"]
    listed: Any = await api.gql(
        "{ deliveries(first: 5) { edges { node { id allowedActions } } } }", as_="preparer"
    )
    assert listed["deliveries"]["edges"][0]["node"] == {
        "id": delivery_id,
        "allowedActions": ["PREPARE", "EDIT", "DELETE"],
    }
    prepared = await api.gql(
        "mutation($id: ID!) { prepareDelivery(id: $id) { id status allowedActions } }",
        {"id": delivery_id},
        as_="preparer",
    )
    assert prepared["prepareDelivery"]["allowedActions"] == ["EDIT", "DELETE", "SEND_PROOF"]
