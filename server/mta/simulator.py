"""`simulator://`: a built-in MTA that makes a deployment move like a real one.

Each message is delivered, hard-bounces or soft-bounces with settable shares; a soft bounce is
retried on the product's plan (five retries on the first day at least one hour apart, then one a
day until the end of the validity period), each retry succeeding with a settable chance. The
plan is compressed by `time_scale` (3600: an hour of the plan lasts a second), so a 3.5-day
period's 8 retries happen within about 84 s; the period itself still ends at its real time.
Reports go through the same feedback path as the webhook, in batches.

    simulator://?delivered=0.9&hard=0.03&soft=0.07&retry_success=0.6&delay=0.5&time_scale=3600&seed=1
"""

import asyncio
import collections
import contextlib
import heapq
import itertools
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from models.enums import FailureReason, FeedbackType
from models.feedback import MAX_EVENTS, Event
from models.proofs import ProofMessage, ProofOutcome, Relayed
from models.reasons import Verdict, check_table
from server.mta.base import Content, FeedbackSink, Handover

log = logging.getLogger(__name__)
HOUR = 3600.0
LINGER = 0.1  # seconds: reports due this close together go in one batch
FIRST_DAY_RETRIES = 5
HARD_REASONS = [FailureReason.USER_UNKNOWN, FailureReason.USER_UNKNOWN, FailureReason.REFUSED]
SOFT_REASONS = [FailureReason.MAILBOX_FULL, FailureReason.INVALID_DOMAIN, FailureReason.UNREACHABLE]
check_table("the simulator's hard reasons", ((r, Verdict.HARD, r) for r in HARD_REASONS))
check_table("the simulator's soft reasons", ((r, Verdict.SOFT, r) for r in SOFT_REASONS))


@dataclass(frozen=True)
class SimulatorConfig:
    delivered: float = 0.90
    hard: float = 0.03
    soft: float = 0.07
    retry_success: float = 0.6
    delay: float = 0.5
    time_scale: float = 3600.0
    seed: int | None = None

    @classmethod
    def from_url(cls, url: str) -> "SimulatorConfig":
        query = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
        known = {"delivered", "hard", "soft", "retry_success", "delay", "time_scale", "seed"}
        unknown = set(query) - known
        if unknown:
            raise ValueError(f"unknown simulator setting(s): {', '.join(sorted(unknown))}")
        values: dict[str, float | int] = {}
        for key, raw in query.items():
            values[key] = int(raw) if key == "seed" else float(raw)
        config = cls(**values)  # type: ignore[arg-type]
        if min(config.delivered, config.hard, config.soft) < 0 or (
            config.delivered + config.hard + config.soft <= 0
        ):
            raise ValueError("simulator shares must be >= 0 and not all 0")
        if config.delay < 0 or config.time_scale <= 0 or not 0 <= config.retry_success <= 1:
            raise ValueError("simulator delay >= 0, time_scale > 0, 0 <= retry_success <= 1")
        return config


def retry_offsets(validity_seconds: float) -> list[float]:
    """The product's retry plan, in plan seconds after the first soft bounce."""
    offsets = [HOUR * i for i in range(1, FIRST_DAY_RETRIES + 1)]
    day = 24 * HOUR
    offsets += [day * i for i in range(1, int(validity_seconds // day) + 1)]
    return [o for o in offsets if o < validity_seconds]


class SimulatorMta:
    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        self._heap: list[tuple[float, int, Event]] = []
        self._ready: collections.deque[Event] = collections.deque()
        self._order = itertools.count()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sink: FeedbackSink | None = None
        self._stopping = False

    async def start(self, sink: FeedbackSink) -> None:
        self._sink = sink
        self._task = asyncio.create_task(self._run(), name="mta-simulator")

    async def close(self) -> None:
        """Stop between two feedback batches (never inside one), then drop what is planned."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await asyncio.wait([self._task], timeout=10)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def relay(self, content: Content, handover: Handover) -> None:
        """The whole batch in one step: the gate is asked once, just before."""
        if not handover.may_send():
            handover.withhold(handover.batch)
            return
        batch = handover.batch
        now = time.monotonic()
        wall = datetime.now(UTC)
        remaining = max(0.0, (content.valid_until - wall).total_seconds())
        # The whole plan is compressed: a 3.5-day validity period holds 5 + 3 retries, which
        # happen within validity / time_scale real seconds, and never after the real deadline.
        offsets = [
            offset / self.config.time_scale
            for offset in retry_offsets(content.validity_period)
            if offset / self.config.time_scale < remaining
        ]
        for message in batch:
            self._plan(message.message_id, now, wall, offsets)
        self._wake.set()
        handover.accepted += [m.log_id for m in batch]

    async def send_proofs(self, number: int, messages: list[ProofMessage]) -> list[Relayed]:
        """The simulator takes every proof and reports nothing: a proof has no sending log."""
        return [Relayed(ProofOutcome.ACCEPTED) for _ in messages]

    def _push(
        self,
        at: float,
        wall: datetime,
        now: float,
        message_id: str,
        n: int,
        kind: FeedbackType,
        reason: FailureReason | None = None,
    ) -> None:
        event = Event(
            event_id=f"sim-{message_id}-{n}",
            message_id=message_id,
            type=kind,
            timestamp=wall if at == now else wall + timedelta(seconds=at - now),
            reason=reason,
        )
        if at == now:
            self._ready.append(event)  # due at once (no delay): no need to order it
        else:
            heapq.heappush(self._heap, (at, next(self._order), event))

    def _plan(self, message_id: str, now: float, wall: datetime, offsets: list[float]) -> None:
        c, rng = self.config, self._rng
        first = now + (rng.uniform(0.5, 1.5) * c.delay if c.delay else 0.0)
        draw = rng.random() * (c.delivered + c.hard + c.soft)
        if draw < c.delivered:
            self._push(first, wall, now, message_id, 0, FeedbackType.DELIVERED)
            return
        if draw < c.delivered + c.hard:
            reason = rng.choice(HARD_REASONS)
            self._push(first, wall, now, message_id, 0, FeedbackType.HARD_BOUNCE, reason)
            return
        reason = rng.choice(SOFT_REASONS)
        self._push(first, wall, now, message_id, 0, FeedbackType.SOFT_BOUNCE, reason)
        for n, offset in enumerate(offsets, start=1):
            at = first + offset
            if rng.random() < c.retry_success:
                self._push(at, wall, now, message_id, n, FeedbackType.DELIVERED)
                return
            self._push(at, wall, now, message_id, n, FeedbackType.SOFT_BOUNCE, reason)

    async def _run(self) -> None:
        assert self._sink is not None
        while not self._stopping:
            if self._ready:
                count = min(len(self._ready), MAX_EVENTS)
                await self._deliver([self._ready.popleft() for _ in range(count)])
                continue
            if not self._heap:
                self._wake.clear()
                await self._wake.wait()
                continue
            due_at = self._heap[0][0]
            wait = due_at - time.monotonic()
            if wait > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
                continue
            now = time.monotonic()
            events: list[Event] = []
            # Reports due within LINGER go together: fewer, larger feedback transactions.
            while self._heap and self._heap[0][0] <= now + LINGER and len(events) < MAX_EVENTS:
                events.append(heapq.heappop(self._heap)[2])
            await self._deliver(events)

    async def _deliver(self, events: list[Event]) -> None:
        assert self._sink is not None
        try:
            await self._sink(events)
        except Exception:  # a report the server could not take is not the MTA's problem
            log.exception("simulator feedback failed")
        await asyncio.sleep(0)
