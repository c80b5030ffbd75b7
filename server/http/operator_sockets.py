"""Revoked means revoked on WebSockets too: each open socket's operator is checked again.

`connection_init` authenticates a socket once; after that, the operator is looked up again
- for every operation the socket starts (`subscribe`: subscriptions, queries and mutations),
  through the same token cache as HTTP (TOKEN_CACHE_SECONDS); and
- by a sweep every TOKEN_CACHE_SECONDS (every second when it is 0) that reads the operators of
  all open sockets in one query, so that running subscriptions are covered as well.
A socket whose token no longer matches a live operator (revoked, rotated, deleted) is closed
with 4403 and its operations are cancelled; the others take the operator's current roles. A
revocation or rotation through GraphQL closes that operator's sockets on this server at once.
"""

import asyncio
import contextlib
import logging
from typing import Protocol, cast

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    Operation as WsOperation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    SubscribeMessage,
)

from graphql_schema.context import Context
from models.operator import operators_by_token_hash
from server.gc_tuning import GcTuning
from server.http.token_cache import TokenCache

log = logging.getLogger("server.websocket")

REVOKED = 4403
REVOKED_REASON = "the bearer token is no longer valid"


class CheckingView(Protocol):
    """What the handler needs from the view (server/graphql_app.py)."""

    tokens: TokenCache
    sockets: "OperatorSockets"
    gc_tuning: GcTuning


class OperatorCheckedHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """strawberry's graphql-transport-ws handler, with the operator checked for every
    operation and the socket known to the view's `OperatorSockets` while it is open."""

    token_hash: str | None = None

    @property
    def _view(self) -> CheckingView:
        return cast(CheckingView, self.view)

    async def handle(self) -> None:
        """The socket's life, and each operation's below, counted by the garbage collection
        tuning (server/gc_tuning.py): long-lived ones are frozen out of full collections."""
        with self._view.gc_tuning.tracking():
            await super().handle()

    async def run_operation(self, operation: WsOperation[Context, None]) -> None:
        with self._view.gc_tuning.tracking():
            await super().run_operation(operation)

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        await super().handle_connection_init(message)
        operator = self.context.operator
        if self.connection_acknowledged and operator is not None and self.token_hash is None:
            self.token_hash = operator.token_hash  # what the socket's token hashes to
            self._view.sockets.add(self)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self.token_hash is not None:
            operator = await self._view.tokens.operator_by_hash(self.token_hash)
            if operator is None:
                await self.close_revoked()
                return
            self.context.operator = operator  # its current roles
        await super().handle_subscribe(message)

    async def close_revoked(self) -> None:
        """Cancel every operation first (nothing more is sent), then close with 4403."""
        for operation_id in list(self.operations):
            await self.cleanup_operation(operation_id)
        with contextlib.suppress(Exception):  # already closed by the client: nothing to do
            await self.websocket.close(code=REVOKED, reason=REVOKED_REASON)

    async def shutdown(self) -> None:
        self._view.sockets.discard(self)
        await super().shutdown()


class OperatorSockets:
    """The open, authenticated sockets of this server, and the sweep that checks them."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._open: set[OperatorCheckedHandler] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._sweeping = False  # never cancel the sweeper halfway through closing sockets
        self._closing: set[asyncio.Task[int]] = set()

    def __len__(self) -> int:
        return len(self._open)

    def add(self, handler: OperatorCheckedHandler) -> None:
        self._open.add(handler)
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.create_task(self._sweep_while_open())

    def discard(self, handler: OperatorCheckedHandler) -> None:
        self._open.discard(handler)
        if not self._open and self._sweeper is not None and not self._sweeping:
            self._sweeper.cancel()  # nothing left to check: no task outlives the sockets
            self._sweeper = None

    async def _sweep_while_open(self) -> None:
        while self._open:
            await asyncio.sleep(self.interval)
            self._sweeping = True
            try:
                await self.sweep()
            except Exception:  # the database may be away for a moment: the next sweep retries
                log.warning("could not check the operators of open WebSockets", exc_info=True)
            finally:
                self._sweeping = False

    def close_after(self, operator_id: int, task: "asyncio.Task[object] | None") -> None:
        """Close the operator's sockets whose token no longer matches once `task` (the request
        or operation that revoked or rotated it) is over: an administrator who rotates its own
        token over a socket receives the new one before that socket closes."""

        async def close() -> int:
            if task is not None:
                await asyncio.wait({task})
            return await self.sweep(operator_id)

        closing = asyncio.create_task(close())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    async def sweep(self, operator_id: int | None = None) -> int:
        """Close the sockets (of one operator, or all) whose token no longer matches a live
        operator, in one query; give the others their operator's current roles. Returns how
        many were closed."""
        handlers = [
            h
            for h in self._open
            if operator_id is None
            or (h.context.operator is not None and h.context.operator.id == operator_id)
        ]
        if not handlers:
            return 0
        hashes = sorted({h.token_hash for h in handlers if h.token_hash})
        live = await operators_by_token_hash(hashes)
        closed = 0
        for handler in handlers:
            operator = live.get(handler.token_hash or "")
            if operator is None:
                self._open.discard(handler)
                await handler.close_revoked()
                closed += 1
            else:
                handler.context.operator = operator
        return closed
