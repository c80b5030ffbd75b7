"""The progress of CSV uploads of profiles, carried by the event bus to subscribers in every
process (the `profileImportProgress` subscription).

Unlike a delivery's progress, nothing is stored: each event carries the upload's figures so
far, and the last one says it is over. A subscriber hears the events published after it
started listening, so a client subscribes first and uploads second (docs/bulk.md).
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from server.bus import EventBus

IMPORT_TOPIC = "profile_import"  # payload: the upload's figures (ImportProgressSource)


class ImportProgress:
    def __init__(self, bus: EventBus) -> None:
        self.bus = bus

    async def publish(self, event: dict[str, Any]) -> None:
        await self.bus.publish(IMPORT_TOPIC, event)

    @asynccontextmanager
    async def follow(self, import_id: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        async with self.bus.subscribe(IMPORT_TOPIC) as events:

            async def of_this_import() -> AsyncIterator[dict[str, Any]]:
                async for event in events:
                    if event.get("importId") == import_id:
                        yield event

            yield of_this_import()
