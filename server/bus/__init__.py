"""Event bus: how "something changed" travels from the writer to subscribers and the engine.

Events are small JSON-able dicts published after a commit on a topic. Subscribers re-read the
database, so a lost or coalesced event never shows stale data, only later data.
"""

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

DELIVERY_TOPIC = "delivery"  # payload: {"id": delivery id}
ENGINE_TOPIC = "engine"  # payload: {} — wake the engine (a delivery was confirmed)
# Delivered on every topic by a cross-process bus when its listening connection is (re)made:
# events published while it was away are lost, so every subscriber re-reads what it follows.
RESYNC: dict[str, Any] = {"resync": True}


class EventBus(Protocol):
    async def publish(self, topic: str, payload: dict[str, Any]) -> None: ...

    def subscribe(
        self, topic: str
    ) -> AbstractAsyncContextManager[AsyncIterator[dict[str, Any]]]: ...

    async def close(self) -> None: ...


def make_bus(url: str) -> EventBus:
    """The bus named by EVENT_BUS_URL; the cross-process ones connect on first use."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "memory":
        from server.bus.memory import MemoryBus

        return MemoryBus()
    if scheme in ("redis", "rediss"):
        from server.bus.redis import RedisBus

        return RedisBus(url)
    if scheme in ("postgres", "postgresql"):
        from server.bus.postgres import PostgresBus

        return PostgresBus(url)
    raise ValueError(
        f"EVENT_BUS_URL {url!r} is not supported: use memory://, redis://, rediss://,"
        " postgres:// or postgresql://"
    )
