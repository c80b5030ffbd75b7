"""Issue 11, finding 6: one client opened 60 sockets x 100 subscriptions, and each change of
the delivery was then executed 6,000 times. Now sockets are limited per operator and per client
address (close 4429, docs/websocket.md), and a snapshot is executed once per distinct selection
(document, variables and the operator's roles) for all its subscribers."""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

import graphql_schema.loaders
from tests.support import flows
from tests.support.client import Api, event
from tests.support.server import RunningServer, api_for

TRANSPORT_WS = websockets.Subprotocol("graphql-transport-ws")
PROGRESS = (
    "subscription($id: ID!) { deploymentProgress(deliveryId: $id) { at kpis { sent }"
    " delivery { id exclusions { reason count } } } }"
)


@asynccontextmanager
async def connected(
    running: RunningServer, token: str, address: str = "127.0.0.1"
) -> AsyncIterator[ClientConnection]:
    """A graphql-transport-ws socket from `address`, past its connection_ack."""
    url = running.base_url.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(
        url, subprotocols=[TRANSPORT_WS], local_addr=(address, 0), open_timeout=5
    ) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await ws.send(json.dumps(init))
        answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert answer == {"type": "connection_ack"}, answer
        yield ws


async def closed_with(
    running: RunningServer, token: str, address: str = "127.0.0.1"
) -> tuple[int | None, str | None]:
    """Open a socket that the server refuses: its close code and reason."""
    url = running.base_url.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(
        url, subprotocols=[TRANSPORT_WS], local_addr=(address, 0), open_timeout=5
    ) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        with pytest.raises(websockets.ConnectionClosed):
            await ws.send(json.dumps(init))
            await asyncio.wait_for(ws.recv(), 5)
        return ws.close_code, ws.close_reason


class TestSocketLimits:
    """The limits live in the process's memory: SQLite is enough."""

    @pytest.fixture
    def db_kind(self) -> str:
        return "sqlite"

    async def test_finding_6_an_operator_over_its_sockets_is_closed_with_4429(
        self, make_server: Callable[..., Any]
    ) -> None:
        running = await make_server(ws_max_sockets_per_operator=2)
        async for api in api_for(running):
            reader, admin = api.tokens["reader"], api.tokens["admin"]
            async with AsyncExitStack() as stack:
                for _ in range(2):
                    await stack.enter_async_context(connected(running, reader))
                code, reason = await closed_with(running, reader)
                assert (code, reason) == (4429, "too many WebSockets for this operator: at most 2")
                async with connected(running, admin):  # another operator is not affected
                    pass
            async with connected(running, reader):  # closed sockets no longer count
                pass

    async def test_finding_6_a_client_address_over_its_sockets_is_closed_with_4429(
        self, make_server: Callable[..., Any]
    ) -> None:
        running = await make_server(ws_max_sockets_per_client=2)
        async for api in api_for(running):
            tokens = [api.tokens[name] for name in ("reader", "admin", "starter")]
            async with AsyncExitStack() as stack:
                for token in tokens[:2]:
                    await stack.enter_async_context(connected(running, token, "127.0.0.2"))
                code, reason = await closed_with(running, tokens[2], "127.0.0.2")
                assert (code, reason) == (4429, "too many WebSockets from this address: at most 2")
                async with connected(running, tokens[2], "127.0.0.3"):  # another address
                    pass


# ---- one execution per snapshot and selection ----------------------------------------------


@pytest.fixture
def executions(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """Each execution of `Delivery.exclusions` (one call of its batch per execution)."""
    calls: list[list[int]] = []
    real = graphql_schema.loaders.exclusion_causes

    async def counted(ids: list[int]) -> Any:
        calls.append(list(ids))
        return await real(ids)

    monkeypatch.setattr(graphql_schema.loaders, "exclusion_causes", counted)
    return calls


async def subscribed(ws: ClientConnection, op_id: str, query: str, delivery_id: str) -> None:
    payload = {"query": query, "variables": {"id": delivery_id}}
    await ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))


async def next_of(ws: ClientConnection) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if message["type"] != "ping":
            return message  # type: ignore[no-any-return]


async def test_finding_6_a_snapshot_is_executed_once_for_all_its_subscribers(
    server: RunningServer, api: Api, executions: list[list[int]]
) -> None:
    done, sent = await flows.sent_delivery(
        api, ["f1@example.com", "f2@example.com"], feedbackMode="EFS"
    )
    delivery_id = done["id"]
    async with AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(connected(server, api.tokens["reader"]))
            for _ in range(3)
        ]
        for ws in sockets:  # 3 sockets x 2 subscriptions, one selection
            for op_id in ("a", "b"):
                await subscribed(ws, op_id, PROGRESS, delivery_id)
        first = [await next_of(ws) for ws in sockets for _ in range(2)]
        executions.clear()
        await api.feedback([event(sent[0]["messageId"], "delivered", at=datetime.now(UTC))])
        changed = [await next_of(ws) for ws in sockets for _ in range(2)]
    assert all(m["type"] == "next" for m in first + changed)
    payloads = {json.dumps(m["payload"], sort_keys=True) for m in changed}
    assert len(payloads) == 1  # the same answer for all six
    (answer,) = (json.loads(p) for p in payloads)
    progress = answer["data"]["deploymentProgress"]
    assert progress["kpis"]["sent"] == 1
    assert executions == [[int(delivery_id)]]  # one execution for six subscribers


