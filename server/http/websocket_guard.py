"""Limits in front of the GraphQL WebSocket that strawberry does not enforce (docs/websocket.md).

Pure ASGI, wrapped around the `/graphql` WebSocket route, so it needs nothing from strawberry's
internals:
- a message larger than WS_MAX_MESSAGE_BYTES closes the connection with 1009 (Message Too Big,
  RFC 6455), which the `graphql-ws` client takes as fatal: it does not retry the same message;
- a `connection_init` from a client over the authentication-failure limit closes it with 4429
  (server/http/auth_failures.py) before the token is looked at.

Strawberry itself does the rest of the protocol: the origin check (with `websocket_origins`
below), the subprotocol, the `connection_init` timeout, the subscriptions per connection.
"""

from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.http.websocket_origin import normalize_allowed_origins

from server.http import json_input
from server.http.auth_failures import refusal_message, retry_after

MESSAGE_TOO_BIG = 1009
TOO_MANY_REQUESTS = 4429


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


def _is_connection_init(message: Message) -> bool:
    text = message.get("text")
    if text is None:
        return False
    try:
        parsed = json_input.loads(text)
    except ValueError:
        return False  # strawberry closes with 4400
    return isinstance(parsed, dict) and parsed.get("type") == "connection_init"


class WebSocketGuard:
    def __init__(self, app: ASGIApp, max_message_bytes: int) -> None:
        self.app, self.max_message_bytes = app, max_message_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        closed = False
        initialised = False

        async def close(code: int, reason: str) -> Message:
            nonlocal closed
            closed = True
            await send({"type": "websocket.close", "code": code, "reason": reason})
            return {"type": "websocket.disconnect", "code": code, "reason": reason}

        async def guarded_receive() -> Message:
            nonlocal initialised
            message = await receive()
            if message["type"] != "websocket.receive":
                return message
            if _size(message) > self.max_message_bytes:
                return await close(MESSAGE_TOO_BIG, f"message over {self.max_message_bytes} bytes")
            if not initialised and _is_connection_init(message):
                initialised = True
                wait = retry_after(scope)
                if wait is not None:
                    return await close(TOO_MANY_REQUESTS, refusal_message(wait))
            return message

        async def guarded_send(message: Message) -> None:
            if not closed:  # the app may still be finishing operations: drop what follows
                await send(message)

        await self.app(scope, guarded_receive, guarded_send)
