"""Limits in front of the GraphQL WebSocket that strawberry does not enforce (docs/websocket.md).

Pure ASGI, wrapped around the `/graphql` WebSocket route, so it needs nothing from strawberry's
internals:
- a message larger than WS_MAX_MESSAGE_BYTES closes the connection with 1009 (Message Too Big,
  RFC 6455), which the `graphql-ws` client takes as fatal: it does not retry the same message;
- a `connection_init` from a client over the authentication-failure limit closes it with 4429
  (server/http/auth_failures.py) before the token is looked at;
- a client address with WS_MAX_SOCKETS_PER_CLIENT sockets open gets its next one closed with
  4429 at once, and an operator with WS_MAX_SOCKETS_PER_OPERATOR sockets open gets the next
  one closed with 4429 at its `connection_init`: one client or one token cannot hold thousands
  of sockets (and 100 subscriptions on each);
- at most OPERATION_STARTS operations are being started at once, server-wide: a `subscribe`
  is handed to strawberry once fewer are starting, and an operation has started when its
  first answer (`next`, `error` or `complete`) goes out. strawberry starts every `subscribe`
  of a socket at once, so 60 sockets sending 100 each made 6,000 operations runnable together,
  and a request such as `/health` waited behind all of them (asyncio runs what is ready in
  turn); now behind a few dozen at most, while the sockets' other messages wait their turn.
  An operation that has not answered within START_TIMEOUT (a slow query) gives its place up.

Strawberry itself does the rest of the protocol: the origin check (with `websocket_origins`
below), the subprotocol, the `connection_init` timeout, the subscriptions per connection.
"""

import asyncio
import json
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.http.websocket_origin import normalize_allowed_origins
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from models.operator import Operator
from server.http import json_input
from server.http.auth_failures import client_of, refusal_message, retry_after
from server.http.graphql_auth import bearer

MESSAGE_TOO_BIG = 1009
TOO_MANY_REQUESTS = 4429
OPERATION_STARTS = 32
START_TIMEOUT = 1.0  # seconds an unanswered operation may hold its place (a slow query)
# How an outgoing message of strawberry's (json.dumps, compact) or ours begins: its id.
ANSWER_ID = re.compile(r'^\{"id":("(?:[^"\\]|\\.)*")')


def websocket_origins(setting: str | None) -> Sequence[str]:
    """ALLOWED_ORIGINS ("https://a.example,https://b.example" or "*") as strawberry takes it;
    unset means same-origin only. A malformed origin is a ValueError at start-up."""
    origins = [part.strip() for part in (setting or "").split(",") if part.strip()]
    try:
        normalize_allowed_origins(origins)
    except ValueError as bad:
        raise ValueError(f"ALLOWED_ORIGINS: {bad}") from None
    return origins


def _size(message: Message) -> int:
    text = message.get("text")
    if text is None:
        return len(message.get("bytes") or b"")
    return len(text) if text.isascii() else len(text.encode())


def _parsed(message: Message) -> dict[str, Any] | None:
    """The protocol message a WebSocket message holds, or None (strawberry closes with 4400)."""
    text = message.get("text")
    if text is None:
        return None
    try:
        parsed = json_input.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _answer_id(message: Message) -> str | None:
    """The operation id an outgoing message answers, if it is one."""
    text = message.get("text")
    if not isinstance(text, str):
        return None
    match = ANSWER_ID.match(text)
    if match is None:
        return None
    found = json.loads(match.group(1))
    return found if isinstance(found, str) else None


def _token(init: dict[str, Any]) -> str | None:
    payload = init.get("payload")
    if not isinstance(payload, dict):
        return None
    return bearer(payload.get("Authorization", payload.get("authorization")))