async def test_subscribers_share_only_what_their_roles_and_selection_allow(
    server: RunningServer, api: Api, executions: list[list[int]]
) -> None:
    """Same document and variables, different roles: the administrator sees the sending logs,
    the role-less operator gets FORBIDDEN for them; a different selection gets its own shape."""
    done, _ = await flows.sent_delivery(api, ["g1@example.com"])
    delivery_id = done["id"]
    logs = (
        "subscription($id: ID!) { deploymentProgress(deliveryId: $id) { kpis { sent }"
        " delivery { sendingLogs { totalCount } } } }"
    )
    status = "subscription($id: ID!) { deploymentProgress(deliveryId: $id) { status } }"
    async with (
        connected(server, api.tokens["admin"]) as admin,
        connected(server, api.tokens["reader"]) as reader,
    ):
        await subscribed(admin, "1", logs, delivery_id)
        await subscribed(reader, "1", logs, delivery_id)
        await subscribed(reader, "2", status, delivery_id)
        seen = {"admin": await next_of(admin)}
        for _ in range(2):
            message = await next_of(reader)
            seen[f"reader-{message['id']}"] = message
    as_admin = seen["admin"]["payload"]
    assert as_admin["data"]["deploymentProgress"]["delivery"]["sendingLogs"]["totalCount"] == 1
    assert "errors" not in as_admin
    as_reader = seen["reader-1"]["payload"]
    assert [e["extensions"]["code"] for e in as_reader["errors"]] == ["FORBIDDEN"]
    assert seen["reader-2"]["payload"] == {"data": {"deploymentProgress": {"status": "SENT"}}}


async def test_loaders_are_made_per_operation_not_per_connection(
    server: RunningServer, api: Api
) -> None:
    """Two queries on one socket, a change in between: the second sees it."""
    done, sent = await flows.sent_delivery(api, ["h1@example.com"], feedbackMode="EFS")
    query = (
        "query($id: ID!) { sendingLogs(deliveryId: $id) { edges { node {"
        " profile { history { status } } } } } }"
    )
    async with connected(server, api.tokens["admin"]) as ws:

        async def statuses(op_id: str) -> list[str]:
            await subscribed(ws, op_id, query, done["id"])
            message = await next_of(ws)
            assert message["type"] == "next", message
            await next_of(ws)  # complete
            edges = message["payload"]["data"]["sendingLogs"]["edges"]
            return [h["status"] for e in edges for h in e["node"]["profile"]["history"]]

        assert await statuses("1") == ["PENDING"]
        await api.feedback([event(sent[0]["messageId"], "delivered", at=datetime.now(UTC))])
        await flows.wait_for(api, done["id"], lambda d: d["kpis"]["sent"] == 1)
        assert await statuses("2") == ["SENT"]


# ---- operations start a few at a time --------------------------------------------------------


async def test_a_burst_of_subscriptions_is_started_a_few_at_a_time_and_all_answered(
    make_server: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 2 operations starting at once, 3 sockets x 10 subscriptions all get their first
    snapshot, and an operation that does not answer gives its place up after START_TIMEOUT."""
    import server.http.websocket_guard as guard
    from models.profile import Profile

    monkeypatch.setattr(guard, "OPERATION_STARTS", 2)
    monkeypatch.setattr(guard, "START_TIMEOUT", 0.2)

    async def never(*args: Any, **kwargs: Any) -> None:
        await asyncio.sleep(60)

    monkeypatch.setattr(Profile, "get_or_none", never)
    running = await make_server()
    async for api in api_for(running):
        delivery_id = (await flows.create_delivery(api, []))["id"]
        token = api.tokens["reader"]
        async with AsyncExitStack() as stack:
            slow = await stack.enter_async_context(connected(running, token))
            for op_id in ("s1", "s2"):  # both places taken by queries that never answer
                payload = {"query": 'query { profile(id: "1") { id } }'}
                await slow.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))
            sockets = [await stack.enter_async_context(connected(running, token)) for _ in range(3)]
            for ws in sockets:
                for k in range(10):
                    await subscribed(ws, str(k), PROGRESS, delivery_id)
            firsts = [await next_of(ws) for ws in sockets for _ in range(10)]
    assert [m["type"] for m in firsts] == ["next"] * 30
    assert {m["id"] for m in firsts} == {str(k) for k in range(10)}
