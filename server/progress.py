"""Live deployment progress: database snapshots of a delivery, pushed when it changes.

One watcher per watched delivery and process, however many subscribers: it wakes on the bus,
re-reads the delivery, and hands the newest snapshot to every subscriber. A slow subscriber
skips to the newest snapshot instead of queueing old ones, so memory stays bounded.

Pacing (bench/fanout.py measures it). Handing a snapshot to a subscriber costs about 0.06 ms
once its selection has been executed for all (graphql_schema/execution.py), so a round for
6,000 subscribers is still about 0.3 s of CPU. The watcher wakes them FANOUT_SLICE at a time,
and the next slice once this one's snapshots have been sent (or after SLICE_TIMEOUT), so the
rest of the server (requests, the engine, the webhooks, database replies) waits for a slice at
most, never for a whole round. After a snapshot has gone out, the watcher waits until
every subscriber that was waiting for it has taken it, then `interval` more before it reads
again, coalescing what arrived meanwhile: a busy delivery is read at most once per round +
interval, rounds never overlap, and a change after a quiet spell is read at once.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from models.delivery import Delivery, utcnow
from models.enums import TERMINAL_STATUSES
from server.bus import DELIVERY_TOPIC, EventBus

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Snapshot:
    delivery: Delivery
    at: datetime
    # What is computed once for every subscriber of this snapshot (its GraphQL payload and the
    # results of executing it: graphql_schema/deliveries/subscriptions.py).
    shared: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[Any, ...]:
        d = self.delivery
        return (d.status, *d.kpis.figures(), d.waiting_since, d.waiting_retry_at)

    @property
    def final(self) -> bool:
        return self.delivery.status in TERMINAL_STATUSES


READ_BACKOFF = (0.1, 1.0)  # first and longest pause between reads the database did not answer
DRAIN_TIMEOUT = 10.0  # seconds; a safety net: the round's takers are all runnable already
FANOUT_SLICE = 20  # subscribers woken at a time (about 1 ms of work, the result being shared)
SLICE_TIMEOUT = 0.02  # seconds to wait for a slice to be sent before waking the next anyway


class _Watch:
    def __init__(self, delivery_id: int, interval: float) -> None:
        self.delivery_id, self.interval = delivery_id, interval
        # A recurring delivery's occurrences: its figures are their sums (SPEC §5), so an
        # event about one of them wakes this watch too (ProgressHub._listen).
        self.occurrences: frozenset[int] = frozenset()
        self.dirty = asyncio.Event()
        self.changed = asyncio.Condition()
        self.snapshot: Snapshot | None = None
        self.version = 0
        self.gone = False
        self.users = 0
        self.waiting = 0  # subscribers blocked until the next version
        self.pending = 0  # of those at the last publish, how many have not taken it yet
        self.drained = asyncio.Event()
        self.sending = 0  # woken subscribers of the current slice still handing it on
        self.slice_sent = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def newer_than(self, version: int) -> bool:
        return self.version > version

    def took(self) -> None:
        """A subscriber counted at the last publish has taken it (or left)."""
        if self.pending > 0:
            self.pending -= 1
            if self.pending == 0:
                self.drained.set()

    def sent(self) -> None:
        """A subscriber woken by the current slice is back for more (or left): its snapshot
        has gone out (strawberry sends it before asking the generator for the next)."""
        if self.sending > 0:
            self.sending -= 1
            if self.sending == 0:
                self.slice_sent.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                self.dirty.clear()
                delivery = await self._read()
                snap = Snapshot(delivery, utcnow()) if delivery is not None else None
                if snap is None or self.snapshot is None or snap.key != self.snapshot.key:
                    await self._publish(snap)
                    # (asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(DRAIN_TIMEOUT):
                            await self.drained.wait()
                if snap is None or snap.final:
                    return
                quiet_until = loop.time() + self.interval
                await self.dirty.wait()
                # coalesce what arrives until then; a change after a quiet spell goes at once
                await asyncio.sleep(max(0.0, quiet_until - loop.time()))
        finally:
            if not self.gone and (self.snapshot is None or not self.snapshot.final):
                await self._publish(None)

    async def _fetch(self) -> Delivery | None:
        delivery = await Delivery.get_or_none(id=self.delivery_id)
        if delivery is not None and delivery.is_recurring:
            ids = await Delivery.filter(parent_id=delivery.id).values_list("id", flat=True)
            self.occurrences = frozenset(int(str(i)) for i in ids)
        return delivery

    async def _read(self) -> Delivery | None:
        """The delivery row. While the database cannot answer (a restart, a fail-over, a full
        disk) the subscribers keep waiting and the read is tried again, pausing longer each
        time, instead of their streams ending: they resume by themselves."""
        pause = READ_BACKOFF[0]
        while True:
            try:
                return await self._fetch()
            except Exception as error:
                log.warning(
                    "live progress of delivery %s: cannot read it (%s); retrying in %.1f s",
                    self.delivery_id,
                    error,
                    pause,
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, READ_BACKOFF[1])

    async def _publish(self, snap: Snapshot | None) -> None:
        async with self.changed:
            if snap is None:
                self.gone = True
            else:
                self.snapshot = snap
            self.version += 1
            self.pending = to_wake = self.waiting
            if self.pending:
                self.drained.clear()
            else:
                self.drained.set()
        # A slice at a time, the next once this one has been sent: woken all at once, every
        # subscriber would be runnable at the same time, and a request, a timer or a database
        # reply would wait behind the whole round (0.3 s for 6,000 subscribers), since asyncio
        # runs what is ready in turn. So at most a slice's work is ever ahead of them.
        while to_wake > 0:
            async with self.changed:
                self.sending = min(FANOUT_SLICE, self.waiting)
                self.slice_sent.clear()
                self.changed.notify(FANOUT_SLICE)
            to_wake -= FANOUT_SLICE
            if self.sending:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(SLICE_TIMEOUT):
                        await self.slice_sent.wait()
            await asyncio.sleep(0)


class ProgressHub:
    def __init__(self, bus: EventBus, interval: float) -> None:
        self.bus, self.interval = bus, interval
        self._watches: dict[int, _Watch] = {}
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        ready = asyncio.Event()
        self._listener = asyncio.create_task(self._listen(ready), name="progress-hub")
        await ready.wait()

    async def close(self) -> None:
        for task in [self._listener, *(w.task for w in self._watches.values())]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _listen(self, ready: asyncio.Event) -> None:
        async with self.bus.subscribe(DELIVERY_TOPIC) as events:
            ready.set()
            async for event in events:
                if "id" not in event:  # RESYNC: events may have been lost, re-read them all
                    for each in list(self._watches.values()):
                        each.dirty.set()
                    continue
                changed = int(event["id"])
                watch = self._watches.get(changed)
                if watch is not None:
                    watch.dirty.set()
                for each in self._recurring():
                    if changed in each.occurrences:
                        each.dirty.set()

    def _recurring(self) -> list[_Watch]:
        return [w for w in self._watches.values() if w.occurrences]

    async def snapshots(self, delivery_id: int) -> AsyncIterator[Snapshot]:
        """Yields a snapshot at once, then each change; ends when the delivery ends or is gone."""
        watch = self._watches.get(delivery_id)
        if watch is None:
            watch = self._watches[delivery_id] = _Watch(delivery_id, self.interval)
            watch.task = asyncio.create_task(watch.run(), name=f"progress-{delivery_id}")
        watch.users += 1
        seen = 0
        woken = False  # by a slice, whose pacing waits for this subscriber to be back
        try:
            while True:
                if woken:
                    woken = False
                    watch.sent()
                async with watch.changed:
                    if not watch.newer_than(seen):
                        watch.waiting += 1
                        try:
                            await watch.changed.wait_for(partial(watch.newer_than, seen))
                            woken = True
                        finally:
                            watch.waiting -= 1
                            watch.took()
                    seen, snap, gone = watch.version, watch.snapshot, watch.gone
                if gone or snap is None:
                    return  # deleted, or the watcher could not read it
                yield snap
                if snap.final:
                    return
        finally:
            if woken:
                watch.sent()
            watch.users -= 1
            if watch.users == 0 and self._watches.get(delivery_id) is watch:
                del self._watches[delivery_id]
                if watch.task is not None:
                    watch.task.cancel()
