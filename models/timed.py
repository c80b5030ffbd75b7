"""The hooks a timed delivery adds to the lifecycle (models/lifecycle.py): one whose messages
each have their own due time, for their recipient's zone (models/send_time.py) or their wave
(models/waves.py). Kept apart so that the lifecycle reads as before: each hook does nothing
for a delivery sent at once.
"""

import itertools
from collections.abc import Sequence
from datetime import datetime

from models import send_time, waves
from models.delivery import Delivery
from models.errors import BadInput
from models.sql import Sql


def check(
    send_in_recipient_zone: bool,
    plan: waves.WavePlan | None,
    scheduled_at: datetime | None,
    recurring: bool,
) -> None:
    send_time.check(send_in_recipient_zone, scheduled_at, recurring)
    if plan is None:
        return
    plan.check()
    if send_in_recipient_zone:
        raise BadInput("give either sendInRecipientTimeZone or waves, not both")
    if recurring:
        raise BadInput("waves are not offered for recurring deliveries yet")


def on_confirm(delivery: Delivery, now: datetime) -> datetime | None:
    """At the confirmation of a delivery sent in each recipient's zone: when its first
    message is due (the preparation gave each its send time); None for any other delivery."""
    if not delivery.send_in_recipient_time_zone:
        return None
    first = send_time.first_send_time(delivery, now)
    delivery.first_due_at = first
    return first


async def due_times(
    sql: Sql, delivery: Delivery, targets: Sequence[tuple[int | None, bool]]
) -> list[int | None]:
    """At the preparation: each target's due time, for (profile id, excluded) pairs in log
    order (None: excluded, or a delivery sent at once). Sent in each recipient's zone: an
    epoch-ms time, and the delivery keeps its groups; in waves: the wave's offset in ms from
    the anchor (the start). The caller saves the delivery."""
    delivery.send_times = None  # type: ignore[assignment]
    times = await send_time.send_times_for(sql, delivery)
    if times is not None:
        dues = [None if excluded else times.due(pid) for pid, excluded in targets]
        delivery.send_times = times.groups()
        return dues
    plan = waves.plan_of(delivery)
    if plan is None:
        return [None] * len(targets)
    ranks = itertools.count()
    return [None if excluded else plan.offset_ms(next(ranks)) for _, excluded in targets]


def on_start(delivery: Delivery, now: datetime) -> None:
    """The sending starts (after `Delivery.begin_sending`): the waves count from now, and the
    validity period runs until the last message's own period ends."""
    if delivery.wave_size is not None:
        waves.start(delivery, now)
        last = waves.last_wave_at(delivery) or now
        delivery.valid_until = send_time.validity_end(delivery, last)
    elif delivery.send_in_recipient_time_zone:
        delivery.valid_until = send_time.validity_end(delivery, now)


def on_resume(delivery: Delivery, now: datetime, held_since: datetime | None) -> None:
    """A resume continues the wave schedule: every wave left moves later by the time the
    sending stood still (models/waves.py: shift_after_pause). Messages sent in their
    recipient's zone keep their local time: those that came due meanwhile go at once."""
    if delivery.wave_size is not None and held_since is not None:
        waves.shift_after_pause(delivery, now - held_since)
