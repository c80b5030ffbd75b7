"""SPEC §2: the delivery lifecycle, from approval to confirmation, scheduling, pause and stop."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.support import clock, flows
from tests.support.client import Api, event
from tests.support.server import SECRET, RunningServer, api_for

MORE = """ approvedBy approvedAt startedAt validUntil sentAt endedAt stoppedBy requireApproval
  warnings subject label """


async def full(api: Api, delivery_id: str) -> dict[str, Any]:
    data = await api.gql(
        f"query($id: ID!) {{ delivery(id: $id) {{ {flows.DELIVERY_FIELDS} {MORE} }} }}",
        {"id": delivery_id},
    )
    return data["delivery"]  # type: ignore[no-any-return]


async def ready(api: Api, emails: list[str | None], **extra: Any) -> str:
    ids = await flows.import_profiles(api, emails)
    delivery_id: str = (await flows.create_delivery(api, ids, **extra))["id"]
    await flows.prepare(api, delivery_id)
    return delivery_id


def in_seconds(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


@asynccontextmanager
async def same_operators(running: RunningServer, api: Api) -> AsyncIterator[Api]:
    """A client of another server on the same database, with the same operators' tokens."""
    async with httpx.AsyncClient(base_url=running.base_url, timeout=30) as http:
        yield Api(running.base_url, http, SECRET, dict(api.tokens))


async def relayed_ids(api: Api, delivery_id: str) -> set[str]:
    return {log["messageId"] for log in await flows.logs(api, delivery_id) if log["messageId"]}


async def sentinel_sent(api: Api) -> set[str]:
    """Send another delivery to the end: the engine has run passes since it was started."""
    done, logs = await flows.sent_delivery(api, [f"sentinel-{uuid.uuid4().hex[:6]}@example.com"])
    assert done["status"] == "SENT"
    return {log["messageId"] for log in logs}


# ---- approval and confirmation ------------------------------------------------------------


async def test_a_delivery_that_requires_approval_is_sent_only_once_approved(
    api: Api, server: RunningServer
) -> None:
    delivery_id = await ready(api, flows.addresses(3, "appr"), requireApproval=True)
    error = await api.error(
        "mutation($id: ID!) { confirmSend(deliveryId: $id) { id } }",
        {"id": delivery_id},
        as_="starter",
    )
    assert error["extensions"]["code"] == "INVALID_STATE"
    assert "approval" in error["message"]
    assert (await full(api, delivery_id))["status"] == "READY"
    assert not server.runtime.mta.relayed

    before = datetime.now(UTC)
    approved = await api.gql(
        "mutation($id: ID!) { approveDelivery(id: $id) { status approvedBy approvedAt } }",
        {"id": delivery_id},
        as_="approver",
    )
    assert approved["approveDelivery"]["status"] == "READY"
    assert approved["approveDelivery"]["approvedBy"] == await flows.me(api, "approver")
    assert when(approved["approveDelivery"]["approvedAt"]) >= before - timedelta(seconds=1)

    confirmed = await flows.confirm(api, delivery_id)
    assert confirmed["status"] == "IN_PROGRESS"
    assert confirmed["confirmedBy"] == await flows.me(api, "starter")
    done = await flows.wait_for(api, delivery_id, lambda d: d["status"] == "SENT")
    assert done["kpis"]["processed"] == 3
    assert sorted(server.runtime.mta.relayed.values()) == [1, 1, 1]


