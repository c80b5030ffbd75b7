"""GraphQL over WebSocket (graphql-transport-ws) as the protocol and docs/websocket.md say: its
close codes, the origin check, the size and subscription caps. Raw frames over a real socket,
then the official `graphql-ws` client driven from node (tests/support/ws_client.mjs).

The protocol does not depend on the database: these tests run on SQLite only.
"""

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.support import flows
from tests.support.client import Api
from tests.support.server import RunningServer, ServerFactory, api_for
from tests.support.ws import TRANSPORT_WS, closed, init, receive, send, socket, ws_url

PROGRESS = "subscription($id: ID!) { deploymentProgress(deliveryId: $id) { status } }"
ROOT = Path(__file__).resolve().parents[3]
WEB_MODULES = ROOT / "web" / "node_modules"
NODE = shutil.which("node")


@pytest.fixture
def db_kind() -> str:
    return "sqlite"


def subscribe(op_id: str, delivery_id: str) -> dict[str, Any]:
    return {
        "id": op_id,
        "type": "subscribe",
        "payload": {"query": PROGRESS, "variables": {"id": delivery_id}},
    }


async def draft_delivery(api: Api) -> str:
    ids = await flows.import_profiles(api, ["ws@example.com"])
    return str((await flows.create_delivery(api, ids))["id"])


# --- subprotocol ------------------------------------------------------------------------------


async def test_graphql_transport_ws_is_chosen_when_offered_beside_the_legacy_protocol(
    server: RunningServer,
) -> None:
    async with socket(ws_url(server), protocols=("graphql-ws", TRANSPORT_WS)) as ws:
        assert ws.subprotocol == TRANSPORT_WS


async def test_the_legacy_graphql_ws_protocol_alone_is_refused_with_4406(
    server: RunningServer,
) -> None:
    async with socket(ws_url(server), protocols=("graphql-ws",)) as ws:
        assert ws.subprotocol is None  # the handshake did not agree to the legacy protocol
        assert await closed(ws) == (4406, "Subprotocol not acceptable")


# --- close codes of the protocol --------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("not json", "WebSocket message must be valid JSON"),
        (json.dumps({"type": "shout"}), "Unknown message type: shout"),
        (json.dumps({"payload": {}}), "Failed to parse message"),
        (
            json.dumps({"type": "connection_init", "payload": "x"}),
            "Invalid connection init payload",
        ),
    ],
    ids=["not-json", "unknown-type", "no-type", "payload-not-an-object"],
)
async def test_an_invalid_message_closes_with_4400(
    server: RunningServer, frame: str, reason: str
) -> None:
    async with socket(ws_url(server)) as ws:
        await ws.send(frame)
        assert await closed(ws) == (4400, reason)


async def test_a_binary_message_closes_with_4400(server: RunningServer) -> None:
    async with socket(ws_url(server)) as ws:
        await ws.send(b'{"type": "connection_init"}')
        assert await closed(ws) == (4400, "WebSocket message type must be text")


