"""Live deployment progress (SPEC §6) over a real graphql-transport-ws WebSocket."""

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import websockets

from tests.support import clock, flows
from tests.support.client import Api, GraphQLErrors, event
from tests.support.live import KPI_FIELDS, PROGRESS
from tests.support.server import client_of


def progress(data: dict[str, Any]) -> dict[str, Any]:
    return data["deploymentProgress"]  # type: ignore[no-any-return]


def kpis_of(delivery: dict[str, Any]) -> dict[str, Any]:
    return {name: delivery["kpis"][name] for name in KPI_FIELDS}


async def closed_with(url: str, payload: dict[str, Any]) -> int | None:
    """Send connection_init with `payload`; return the close code the server answers with."""
    async with websockets.connect(
        url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        return ws.close_code


async def test_connection_init_without_a_token_is_closed_with_4403(api: Api) -> None:
    assert await closed_with(api.ws_url, {}) == 4403


async def test_connection_init_with_a_bad_token_is_closed_with_4403(api: Api) -> None:
    assert await closed_with(api.ws_url, {"Authorization": "Bearer not-a-token"}) == 4403


async def test_the_legacy_graphql_ws_subprotocol_is_refused(api: Api) -> None:
    async with websockets.connect(
        api.ws_url, subprotocols=[websockets.Subprotocol("graphql-ws")]
    ) as ws:
        assert ws.subprotocol is None
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    assert ws.close_code == 4406


async def test_a_snapshot_comes_at_once_then_updates_on_relay_and_on_feedback(api: Api) -> None:
    ready = await flows.prepared_delivery(api, flows.addresses(4, "user"), feedbackMode="EFS")
    async with api.subscribe(PROGRESS, {"id": ready["id"]}) as sub:
        first = progress((await sub.next())["data"])
        assert first["status"] == "READY"
        assert first["delivery"]["id"] == ready["id"]
        assert first["kpis"]["toSend"] == 4
        assert first["kpis"]["processed"] == 0

        await flows.confirm(api, ready["id"])
        relayed = progress(await sub.until(lambda d: progress(d)["kpis"]["processed"] == 4))
        assert relayed["kpis"]["pending"] == 4  # EFS: relayed means PENDING
        assert relayed["kpis"]["sent"] == 0

        logs = await flows.logs(api, ready["id"])
        response = await api.feedback(
            [event(log["messageId"], "delivered") for log in logs[:3]]
            + [event(logs[3]["messageId"], "hard_bounce", reason="USER_UNKNOWN")]
        )
        assert response.status_code == 200
        after = progress(
            await sub.until(
                lambda d: progress(d)["kpis"]["sent"] + progress(d)["kpis"]["failed"] == 4
            )
        )
        assert after["kpis"]["sent"] == 3
        assert after["kpis"]["failed"] == 1
        assert after["kpis"]["deliveredRate"] == 75.0
        assert after["kpis"]["bouncesAndErrorsRate"] == 25.0


async def test_the_stream_completes_when_the_delivery_is_finished_with_its_final_kpis(
    api: Api,
) -> None:
    ready = await flows.prepared_delivery(
        api, flows.addresses(3, "user"), feedbackMode="EFS", validityPeriod=clock.VALIDITY
    )
    async with api.subscribe(PROGRESS, {"id": ready["id"]}) as sub:
        await flows.confirm(api, ready["id"])
        sent = await flows.wait_for(api, ready["id"], lambda d: d["status"] == "SENT")
        logs = await flows.logs(api, ready["id"])
        reported = await api.feedback([event(logs[0]["messageId"], "delivered")])
        assert reported.json()["accepted"] == 1  # taken (and counted) before the period ends
        await clock.past_validity(api, ready["id"])  # after the report: the period ends
        updates = [progress(d) for d in await sub.rest()]
        assert sub.completed
    final = await flows.delivery(api, ready["id"])
    assert final["status"] == "FINISHED"
    assert sent["kpis"]["processed"] == 3
    assert updates[-1]["status"] == "FINISHED"
    assert updates[-1]["delivery"]["status"] == "FINISHED"
    assert updates[-1]["kpis"] == kpis_of(final)
    assert updates[-1]["kpis"]["sent"] == 1


async def test_the_stream_completes_when_the_delivery_is_stopped(api: Api) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    ready = await flows.prepared_delivery(api, flows.addresses(2, "user"), scheduledAt=later)
    async with api.subscribe(PROGRESS, {"id": ready["id"]}) as sub:
        assert progress((await sub.next())["data"])["status"] == "READY"
        assert (await flows.confirm(api, ready["id"]))["status"] == "SCHEDULED"
        await api.gql(
            "mutation($id: ID!) { stopDelivery(id: $id) { status } }",
            {"id": ready["id"]},
            as_="starter",
        )
        updates = [progress(d) for d in await sub.rest()]
        assert sub.completed
    assert updates[-1]["status"] == "STOPPED"
    assert updates[-1]["kpis"] == kpis_of(await flows.delivery(api, ready["id"]))


async def test_a_busy_delivery_is_coalesced_into_far_fewer_updates_than_batches(
    make_server: Callable[..., Any],
) -> None:
    running = await make_server(batch_size=50, progress_interval_seconds=0.2)
    async with client_of(running) as api:
        n = 3000
        ready = await flows.prepared_delivery(api, flows.addresses(n, "user"))
        assert ready["kpis"]["toSend"] == n
        async with api.subscribe(PROGRESS, {"id": ready["id"]}) as sub:
            received = [progress((await sub.next())["data"])]
            await flows.confirm(api, ready["id"])
            while received[-1]["kpis"]["processed"] < n or received[-1]["status"] != "SENT":
                received.append(progress((await sub.next(20))["data"]))
    batches = n // 50
    assert len(received) < batches, f"{len(received)} updates for {batches} batches"
    assert received[-1]["kpis"]["processed"] == received[-1]["kpis"]["toSend"] == n


async def test_an_unknown_delivery_is_a_not_found_error(api: Api) -> None:
    async with api.subscribe(PROGRESS, {"id": "987654"}) as sub:
        try:  # a `next` carrying errors, or an `error` message: both are the protocol's
            errors = GraphQLErrors((await sub.next()).get("errors") or [])
        except GraphQLErrors as raised:
            errors = raised
    assert errors.codes == ["NOT_FOUND"], errors.errors


async def test_an_operator_without_a_role_may_subscribe(api: Api) -> None:
    ready = await flows.prepared_delivery(api, flows.addresses(2, "user"))
    async with api.subscribe(PROGRESS, {"id": ready["id"]}, as_="reader") as sub:
        first = progress((await sub.next())["data"])
        assert first["status"] == "READY"
        assert first["kpis"]["toSend"] == 2


async def test_two_subscribers_on_one_delivery_both_get_the_final_state(api: Api) -> None:
    ready = await flows.prepared_delivery(
        api, flows.addresses(5, "user"), validityPeriod=clock.VALIDITY
    )
    async with (
        api.subscribe(PROGRESS, {"id": ready["id"]}) as one,
        api.subscribe(PROGRESS, {"id": ready["id"]}, as_="reader") as two,
    ):
        await one.next()
        await two.next()
        await flows.confirm(api, ready["id"])
        await flows.wait_for(api, ready["id"], lambda d: d["status"] == "SENT")
        await clock.past_validity(api, ready["id"])
        first, second = await asyncio.gather(one.rest(), two.rest())
    final = await flows.delivery(api, ready["id"])
    for updates in (first, second):
        last = progress(updates[-1])
        assert last["status"] == "FINISHED"
        assert last["kpis"] == kpis_of(final)
        assert last["kpis"]["processed"] == 5