async def test_editing_an_approved_delivery_withdraws_the_approval(api: Api) -> None:
    delivery_id = await ready(api, flows.addresses(2, "edit"), requireApproval=True)
    await api.gql(
        "mutation($id: ID!) { approveDelivery(id: $id) { id } }",
        {"id": delivery_id},
        as_="approver",
    )
    ids = await flows.import_profiles(api, flows.addresses(2, "edit"))
    edited = await api.gql(
        "mutation($id: ID!, $i: CreateDeliveryInput!) { updateDelivery(id: $id, input: $i)"
        " { status approvedBy approvedAt } }",
        {
            "id": delivery_id,
            "i": {
                "label": "Edited",
                "channel": "EMAIL",
                "subject": "S",
                "body": flows.BODY,
                "audience": {"profileIds": ids},
                "requireApproval": True,
            },
        },
    )
    assert edited["updateDelivery"] == {"status": "DRAFT", "approvedBy": None, "approvedAt": None}
    await flows.prepare(api, delivery_id)
    error = await api.error(
        "mutation($id: ID!) { confirmSend(deliveryId: $id) { id } }",
        {"id": delivery_id},
        as_="starter",
    )
    assert error["extensions"]["code"] == "INVALID_STATE"


async def test_confirming_records_who_and_when_and_a_second_confirm_is_invalid_state(
    api: Api, server: RunningServer
) -> None:
    delivery_id = await ready(api, flows.addresses(4, "twice"))
    before = datetime.now(UTC)
    confirmed = await flows.confirm(api, delivery_id)
    after = datetime.now(UTC)
    assert confirmed["confirmedBy"] == await flows.me(api, "starter")
    assert before - timedelta(seconds=1) <= when(confirmed["confirmedAt"]) <= after
    error = await api.error(
        "mutation($id: ID!) { confirmSend(deliveryId: $id) { id } }",
        {"id": delivery_id},
        as_="admin",
    )
    assert error["extensions"]["code"] == "INVALID_STATE"
    done = await flows.wait_for(api, delivery_id, lambda d: d["status"] == "SENT")
    assert done["confirmedBy"] == confirmed["confirmedBy"]
    assert done["confirmedAt"] == confirmed["confirmedAt"]
    assert sorted(server.runtime.mta.relayed.values()) == [1, 1, 1, 1]


async def test_five_clients_confirming_at_once_send_each_message_once(
    api: Api, server: RunningServer
) -> None:
    delivery_id = await ready(api, flows.addresses(20, "race"))
    starters: list[tuple[str, str]] = []
    for i in range(5):
        name = f"starter-{i}-{uuid.uuid4().hex[:4]}"
        data = await api.gql(
            "mutation($n: String!) { createOperator(name: $n, roles: [START_DELIVERIES])"
            " { token } }",
            {"n": name},
        )
        starters.append((name, data["createOperator"]["token"]))

    async def confirm_as(token: str) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            client = Api(server.base_url, http, SECRET)
            return await client.raw(
                "mutation($id: ID!) { confirmSend(deliveryId: $id) { status confirmedBy } }",
                {"id": delivery_id},
                token,
            )

    results = await asyncio.gather(*(confirm_as(token) for _, token in starters))
    winners = [r["data"]["confirmSend"] for r in results if not r.get("errors")]
    losers = [r["errors"][0]["extensions"]["code"] for r in results if r.get("errors")]
    assert len(winners) == 1, results
    assert losers == ["INVALID_STATE"] * 4
    assert winners[0]["confirmedBy"] in {name for name, _ in starters}
    done = await flows.wait_for(api, delivery_id, lambda d: d["status"] == "SENT")
    assert done["confirmedBy"] == winners[0]["confirmedBy"]
    assert done["kpis"]["processed"] == 20
    relayed = server.runtime.mta.relayed
    assert len(relayed) == 20
    assert set(relayed.values()) == {1}
    assert set(relayed) == await relayed_ids(api, delivery_id)


# ---- scheduling, stop, pause --------------------------------------------------------------


