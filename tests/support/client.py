"""A client as a dashboard, script or MTA would be: GraphQL over HTTP, graphql-transport-ws,
and the signed feedback webhook."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import websockets

from server.http.feedback import sign

# Test clients speak plain HTTP to 127.0.0.1, yet each new httpx client loads the whole CA bundle
# (0.2 s of CPU): they share one TLS context instead.
TLS = httpx.create_ssl_context()


def http_client(base_url: str, **options: Any) -> httpx.AsyncClient:
    """An httpx client for a test server (`options` as httpx.AsyncClient takes them)."""
    return httpx.AsyncClient(base_url=base_url, verify=TLS, **options)


class GraphQLErrors(AssertionError):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(json.dumps(errors))
        self.errors = errors

    @property
    def codes(self) -> list[str]:
        return [e.get("extensions", {}).get("code") for e in self.errors]


@dataclass
class Api:
    base_url: str
    http: httpx.AsyncClient
    secret: str
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/graphql"

    async def raw(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        return response.json()  # type: ignore[no-any-return]

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, *, as_: str = "admin"
    ) -> dict[str, Any]:
        """Run as a named operator (see the `api` fixture); raise on any GraphQL error."""
        body = await self.raw(query, variables, self.tokens.get(as_, as_))
        if body.get("errors"):
            raise GraphQLErrors(body["errors"])
        return body["data"]  # type: ignore[no-any-return]

    async def error(
        self, query: str, variables: dict[str, Any] | None = None, *, as_: str = "admin"
    ) -> dict[str, Any]:
        """Run expecting exactly one error; returns it."""
        body = await self.raw(query, variables, self.tokens.get(as_, as_))
        assert body.get("errors"), f"expected an error, got {body}"
        return body["errors"][0]  # type: ignore[no-any-return]

    async def feedback(
        self,
        events: list[dict[str, Any]] | bytes,
        *,
        secret: str | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        body = events if isinstance(events, bytes) else json.dumps({"events": events}).encode()
        headers = {"content-type": "application/json"}
        sig = signature if signature is not None else sign(secret or self.secret, body)
        if sig:
            headers["X-Feedback-Signature"] = sig
        return await self.http.post("/mta/feedback", content=body, headers=headers)

    @asynccontextmanager
    async def subscribe(
        self, query: str, variables: dict[str, Any], *, as_: str = "admin"
    ) -> AsyncIterator["Subscription"]:
        token = self.tokens.get(as_, as_)
        async with websockets.connect(
            self.ws_url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
        ) as ws:
            await ws.send(
                json.dumps(
                    {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
                )
            )
            ack = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert ack["type"] == "connection_ack", ack
            op_id = str(uuid.uuid4())
            await ws.send(
                json.dumps(
                    {
                        "id": op_id,
                        "type": "subscribe",
                        "payload": {"query": query, "variables": variables},
                    }
                )
            )
            yield Subscription(ws, op_id)


@dataclass
class Subscription:
    ws: Any
    op_id: str
    completed: bool = False

    async def next(self, timeout: float = 10) -> dict[str, Any]:
        """The next payload; raises StopAsyncIteration when the server completes."""
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if message.get("type") == "ping":
                await self.ws.send(json.dumps({"type": "pong"}))
                continue
            if message["type"] == "complete":
                self.completed = True
                raise StopAsyncIteration
            if message["type"] == "error":
                raise GraphQLErrors(message["payload"])
            assert message["type"] == "next", message
            return message["payload"]  # type: ignore[no-any-return]

    async def until(self, predicate: Any, timeout: float = 20) -> dict[str, Any]:
        """Read payloads until one satisfies predicate(data); returns that data."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            payload = await self.next(max(left, 0.01))
            if predicate(payload["data"]):
                return payload["data"]  # type: ignore[no-any-return]

    async def rest(self, timeout: float = 20) -> list[dict[str, Any]]:
        """Every payload until the server completes the subscription."""
        out = []
        try:
            while True:
                out.append((await self.next(timeout))["data"])
        except StopAsyncIteration:
            return out


def event(
    message_id: str,
    kind: str,
    *,
    reason: str | None = None,
    at: datetime | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "eventId": event_id or str(uuid.uuid4()),
        "messageId": message_id,
        "type": kind,
        "timestamp": (at or datetime.now(UTC)).isoformat(),
    }
    if reason:
        body["reason"] = reason
    return body


def at(seconds: float) -> datetime:
    """Now plus `seconds` (negative: in the past), for an event's timestamp."""
    return datetime.now(UTC) + timedelta(seconds=seconds)
