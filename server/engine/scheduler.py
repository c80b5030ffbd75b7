"""The clock of the engine: scheduled starts, recurring occurrences, the end of validity
periods and the periodic open / click refresh. It ticks every `tick_seconds` (0.25 s by
default), so a validity period ends within about a second of its time, not at an hourly job.
With several workers on PostgreSQL only the leader (server/engine/leader.py) does this work.
Recurring deliveries follow their calendar rule in their time zone (models/recurrence.py), with
an occurrence per execution or per aggregation period (`spawn_occurrences`)."""

import asyncio
import contextlib
import logging
import time
from datetime import datetime
from typing import cast

from models.delivery import Delivery, utcnow
from models.enums import DeliveryStatus
from models.lifecycle import expire_due, spawn_occurrences, start_due
from models.stats import refresh_tracking
from models.tracking import deliveries_tracked_since
from server.bus import DELIVERY_TOPIC, EventBus
from server.engine.leader import Leader

log = logging.getLogger(__name__)

TRACKED = (DeliveryStatus.IN_PROGRESS, DeliveryStatus.PAUSED, DeliveryStatus.SENT)


# Tracking rows below the newest id seen that the next refresh reads again (see refresh_stats).
TRACKING_LOOKBACK_IDS = 1000


class Scheduler:
    def __init__(
        self,
        bus: EventBus,
        *,
        tick_seconds: float,
        stats_refresh_seconds: float,
        wake_dispatcher: asyncio.Event,
        leader: Leader,
    ) -> None:
        self.bus = bus
        self.leader = leader
        self.tick_seconds = tick_seconds
        self.stats_refresh_seconds = stats_refresh_seconds
        self.wake_dispatcher = wake_dispatcher
        self._next_refresh = time.monotonic() + stats_refresh_seconds
        self._tracking_seen = 0  # the newest tracking_log id a successful refresh looked at
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        while not self.stopping.is_set():
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler tick failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=self.tick_seconds)

    async def tick(self) -> None:
        if await self.leader.holds():
            await self.work(utcnow())

    async def work(self, now: datetime) -> None:
        """One round of the clock's work at `now`. Tests that move the clock (a recurrence
        across a DST change, without sleeping through it) call it with the time they want."""
        started = await start_due(now)
        spawned = await spawn_occurrences(now)
        if started or spawned:
            self.wake_dispatcher.set()
        changed = set(started) | set(spawned) | set(await expire_due(now))
        if time.monotonic() >= self._next_refresh:
            self._next_refresh = time.monotonic() + self.stats_refresh_seconds
            changed |= await self.refresh_stats()
        for delivery_id in sorted(changed):
            await self.bus.publish(DELIVERY_TOPIC, {"id": delivery_id})

    async def refresh_stats(self) -> set[int]:
        """Deliveries still sending or sent, and any other delivery (finished, stopped) that
        got opens or clicks since the last refresh: recipients open old emails too."""
        ids = set(
            cast(list[int], await Delivery.filter(status__in=TRACKED).values_list("id", flat=True))
        )
        # Look back a little: on PostgreSQL a tracking row can commit after a row with a
        # higher id (ids are taken at insert, rows seen at commit), and the marker moves only
        # once the refreshes succeeded, so a refresh the database refused is done again.
        since = max(0, self._tracking_seen - TRACKING_LOOKBACK_IDS)
        touched, seen = await deliveries_tracked_since(since)
        changed = {i for i in sorted(ids | touched) if await refresh_tracking(i)}
        self._tracking_seen = max(self._tracking_seen, seen)
        return changed