async def test_a_scheduled_delivery_starts_by_itself_at_its_contact_date(
    api: Api, server: RunningServer
) -> None:
    scheduled_at = in_seconds(3600)
    delivery_id = await ready(
        api, flows.addresses(3, "sched"), scheduledAt=scheduled_at, validityPeriod=60
    )
    confirmed = await flows.confirm(api, delivery_id)
    assert confirmed["status"] == "SCHEDULED"
    assert confirmed["confirmedBy"] == await flows.me(api, "starter")
    assert not server.runtime.mta.relayed
    with clock.moved(timedelta(hours=1, seconds=1)):  # the contact date comes
        done = await flows.wait_for(api, delivery_id, lambda d: d["status"] == "SENT")
    details = await full(api, delivery_id)
    started = when(details["startedAt"])
    assert started >= when(scheduled_at)
    assert when(details["validUntil"]) - started == timedelta(seconds=60)  # starts at the start
    assert done["kpis"]["processed"] == 3
    assert sorted(server.runtime.mta.relayed.values()) == [1, 1, 1]


async def test_stopping_a_scheduled_delivery_sends_nothing_and_cancels_its_logs(
    api: Api, server: RunningServer
) -> None:
    scheduled_at = in_seconds(3600)
    delivery_id = await ready(
        api, [*flows.addresses(3, "stop"), "not-an-address"], scheduledAt=scheduled_at
    )
    assert (await flows.confirm(api, delivery_id))["status"] == "SCHEDULED"
    stopped = await api.gql(
        "mutation($id: ID!) { stopDelivery(id: $id) { status stoppedBy endedAt } }",
        {"id": delivery_id},
        as_="starter",
    )
    assert stopped["stopDelivery"]["status"] == "STOPPED"
    assert stopped["stopDelivery"]["stoppedBy"] == await flows.me(api, "starter")
    assert stopped["stopDelivery"]["endedAt"] is not None
    with clock.moved(timedelta(hours=1, seconds=1)):  # the contact date comes
        sentinel = await sentinel_sent(api)  # the scheduler has run after it

    details = await full(api, delivery_id)
    assert details["status"] == "STOPPED"
    assert details["kpis"]["processed"] == 0
    assert set(server.runtime.mta.relayed) == sentinel
    logs = await flows.logs(api, delivery_id)
    cancelled = [log for log in logs if not log["excluded"]]
    assert len(cancelled) == 3
    for log in cancelled:
        assert (log["status"], log["failureType"], log["failureReason"]) == (
            "IGNORED",
            "IGNORED",
            "CANCELLED",
        )
        assert log["messageId"] is None
    [excluded] = [log for log in logs if log["excluded"]]
    assert excluded["failureReason"] == "INVALID_ADDRESS"  # an exclusion keeps its reason


async def test_stopping_a_delivery_in_progress_means_its_unsent_messages_are_never_sent(
    make_server: Callable[..., Any],
) -> None:
    idle = await make_server(engine_enabled=False)
    async for api in api_for(idle):
        delivery_id = await ready(api, flows.addresses(5, "halt"))
        assert (await flows.confirm(api, delivery_id))["status"] == "IN_PROGRESS"
        await api.gql("mutation($id: ID!) { stopDelivery(id: $id) { id } }", {"id": delivery_id})

        await idle.stop()  # one server at a time per process (tortoise's global context)
        engine = await make_server()
        async with same_operators(engine, api) as live:
            sentinel = await sentinel_sent(live)
            assert set(engine.runtime.mta.relayed) == sentinel
            details = await full(live, delivery_id)
            assert details["status"] == "STOPPED"
            assert details["kpis"]["processed"] == 0
            statuses = {
                (log["status"], log["failureReason"]) for log in await flows.logs(live, delivery_id)
            }
            assert statuses == {("IGNORED", "CANCELLED")}