async def test_a_query_that_does_not_parse_or_validate_is_an_error_for_its_id_only(
    api: Api,
) -> None:
    async with socket(api.ws_url) as ws:
        await init(ws, api.tokens["reader"])
        for op_id, query in (("1", "{ nope }"), ("2", "subscription {")):
            await send(ws, {"id": op_id, "type": "subscribe", "payload": {"query": query}})
            error = await receive(ws)
            assert (error["id"], error["type"]) == (op_id, "error")
            assert error["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        await send(ws, {"type": "ping"})
        assert (await receive(ws))["type"] == "pong"


async def test_subscribe_before_the_connection_is_acknowledged_closes_with_4401(
    api: Api,
) -> None:
    async with socket(api.ws_url) as ws:
        await send(ws, subscribe("1", "1"))
        assert await closed(ws) == (4401, "Unauthorized")


@pytest.mark.parametrize(
    "payload",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic x"}],
    ids=["missing", "bad", "not-bearer"],
)
async def test_a_missing_or_bad_token_closes_with_4403(
    server: RunningServer, payload: dict[str, Any]
) -> None:
    async with socket(ws_url(server)) as ws:
        await send(ws, {"type": "connection_init", "payload": payload})
        assert await closed(ws) == (4403, "Forbidden")


async def test_no_connection_init_within_the_timeout_closes_with_4408(
    make_server: ServerFactory,
) -> None:
    running = await make_server(ws_init_timeout_seconds=0.3)
    async with socket(ws_url(running)) as ws:
        await send(ws, {"type": "ping"})  # a ping is not an initialisation
        assert (await receive(ws))["type"] == "pong"
        assert await closed(ws) == (4408, "Connection initialisation timeout")


async def test_a_second_subscribe_with_an_active_id_closes_with_4409(api: Api) -> None:
    delivery_id = await draft_delivery(api)
    async with socket(api.ws_url) as ws:
        await init(ws, api.tokens["reader"])
        await send(ws, subscribe("same", delivery_id))
        assert (await receive(ws))["type"] == "next"
        await send(ws, subscribe("same", delivery_id))
        assert await closed(ws) == (4409, "Subscriber for same already exists")


async def test_an_id_may_be_used_again_once_its_subscription_is_complete(api: Api) -> None:
    delivery_id = await draft_delivery(api)
    async with socket(api.ws_url) as ws:
        await init(ws, api.tokens["reader"])
        for _ in range(2):
            await send(ws, subscribe("again", delivery_id))
            first = await receive(ws)
            assert first["type"] == "next", first
            assert first["payload"]["data"]["deploymentProgress"]["status"] == "DRAFT"
            await send(ws, {"id": "again", "type": "complete"})


async def test_a_second_connection_init_closes_with_4429(api: Api) -> None:
    async with socket(api.ws_url) as ws:
        await init(ws, api.tokens["reader"])
        await send(ws, {"type": "connection_init", "payload": {}})
        assert await closed(ws) == (4429, "Too many initialisation requests")


# --- origins ----------------------------------------------------------------------------------


async def handshake_status(url: str, origin: str | None) -> int:
    """101 when the socket opens, else the HTTP status the handshake was refused with."""
    try:
        async with socket(url, origin=origin):
            return 101
    except websockets.InvalidStatus as refused:
        return refused.response.status_code


async def test_without_allowed_origins_only_same_origin_pages_may_connect(
    server: RunningServer,
) -> None:
    url = ws_url(server)
    assert await handshake_status(url, None) == 101  # not a browser: no Origin
    assert await handshake_status(url, server.base_url) == 101
    assert await handshake_status(url, "http://evil.example") == 403
    # same host, another port, is another origin
    assert await handshake_status(url, "http://127.0.0.1:1") == 403


async def test_configured_origins_may_connect_and_no_other(make_server: ServerFactory) -> None:
    running = await make_server(allowed_origins="https://app.example, http://dash.example:8080")
    url = ws_url(running)
    assert await handshake_status(url, "https://app.example") == 101
    assert await handshake_status(url, "https://APP.example:443") == 101  # normalised
    assert await handshake_status(url, "http://dash.example:8080") == 101
    assert await handshake_status(url, "http://dash.example") == 403
    assert await handshake_status(url, "https://evil.example") == 403
    assert await handshake_status(url, running.base_url) == 101  # same origin still is


async def test_a_star_allows_every_origin(make_server: ServerFactory) -> None:
    running = await make_server(allowed_origins="*")
    assert await handshake_status(ws_url(running), "https://anywhere.example") == 101


def test_a_malformed_allowed_origin_is_a_configuration_error() -> None:
    from server.http.websocket_guard import websocket_origins

    assert websocket_origins(None) == []
    assert websocket_origins(" https://a.example ,, *") == ["https://a.example", "*"]
    with pytest.raises(ValueError, match="ALLOWED_ORIGINS"):
        websocket_origins("https://a.example/path")


# --- caps -------------------------------------------------------------------------------------


async def test_a_message_over_the_size_cap_closes_with_1009(make_server: ServerFactory) -> None:
    running = await make_server(ws_max_message_bytes=1024)
    async for api in api_for(running):
        delivery_id = await draft_delivery(api)
        async with socket(api.ws_url) as ws:
            await init(ws, api.tokens["reader"])
            at_cap = subscribe("fits", delivery_id)
            at_cap["payload"]["query"] += " " * (1024 - len(json.dumps(at_cap)))
            assert len(json.dumps(at_cap)) == 1024
            await send(ws, at_cap)
            assert (await receive(ws))["type"] == "next"

            await send(ws, {"type": "ping", "payload": {"pad": "x" * 1024}})
            assert await closed(ws) == (1009, "message over 1024 bytes")


async def test_the_size_cap_counts_bytes_not_characters(make_server: ServerFactory) -> None:
    running = await make_server(ws_max_message_bytes=1024)
    async with socket(ws_url(running)) as ws:
        for pad, fits in ((480, True), (600, False)):
            frame = json.dumps({"type": "ping", "payload": {"pad": "é" * pad}}, ensure_ascii=False)
            assert len(frame) < 1024
            assert (len(frame.encode()) <= 1024) is fits
            await ws.send(frame)
            if fits:
                assert (await receive(ws))["type"] == "pong"
        assert (await closed(ws))[0] == 1009


async def test_subscriptions_over_the_cap_get_an_error_and_the_connection_lives_on(
    make_server: ServerFactory,
) -> None:
    running = await make_server(ws_max_subscriptions=2)
    async for api in api_for(running):
        delivery_id = await draft_delivery(api)
        async with socket(api.ws_url) as ws:
            await init(ws, api.tokens["reader"])
            for op_id in ("a", "b"):
                await send(ws, subscribe(op_id, delivery_id))
                assert (await receive(ws))["id"] == op_id

            await send(ws, subscribe("c", delivery_id))
            refused = await receive(ws)
            assert refused == {
                "id": "c",
                "type": "error",
                "payload": [{"message": "Subscription limit reached"}],
            }

            # the other two go on; completing one makes room again
            await send(ws, {"id": "a", "type": "complete"})
            await send(ws, subscribe("c", delivery_id))
            accepted = await receive(ws)
            assert (accepted["id"], accepted["type"]) == ("c", "next")


# --- the official graphql-ws client -----------------------------------------------------------


def node_client(url: str, token: str, delivery_id: str) -> dict[str, Any]:
    if NODE is None:
        pytest.skip("node is not installed: the graphql-ws client check needs it")
    if not (WEB_MODULES / "graphql-ws").is_dir():
        pytest.skip("web/node_modules/graphql-ws is missing: run `npm ci --prefix web`")
    done = subprocess.run(
        [NODE, "--experimental-websocket", str(ROOT / "tests" / "support" / "ws_client.mjs")],
        env={**os.environ, "WS_URL": url, "TOKEN": token, "DELIVERY_ID": delivery_id},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    sys.stderr.write(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


async def test_the_graphql_ws_client_subscribes_with_a_good_token(api: Api) -> None:
    delivery_id = await draft_delivery(api)
    result = await asyncio.to_thread(node_client, api.ws_url, api.tokens["reader"], delivery_id)
    assert result == {"next": {"data": {"deploymentProgress": {"status": "DRAFT"}}}}


async def test_the_graphql_ws_client_sees_4403_for_a_bad_token(api: Api) -> None:
    result = await asyncio.to_thread(node_client, api.ws_url, "not-a-token", "1")
    assert result == {"closed": {"code": 4403, "reason": "Forbidden"}}
