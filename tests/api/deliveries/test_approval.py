"""Issue 11, finding 8: an approval cannot be undone by the preparer, and confirmSend sends
only what the confirmer reviewed.

Only an approver (APPROVE_DELIVERIES) or an administrator may turn requireApproval off; an edit
drops the approval; `Delivery.version` goes up on every edit, preparation and approval, and
`confirmSend(deliveryId, version)` refuses a delivery that changed since that version.
"""

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from tortoise import Tortoise
from tortoise.migrations.api import migrate

from models.sql import Sql
from server.db import apply_migrations, tortoise_config
from tests.support import flows
from tests.support.client import Api
from tests.support.databases import fresh_database
from tests.support.server import api_for

FIELDS = "status version requireApproval approvedBy approvedAt kpis { toSend }"
READ = f"query($id: ID!) {{ delivery(id: $id) {{ {FIELDS} }} }}"
UPDATE = (
    "mutation($id: ID!, $i: CreateDeliveryInput!)"
    f" {{ updateDelivery(id: $id, input: $i) {{ {FIELDS} }} }}"
)
PREPARE = f"mutation($id: ID!) {{ prepareDelivery(id: $id) {{ {FIELDS} }} }}"
APPROVE = f"mutation($id: ID!) {{ approveDelivery(id: $id) {{ {FIELDS} }} }}"
CONFIRM = (
    "mutation($id: ID!, $v: Int) { confirmSend(deliveryId: $id, version: $v) { status version } }"
)
BEFORE = "0004_claim_order_index"  # the last migration without delivery.version
CONFIRMED = "query($id: ID!) { auditEvents(deliveryId: $id, action: CONFIRMED) { totalCount } }"


@pytest.fixture
async def api(make_server: Callable[..., Any]) -> AsyncIterator[Api]:
    """Engine off: a confirmed delivery stays IN_PROGRESS."""
    async for client in api_for(await make_server(engine_enabled=False)):
        yield client


def edit(profile_ids: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "label": "Spring offer",
        "channel": "EMAIL",
        "subject": "Hello",
        "body": flows.BODY,
        "audience": {"profileIds": profile_ids},
        **extra,
    }


async def read(api: Api, delivery_id: str) -> dict[str, Any]:
    return (await api.gql(READ, {"id": delivery_id}))["delivery"]  # type: ignore[no-any-return]


async def approved_delivery(api: Api) -> tuple[str, list[str]]:
    """Created by a preparer with requireApproval, prepared, approved: its id and audience."""
    ids = await flows.import_profiles(api, ["a@example.com", "b@example.com"])
    created = await api.gql(
        "mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) { id version } }",
        {"i": edit(ids[:1], requireApproval=True)},  # a preparer may turn it on
        as_="preparer",
    )
    delivery_id = created["createDelivery"]["id"]
    assert created["createDelivery"]["version"] == 1
    await api.gql(PREPARE, {"id": delivery_id}, as_="preparer")
    await api.gql(APPROVE, {"id": delivery_id}, as_="approver")
    return delivery_id, ids


async def test_finding_8_a_preparer_cannot_undo_the_approval_and_send_to_everyone(
    api: Api,
) -> None:
    """The reported attack: after approval, a preparer turns approval off, widens the audience
    and prepares again; a starter then confirms without any approver."""
    delivery_id, _ = await approved_delivery(api)
    approved = await read(api, delivery_id)
    assert approved["version"] == 3 and approved["approvedBy"] is not None

    widened = edit([], audience={"allProfiles": True}, requireApproval=False)
    error = await api.error(UPDATE, {"id": delivery_id, "i": widened}, as_="preparer")
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert "requireApproval" in error["message"] and "APPROVE_DELIVERIES" in error["message"]
    assert await read(api, delivery_id) == approved  # nothing written

    # Widening without touching requireApproval keeps it on and drops the approval.
    widened.pop("requireApproval")
    changed = (await api.gql(UPDATE, {"id": delivery_id, "i": widened}, as_="preparer"))[
        "updateDelivery"
    ]
    assert changed["requireApproval"] is True and changed["status"] == "DRAFT"
    assert (changed["approvedBy"], changed["approvedAt"]) == (None, None)
    assert changed["version"] == 4
    prepared = (await api.gql(PREPARE, {"id": delivery_id}, as_="preparer"))["prepareDelivery"]
    assert prepared["kpis"]["toSend"] == 2 and prepared["version"] == 5
    refused = await api.error(CONFIRM, {"id": delivery_id}, as_="starter")
    assert refused["extensions"]["code"] == "INVALID_STATE"
    assert "requires approval" in refused["message"]
    assert (await read(api, delivery_id))["status"] == "READY"
    assert (await api.gql(CONFIRMED, {"id": delivery_id}))["auditEvents"]["totalCount"] == 0