async def test_nothing_is_relayed_while_paused_and_everything_once_after_resume(
    make_server: Callable[..., Any],
) -> None:
    idle = await make_server(engine_enabled=False)
    async for api in api_for(idle):
        delivery_id = await ready(api, flows.addresses(6, "pause"))
        assert (await flows.confirm(api, delivery_id))["status"] == "IN_PROGRESS"
        paused = await api.gql(
            "mutation($id: ID!) { pauseDelivery(id: $id) { status } }",
            {"id": delivery_id},
            as_="starter",
        )
        assert paused["pauseDelivery"]["status"] == "PAUSED"

        await idle.stop()  # one server at a time per process (tortoise's global context)
        engine = await make_server()
        async with same_operators(engine, api) as live:
            sentinel = await sentinel_sent(live)
            assert set(engine.runtime.mta.relayed) == sentinel  # the paused one: nothing
            details = await full(live, delivery_id)
            assert (details["status"], details["kpis"]["processed"]) == ("PAUSED", 0)
            assert {log["status"] for log in await flows.logs(live, delivery_id)} == {"TO_SEND"}

            resumed = await live.gql(
                "mutation($id: ID!) { resumeDelivery(id: $id) { status } }",
                {"id": delivery_id},
                as_="starter",
            )
            assert resumed["resumeDelivery"]["status"] == "IN_PROGRESS"
            done = await flows.wait_for(live, delivery_id, lambda d: d["status"] == "SENT")
            assert done["kpis"]["processed"] == 6
            mine = await relayed_ids(live, delivery_id)
            assert len(mine) == 6
            relayed = engine.runtime.mta.relayed
            assert set(relayed) == sentinel | mine
            assert set(relayed.values()) == {1}


# ---- edit and delete ----------------------------------------------------------------------


async def test_editing_a_prepared_delivery_sends_it_back_to_draft_and_forgets_its_target(
    api: Api,
) -> None:
    ids = await flows.import_profiles(api, flows.addresses(3, "re"))
    delivery_id = (await flows.create_delivery(api, ids, body="<p>No way out</p>"))["id"]
    assert (await flows.prepare(api, delivery_id))["kpis"]["toSend"] == 3
    assert len((await full(api, delivery_id))["warnings"]) == 1  # no unsubscribe link
    edited = await api.gql(
        "mutation($id: ID!, $i: CreateDeliveryInput!) { updateDelivery(id: $id, input: $i)"
        " { status label subject warnings kpis { toSend } } }",
        {
            "id": delivery_id,
            "i": {
                "label": "Edited",
                "channel": "EMAIL",
                "subject": "New",
                "body": flows.BODY,
                "audience": {"profileIds": ids[:1]},
            },
        },
    )
    assert edited["updateDelivery"] == {
        "status": "DRAFT",
        "label": "Edited",
        "subject": "New",
        "warnings": [],
        "kpis": {"toSend": 0},
    }
    assert await flows.logs(api, delivery_id) == []
    history = await api.gql("query($p: ID!) { profile(id: $p) { history { id } } }", {"p": ids[2]})
    assert history["profile"]["history"] == []
    again = await flows.prepare(api, delivery_id)
    assert (again["status"], again["kpis"]["toSend"]) == ("READY", 1)


async def test_a_draft_or_ready_delivery_can_be_deleted_with_its_logs(api: Api) -> None:
    ids = await flows.import_profiles(api, flows.addresses(2, "del"))
    draft = (await flows.create_delivery(api, ids))["id"]
    prepared = (await flows.create_delivery(api, ids))["id"]
    await flows.prepare(api, prepared)
    for delivery_id in (draft, prepared):
        data = await api.gql("mutation($id: ID!) { deleteDelivery(id: $id) }", {"id": delivery_id})
        assert data["deleteDelivery"] is True
        assert (await api.gql("query($id: ID!) { delivery(id: $id) { id } }", {"id": delivery_id}))[
            "delivery"
        ] is None
    assert (await api.gql("{ deliveries { totalCount } }"))["deliveries"]["totalCount"] == 0
    for profile_id in ids:
        data = await api.gql(
            "query($p: ID!) { profile(id: $p) { history { id } } }", {"p": profile_id}
        )
        assert data["profile"]["history"] == []
    error = await api.error("mutation($id: ID!) { deleteDelivery(id: $id) }", {"id": prepared})
    assert error["extensions"]["code"] == "NOT_FOUND"