class Sockets:
    """Open sockets by key (a client address, an operator id): how many, within a limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: Counter[Hashable] = Counter()

    def claim(self, key: Hashable) -> bool:
        if self.open[key] >= self.limit:
            return False
        self.open[key] += 1
        return True

    def release(self, key: Hashable) -> None:
        self.open[key] -= 1
        if self.open[key] <= 0:
            del self.open[key]


def too_many(what: str, limit: int) -> str:
    return f"too many WebSockets {what}: at most {limit}"


class WebSocketGuard:
    def __init__(
        self,
        app: ASGIApp,
        max_message_bytes: int,
        *,
        max_per_client: int,
        max_per_operator: int,
        operator_of: Callable[[str | None], Awaitable[Operator | None]],
    ) -> None:
        self.app, self.max_message_bytes = app, max_message_bytes
        self.clients, self.operators = Sockets(max_per_client), Sockets(max_per_operator)
        self.operator_of = operator_of
        self.starts = asyncio.Semaphore(OPERATION_STARTS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        client = client_of(scope)
        if not self.clients.claim(client):
            await _refuse(scope, receive, send, too_many("from this address", self.clients.limit))
            return
        try:
            await self._guarded(scope, receive, send)
        finally:
            self.clients.release(client)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        closed = False
        initialised = False
        operator: int | None = None
        # this socket's operations not answered yet, each releasing its place at the latest
        # after START_TIMEOUT
        starting: dict[str, asyncio.TimerHandle] = {}

        def started(op_id: str) -> None:
            if starting.pop(op_id, None) is not None:
                self.starts.release()

        async def close(code: int, reason: str) -> Message:
            nonlocal closed
            closed = True
            await send({"type": "websocket.close", "code": code, "reason": reason})
            return {"type": "websocket.disconnect", "code": code, "reason": reason}

        async def guarded_receive() -> Message:
            nonlocal initialised, operator
            message = await receive()
            if message["type"] != "websocket.receive":
                return message
            if _size(message) > self.max_message_bytes:
                return await close(MESSAGE_TOO_BIG, f"message over {self.max_message_bytes} bytes")
            parsed = _parsed(message)
            kind = parsed.get("type") if parsed is not None else None
            if kind == "subscribe" and initialised and isinstance(parsed, dict):
                op_id = parsed.get("id")
                if isinstance(op_id, str) and op_id not in starting:
                    await self.starts.acquire()
                    loop = asyncio.get_running_loop()
                    starting[op_id] = loop.call_later(START_TIMEOUT, started, op_id)
            init = parsed if kind == "connection_init" and not initialised else None
            if init is not None:
                initialised = True
                wait = retry_after(scope)
                if wait is not None:
                    return await close(TOO_MANY_REQUESTS, refusal_message(wait))
                found = await self.operator_of(_token(init))  # a bad token: strawberry's 4403
                if found is not None:
                    if not self.operators.claim(found.id):
                        limit = self.operators.limit
                        return await close(TOO_MANY_REQUESTS, too_many("for this operator", limit))
                    operator = found.id
            return message

        async def guarded_send(message: Message) -> None:
            if starting:
                op_id = _answer_id(message)
                if op_id in starting:
                    starting[op_id].cancel()
                    started(op_id)
            if not closed:  # the app may still be finishing operations: drop what follows
                await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        finally:
            for op_id in list(starting):
                starting[op_id].cancel()
                started(op_id)
            if operator is not None:
                self.operators.release(operator)


async def _refuse(scope: Scope, receive: Receive, send: Send, reason: str) -> None:
    """Accept the handshake (with the subprotocol, so that the client reads the close code as
    graphql-transport-ws) and close it at once with 4429."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    offered = scope.get("subprotocols") or []
    accept: Message = {"type": "websocket.accept"}
    if GRAPHQL_TRANSPORT_WS_PROTOCOL in offered:
        accept["subprotocol"] = GRAPHQL_TRANSPORT_WS_PROTOCOL
    await send(accept)
    await send({"type": "websocket.close", "code": TOO_MANY_REQUESTS, "reason": reason})
