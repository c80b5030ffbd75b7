"""Waves (issue 17, section 4): a delivery relayed a part at a time, so that a new IP or domain
warms up and a bad message can be stopped after the first wave.

The plan is arithmetic: wave 1 holds the first `first_size` messages (in log order) and is due
when the sending starts (the anchor); wave k > 1 holds the next `size` and is due
`(k - 1) * interval` after the anchor. The preparation writes each message's wave time as an
offset from the anchor (`due_at`, ms; `models/timed.py: due_times`), and the engine claims only
messages whose offset has come (`models/relay.py: claim_batch` with the anchor as origin), so
nothing of a later wave leaves before its time, a stop cancels every wave not yet relayed, and
a pause holds them. A resume continues the schedule: the anchor moves later by the length of
the pause, so what was due before the pause goes at the resume and the waves after it keep
their spacing; nothing is written per message.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from models.delivery import Delivery
from models.errors import BadInput

MAX_WAVE_SIZE = 1_000_000
MAX_INTERVAL_MINUTES = 7 * 24 * 60  # a week between two waves


@dataclass(frozen=True)
class WavePlan:
    first_size: int
    size: int
    interval_minutes: int

    def check(self) -> "WavePlan":
        for name, value, top in (
            ("firstSize", self.first_size, MAX_WAVE_SIZE),
            ("size", self.size, MAX_WAVE_SIZE),
            ("intervalMinutes", self.interval_minutes, MAX_INTERVAL_MINUTES),
        ):
            if not 1 <= value <= top:
                raise BadInput(f"waves: {name} must be between 1 and {top} (got {value})")
        return self

    @property
    def interval(self) -> timedelta:
        return timedelta(minutes=self.interval_minutes)

    def count(self, total: int) -> int:
        """How many waves `total` messages take."""
        rest = max(0, total - self.first_size)
        return 1 + -(-rest // self.size)

    def released(self, waves: int, total: int) -> int:
        """How many messages the first `waves` waves hold."""
        if waves <= 0:
            return 0
        return min(total, self.first_size + (waves - 1) * self.size)

    def offset_ms(self, rank: int) -> int:
        """When the message at `rank` (from 0, in log order) is due, after the anchor."""
        if rank < self.first_size:
            return 0
        wave = (rank - self.first_size) // self.size + 1
        return wave * int(self.interval.total_seconds() * 1000)

    def started(self, anchor: datetime, now: datetime, total: int) -> int:
        """How many waves have started by `now` (0 before the anchor)."""
        if now < anchor:
            return 0
        return min(self.count(total), 1 + int((now - anchor) / self.interval))


def plan_of(delivery: Delivery) -> WavePlan | None:
    first, size, minutes = (
        delivery.wave_first_size,
        delivery.wave_size,
        delivery.wave_interval_minutes,
    )
    if first is None or size is None or minutes is None:
        return None
    return WavePlan(first, size, minutes)


@dataclass(frozen=True)
class WaveState:
    """Where a delivery is in its waves, as the API shows it."""

    plan: WavePlan
    count: int  # waves in all
    current: int  # the wave under way (0: none started yet)
    next_at: datetime | None  # when the next wave starts (None: the last has started, or stopped)
    waiting: int  # messages of waves not started yet


def state(delivery: Delivery, now: datetime) -> WaveState | None:
    plan = plan_of(delivery)
    if plan is None:
        return None
    total = delivery.to_send
    count = plan.count(total)
    anchor = delivery.wave_anchor
    if anchor is None:  # not started: every wave is ahead
        return WaveState(plan, count, 0, None, total if _live(delivery) else 0)
    if delivery.status.value == "PAUSED" and delivery.paused_at is not None:
        now = delivery.paused_at  # the waves stand still while paused
    current = plan.started(anchor, now, total)
    live = _live(delivery)
    moving = live and delivery.status.value != "PAUSED"
    next_at = anchor + plan.interval * current if current < count and moving else None
    waiting = total - plan.released(current, total) if live else 0
    return WaveState(plan, count, current, next_at, waiting)


def _live(delivery: Delivery) -> bool:
    """A wave may still start: the delivery is not stopped, failed or over."""
    return delivery.status.value in {"DRAFT", "READY", "PENDING_CONFIRMATION", "SCHEDULED",
                                     "IN_PROGRESS", "PAUSED"}  # fmt: skip


def start(delivery: Delivery, now: datetime) -> None:
    """The sending starts: wave 1 is due now, and every wave after it counts from here."""
    delivery.wave_anchor = now


def last_wave_at(delivery: Delivery) -> datetime | None:
    plan = plan_of(delivery)
    if plan is None or delivery.wave_anchor is None:
        return None
    return delivery.wave_anchor + plan.interval * (plan.count(delivery.to_send) - 1)


def shift_after_pause(delivery: Delivery, held: timedelta) -> None:
    """At a resume: every wave left, and the validity period's end, move later by `held`, the
    time the sending stood still. The messages' due times count from the anchor, so moving it
    moves them all: nothing is written per message."""
    if held <= timedelta(0):
        return
    if delivery.wave_anchor is not None:
        delivery.wave_anchor += held
    if delivery.valid_until is not None:
        delivery.valid_until += held