async def test_a_sent_delivery_cannot_be_deleted(api: Api) -> None:
    done, _ = await flows.sent_delivery(api, flows.addresses(1, "keep"))
    error = await api.error("mutation($id: ID!) { deleteDelivery(id: $id) }", {"id": done["id"]})
    assert error["extensions"]["code"] == "INVALID_STATE"
    assert "SENT" in error["message"]
    assert (await flows.delivery(api, done["id"]))["status"] == "SENT"


# ---- history and stats --------------------------------------------------------------------


async def test_a_sent_message_appears_in_the_history_of_each_targeted_profile(api: Api) -> None:
    ids = await flows.import_profiles(api, [*flows.addresses(3, "hist"), "broken"])
    delivery_id = (await flows.create_delivery(api, ids))["id"]
    await flows.prepare(api, delivery_id)
    await flows.confirm(api, delivery_id)
    await flows.wait_for(api, delivery_id, lambda d: d["status"] == "SENT")
    logs = {log["address"]: log for log in await flows.logs(api, delivery_id)}
    query = (
        "query($p: ID!) { profile(id: $p) { email history { id deliveryId status messageId"
        " address } } }"
    )
    for profile_id in ids[:3]:
        profile = (await api.gql(query, {"p": profile_id}))["profile"]  # messageId: admins
        [entry] = profile["history"]
        log = logs[profile["email"]]
        assert entry == {
            "id": log["id"],
            "deliveryId": delivery_id,
            "status": "SENT",
            "messageId": log["messageId"],
            "address": profile["email"],
        }
        assert entry["messageId"]
    excluded = (await api.gql(query, {"p": ids[3]}))["profile"]
    assert excluded["history"] == []  # an excluded recipient was never sent anything


async def test_compute_stats_equals_what_the_logs_say(api: Api) -> None:
    done, logs = await flows.sent_delivery(
        api, [*flows.addresses(4, "kpi"), "broken"], feedbackMode="EFS"
    )
    delivery_id = done["id"]
    assert {log["status"] for log in logs} == {"PENDING"}
    response = await api.feedback(
        [
            event(logs[0]["messageId"], "delivered"),
            event(logs[1]["messageId"], "delivered"),
            event(logs[2]["messageId"], "hard_bounce", reason="USER_UNKNOWN"),
        ]
    )
    assert response.status_code == 200
    stats = await api.gql(
        "mutation($id: ID!) { computeStats(deliveryId: $id) { toSend processed sent pending"
        " failed deliveredRate bouncesAndErrorsRate statsComputedAt } }",
        {"id": delivery_id},
        as_="starter",
    )
    kpis = stats["computeStats"]
    targeted = [log for log in await flows.logs(api, delivery_id) if not log["excluded"]]
    count = {
        s: sum(1 for log in targeted if log["status"] == s) for s in ("SENT", "PENDING", "FAILED")
    }
    assert kpis["toSend"] == len(targeted) == 4
    assert kpis["sent"] == count["SENT"] == 2
    assert kpis["pending"] == count["PENDING"] == 1
    assert kpis["failed"] == count["FAILED"] == 1
    assert kpis["processed"] == 4
    assert kpis["deliveredRate"] == 50.0
    assert kpis["bouncesAndErrorsRate"] == 25.0
    assert kpis["statsComputedAt"] is not None
    stored = (await flows.delivery(api, delivery_id))["kpis"]
    assert (
        stored
        == (
            await api.gql(
                "query($id: ID!) { kpis(deliveryId: $id) { toSend processed sent pending failed"
                " deliveredRate bouncesAndErrorsRate opens clicks openRate clickThroughRate"
                " statsComputedAt } }",
                {"id": delivery_id},
            )
        )["kpis"]
    )
    assert {k: stored[k] for k in kpis} == kpis
