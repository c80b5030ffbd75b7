"""The sending engine: dispatcher (relaying) and scheduler (time-driven work)."""

import asyncio
import contextlib
from typing import Any

from models.enums import DeliveryStatus
from models.relay import release_claims
from server.bus import DELIVERY_TOPIC, ENGINE_TOPIC, EventBus
from server.engine.dispatcher import Dispatcher
from server.engine.intake import FeedbackIntake
from server.engine.leader import Leader
from server.engine.scheduler import Scheduler
from server.mta.base import Mta
from server.settings import Settings


class Engine:
    def __init__(self, settings: Settings, bus: EventBus, mta: Mta, intake: FeedbackIntake):
        self.settings, self.bus, self.mta = settings, bus, mta
        self.dispatcher = Dispatcher(
            bus,
            mta,
            intake,
            batch_size=settings.batch_size,
            lease_seconds=settings.claim_lease_seconds,
            tick_seconds=settings.engine_tick_seconds,
            domain=settings.message_domain,
            max_failures=settings.max_relay_failures,
            retry_seconds=(settings.retry_interval_seconds, settings.retry_later_seconds),
            backoff=(settings.relay_backoff_initial_seconds, settings.relay_backoff_max_seconds),
            record_interval=settings.relay_record_interval_seconds,
        )
        # The dispatcher runs on every worker; the scheduler's work only on the leader.
        self.leader = Leader(settings.database_url)
        self.scheduler = Scheduler(
            bus,
            tick_seconds=settings.engine_tick_seconds,
            stats_refresh_seconds=settings.stats_refresh_seconds,
            wake_dispatcher=self.dispatcher.wake,
            leader=self.leader,
        )
        self._tasks: list[asyncio.Task[Any]] = []

    async def start(self) -> None:
        if self.settings.database_url.startswith("sqlite"):
            # One process owns a SQLite file: leases left by a crash can be dropped at once.
            await release_claims()
        self._tasks = [
            asyncio.create_task(self.dispatcher.run(), name="dispatcher"),
            asyncio.create_task(self.scheduler.run(), name="scheduler"),
            asyncio.create_task(self._listen(), name="engine-wake"),
            asyncio.create_task(self._watch(), name="engine-watch"),
        ]

    async def _listen(self) -> None:
        async with self.bus.subscribe(ENGINE_TOPIC) as events:
            async for _ in events:
                self.dispatcher.wake.set()

    async def _watch(self) -> None:
        """Every "delivery changed" (a stop or a pause from any process, over a shared bus):
        the dispatcher closes the gate of a delivery whose batch it is handing over when the
        event says it stopped or paused, and re-checks its status in the database."""
        async with self.bus.subscribe(DELIVERY_TOPIC) as events:
            async for event in events:
                with contextlib.suppress(TypeError, ValueError):
                    status = event.get("status")
                    self.dispatcher.changed(
                        int(event.get("id", 0)), DeliveryStatus(status) if status else None
                    )

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Let the dispatcher finish its batch and the scheduler its tick, then cancel what is
        left: cancelling in the middle of a transaction could leave the connection locked."""
        self.dispatcher.stopping.set()
        self.scheduler.stopping.set()
        self.dispatcher.wake.set()
        workers = self._tasks[:2]
        if workers:
            await asyncio.wait(workers, timeout=grace_seconds)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.leader.close()
