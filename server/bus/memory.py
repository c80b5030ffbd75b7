"""The in-process bus: one bounded queue per subscriber; a full queue drops its oldest event.

Dropping is safe because events only say "look again"; a slow subscriber cannot grow memory.
"""

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

QUEUE_SIZE = 256
log = logging.getLogger(__name__)


class MemoryBus:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        self.deliver(topic, payload)

    def deliver(self, topic: str, payload: dict[str, Any]) -> None:
        """Hand `payload` to this process's subscribers of `topic` (the cross-process buses'
        listeners call this for what they receive)."""
        for queue in list(self._subscribers.get(topic, ())):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(payload)

    def resync(self) -> None:
        """Tell every subscriber of every topic to re-read (server.bus.RESYNC)."""
        from server.bus import RESYNC

        for topic in list(self._subscribers):
            self.deliver(topic, RESYNC)

    def deliver_raw(self, topic: str, data: bytes | str) -> None:
        """`deliver` for an event as it came over the wire (JSON); a malformed one is logged
        and dropped: events are hints, and subscribers re-read the database anyway."""
        try:
            payload = json.loads(data)
        except ValueError:
            log.warning("event bus: ignored a malformed event on %r", topic)
            return
        self.deliver(topic, payload)

    @asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers[topic].add(queue)

        async def events() -> AsyncIterator[dict[str, Any]]:
            while True:
                yield await queue.get()

        try:
            yield events()
        finally:
            self._subscribers[topic].discard(queue)
            if not self._subscribers[topic]:
                del self._subscribers[topic]

    async def close(self) -> None:
        self._subscribers.clear()
