"""What resolvers get at run time. The server fills it; this package never imports `server`."""

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from graphql_schema.loaders import Loaders
from models.compose import Tracker
from models.delivery import Delivery
from models.enums import FeedbackMode
from models.operator import Operator
from models.proofs import ProofMessage, ProofOutcome, ProofRelay, Relayed


class Snapshot(Protocol):
    @property
    def delivery(self) -> Delivery: ...

    @property
    def at(self) -> datetime: ...

    @property
    def shared(self) -> dict[str, Any]:
        """Kept with the snapshot for its subscribers: what is computed once for them all."""
        ...


class Changed(Protocol):
    """Publish "this delivery changed" after the commit; with its new status when a mutation
    knows it, so that a worker handing the delivery's messages to the MTA stops at once on a
    stop or a pause (server/engine/dispatcher.py), without reading the database first."""

    async def __call__(self, delivery_id: int, status: str | None = None) -> None: ...


class ProgressSource(Protocol):
    def snapshots(self, delivery_id: int) -> AsyncIterator[Snapshot]: ...


class ImportProgressSource(Protocol):
    """The progress of CSV uploads of profiles (server/http/profile_import.py publishes it):
    `follow(import_id)` enters once listening, then yields each event of that import as a
    dict (importId, operatorId, state, lines, created, updated, rejected, error)."""

    def follow(
        self, import_id: str
    ) -> AbstractAsyncContextManager[AsyncIterator[dict[str, Any]]]: ...


async def _nothing(operator_id: int) -> None:
    return None


async def _no_mta(number: int, messages: Sequence[ProofMessage]) -> list[Relayed]:
    return [Relayed(ProofOutcome.NOT_SENT, "no MTA is configured") for _ in messages]


@dataclass
class Context:
    operator: Operator | None
    token_given: bool
    default_mode: FeedbackMode
    # Publish "this delivery changed" (after the commit) and "wake the engine".
    changed: Changed
    wake_engine: Callable[[], Awaitable[None]]
    progress: ProgressSource
    imports: ImportProgressSource | None = None
    # "This operator was revoked or its token rotated": the server forgets the cached token
    # and closes the operator's open WebSockets (4403).
    operator_changed: Callable[[int], Awaitable[None]] = _nothing
    # Where previews' and proofs' tracking URLs point, and the configured MTA for proofs.
    tracker: Tracker = field(default_factory=lambda: Tracker("http://localhost", ""))
    relay_proof: ProofRelay = _no_mta
    # Strawberry puts the WebSocket `connection_init` payload here.
    connection_params: dict[str, Any] | None = None
    # Set once a mutation starts executing: the server does not cancel it when its client goes
    # away (server/http/graphql_http.py), so that what it commits is also published.
    mutating: bool = False
    # The data loaders of one execution: for_operation() gives each operation (and each event
    # of a subscription) its own, since one WebSocket connection shares one context.
    loaders: Loaders = field(default_factory=Loaders)

    def for_operation(self) -> "Context":
        """This context with fresh loaders, for one execution."""
        return dataclasses.replace(self, loaders=Loaders())

    def audience(self) -> Hashable:
        """What, besides the operation and its variables, decides what a resolver answers: two
        subscribers with the same audience may share one execution of a snapshot. Roles today
        (permissions.py checks roles only); a resolver that reads more of the operator must
        add it here."""
        if self.operator is None:
            return None
        return frozenset(self.operator.role_set)