@pytest.mark.parametrize("who", ["approver", "admin"])
async def test_finding_8_an_approver_or_an_administrator_may_turn_approval_off(
    api: Api, who: str
) -> None:
    if who == "approver":  # editing needs PREPARE_DELIVERIES as well
        created = await api.gql(
            'mutation { createOperator(name: "editor-approver",'
            " roles: [PREPARE_DELIVERIES, APPROVE_DELIVERIES]) { token } }"
        )
        who = created["createOperator"]["token"]
    delivery_id, ids = await approved_delivery(api)
    off = (
        await api.gql(UPDATE, {"id": delivery_id, "i": edit(ids, requireApproval=False)}, as_=who)
    )["updateDelivery"]
    assert off["requireApproval"] is False and off["approvedBy"] is None
    await api.gql(PREPARE, {"id": delivery_id}, as_="preparer")
    assert (await api.gql(CONFIRM, {"id": delivery_id}, as_="starter"))["confirmSend"][
        "status"
    ] == "IN_PROGRESS"
    # A preparer may turn it back on for another delivery, and leave it off where it is off.
    other = (
        await api.gql(
            "mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) { id } }",
            {"i": edit(ids)},
            as_="preparer",
        )
    )["createDelivery"]["id"]
    on = await api.gql(UPDATE, {"id": other, "i": edit(ids, requireApproval=True)}, as_="preparer")
    assert on["updateDelivery"]["requireApproval"] is True
    still_off = edit(ids, requireApproval=False)
    third = (
        await api.gql(
            "mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) { id } }",
            {"i": still_off},
            as_="preparer",
        )
    )["createDelivery"]["id"]
    again = await api.gql(UPDATE, {"id": third, "i": still_off}, as_="preparer")
    assert again["updateDelivery"]["requireApproval"] is False


async def test_finding_8_confirm_send_refuses_a_delivery_that_changed_since_it_was_reviewed(
    api: Api,
) -> None:
    ids = await flows.import_profiles(api, ["a@example.com", "b@example.com", "c@example.com"])
    delivery_id = (await flows.create_delivery(api, ids[:1]))["id"]
    reviewed = (await api.gql(PREPARE, {"id": delivery_id}))["prepareDelivery"]
    assert (reviewed["version"], reviewed["kpis"]["toSend"]) == (2, 1)

    # Meanwhile a preparer widens the audience and prepares again.
    await api.gql(UPDATE, {"id": delivery_id, "i": edit(ids)}, as_="preparer")
    now = (await api.gql(PREPARE, {"id": delivery_id}, as_="preparer"))["prepareDelivery"]
    assert (now["version"], now["kpis"]["toSend"]) == (4, 3)

    error = await api.error(CONFIRM, {"id": delivery_id, "v": reviewed["version"]}, as_="starter")
    assert error["extensions"]["code"] == "INVALID_STATE"
    assert "changed since you reviewed it (version 2, now 4)" in error["message"]
    assert (await read(api, delivery_id))["status"] == "READY"
    assert (await api.gql(CONFIRMED, {"id": delivery_id}))["auditEvents"]["totalCount"] == 0

    sent = await api.gql(CONFIRM, {"id": delivery_id, "v": now["version"]}, as_="starter")
    assert sent["confirmSend"] == {"status": "IN_PROGRESS", "version": 4}
    assert (await api.gql(CONFIRMED, {"id": delivery_id}))["auditEvents"]["totalCount"] == 1


async def test_finding_8_approval_changes_the_version_and_confirm_without_one_still_works(
    api: Api,
) -> None:
    delivery_id, _ = await approved_delivery(api)  # versions: 1 created, 2 prepared, 3 approved
    stale = await api.error(CONFIRM, {"id": delivery_id, "v": 2}, as_="starter")
    assert stale["extensions"]["code"] == "INVALID_STATE"
    # Clients that send no version (the contract's confirmSend(deliveryId)) are unchanged.
    plain = await api.gql(
        "mutation($id: ID!) { confirmSend(deliveryId: $id) { status } }",
        {"id": delivery_id},
        as_="starter",
    )
    assert plain["confirmSend"]["status"] == "IN_PROGRESS"


async def test_finding_8_deliveries_made_before_the_upgrade_get_version_1(
    db_kind: str, tmp_path: Path
) -> None:
    """The migration adds `delivery.version` (and `operator.revoked_at`) to tables with rows."""
    async with fresh_database(db_kind, tmp_path) as url:
        config = tortoise_config(url)
        await migrate(config=config, app_labels=["models"], target=f"models.{BEFORE}")
        await Tortoise.close_connections()
        await Tortoise.init(config=config)
        try:
            sql = Sql()
            await sql.execute(
                "INSERT INTO operator (name, token_hash, roles, created_at)"
                " VALUES (?, ?, ?, CURRENT_TIMESTAMP)",
                ["before", "h" * 64, "[]"],
            )
            await sql.execute(
                "INSERT INTO delivery (label, channel, body, status, feedback_mode, audience,"
                " validity_period, require_approval, figures_final, warnings,"
                " confirm_each_occurrence, occurrences_created, to_send, excluded, processed,"
                " sent, pending, failed, opens, clicks, created_at, updated_at) VALUES"
                " ('old', 'EMAIL', 'b', 'READY', 'LEGACY', '{}', 60, ?, ?, '[]', ?, 0, 1, 0, 0,"
                " 0, 0, 0, 0, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
                [False, False, False],
            )
        finally:
            await Tortoise.close_connections()
        await apply_migrations(url)
        await Tortoise.init(config=config)
        try:
            assert await Sql().rows("SELECT version FROM delivery") == [{"version": 1}]
            assert await Sql().rows("SELECT revoked_at FROM operator") == [{"revoked_at": None}]
        finally:
            await Tortoise.close_connections()
