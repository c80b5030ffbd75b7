"""GraphQL over WebSocket (graphql-transport-ws) as raw frames over a real socket."""

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.support.server import RunningServer

TRANSPORT_WS = "graphql-transport-ws"


def ws_url(running: RunningServer) -> str:
    return running.base_url.replace("http://", "ws://") + "/graphql"


@asynccontextmanager
async def socket(
    url: str, *, origin: str | None = None, protocols: Sequence[str] = (TRANSPORT_WS,)
) -> AsyncIterator[ClientConnection]:
    async with websockets.connect(
        url,
        subprotocols=[websockets.Subprotocol(p) for p in protocols],
        origin=websockets.Origin(origin) if origin else None,
        open_timeout=5,
    ) as ws:
        yield ws


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message))


async def receive(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), 5))  # type: ignore[no-any-return]


async def closed(ws: ClientConnection, timeout: float = 5) -> tuple[int | None, str | None]:
    """Read until the server closes; the close code and reason."""
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    return ws.close_code, ws.close_reason


async def init(ws: ClientConnection, token: str) -> None:
    await send(ws, {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
    assert await receive(ws) == {"type": "connection_ack"}
