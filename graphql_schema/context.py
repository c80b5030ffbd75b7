"""What resolvers get at run time. The server fills it; this package never imports `server`."""

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from strawberry.dataloader import DataLoader

from models.delivery import Delivery
from models.enums import FeedbackMode
from models.operator import Operator
from models.profile import Profile


class Snapshot(Protocol):
    @property
    def delivery(self) -> Delivery: ...

    @property
    def at(self) -> datetime: ...


class Changed(Protocol):
    """Publish "this delivery changed" after the commit; with its new status when a mutation
    knows it, so that a worker handing the delivery's messages to the MTA stops at once on a
    stop or a pause (server/engine/dispatcher.py), without reading the database first."""

    async def __call__(self, delivery_id: int, status: str | None = None) -> None: ...


class ProgressSource(Protocol):
    def snapshots(self, delivery_id: int) -> AsyncIterator[Snapshot]: ...


async def _load_profiles(ids: list[int]) -> list[Profile | None]:
    found = {p.id: p for p in await Profile.filter(id__in=ids)}
    return [found.get(i) for i in ids]


@dataclass
class Context:
    operator: Operator | None
    token_given: bool
    default_mode: FeedbackMode
    # Publish "this delivery changed" (after the commit) and "wake the engine".
    changed: Changed
    wake_engine: Callable[[], Awaitable[None]]
    progress: ProgressSource
    # Strawberry puts the WebSocket `connection_init` payload here.
    connection_params: dict[str, Any] | None = None
    # Batches without caching: one WebSocket shares a context, and caching would go stale.
    profiles: DataLoader[int, Profile | None] = field(
        default_factory=lambda: DataLoader(load_fn=_load_profiles, cache=False)
    )
