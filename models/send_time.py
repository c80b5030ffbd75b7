"""Per-recipient send time (issue 17, section 3): each message of a delivery that sends "in each
recipient's time zone" is relayed at the contact date's local wall time in its recipient's zone.

The contact date's wall time is read in the delivery's zone (UTC when it has none): 09:00 in
Madrid becomes 09:00 in New York, Tokyo and Madrid alike. A profile without a zone gets the
delivery's zone. A time already past when the send is confirmed is sent at once: its own send
time is the confirmation.

Each sending log gets its due time (`due_at`, epoch ms) at the confirmation, with one UPDATE
for the whole delivery; the engine claims only logs that are due (`models/relay.py:
claim_batch`). What is waiting is kept on the delivery as a few (due time, count) groups, one
per distinct send time (at most one per zone), so that the progress says how many messages wait
for their time without counting logs.
"""

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from models.delivery import Delivery
from models.errors import BadInput
from models.sql import Sql
from models.timezones import zone


def to_ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def delivery_zone(delivery: Delivery) -> tzinfo:
    """The delivery's own zone (`CreateDeliveryInput.timeZone`, issue 17 section 1, added on
    the calendar branch), or UTC."""
    name = getattr(delivery, "time_zone", None)
    return zone(name) if isinstance(name, str) and name else UTC


def local_send_time(contact: datetime, own: tzinfo, recipient: tzinfo | None) -> datetime:
    """The UTC instant of the contact date's wall time (read in the delivery's zone `own`) in
    the recipient's zone. A wall time that a DST change skips is read with the offset before
    the change (an hour later on the clock); one that happens twice, the first time."""
    wall = contact.astimezone(own).replace(tzinfo=None, fold=0)
    return wall.replace(tzinfo=recipient or own).astimezone(UTC)


def check(send_in_recipient_zone: bool, scheduled_at: datetime | None, recurring: bool) -> None:
    """What a delivery that sends in each recipient's zone needs (BAD_USER_INPUT otherwise)."""
    if not send_in_recipient_zone:
        return
    if scheduled_at is None:
        raise BadInput(
            "sendInRecipientTimeZone needs a contact date (scheduledAt): its local time is"
            " the time each recipient gets the message"
        )
    if recurring:
        raise BadInput("sendInRecipientTimeZone is not offered for recurring deliveries yet")


def _groups(delivery: Delivery) -> list[tuple[int, int]]:
    return [(int(ms), int(n)) for ms, n in (delivery.send_times or [])]


async def assign(sql: Sql, delivery: Delivery, now: datetime) -> datetime:
    """At the confirmation: give each message still to send its due time; returns the first
    one (the delivery starts sending then). The caller saves the delivery."""
    assert delivery.scheduled_at is not None
    own = delivery_zone(delivery)
    rows = await sql.rows(
        "SELECT p.time_zone AS z, COUNT(*) AS n FROM sending_log l"
        " LEFT JOIN profile p ON p.id = l.profile_id"
        " WHERE l.delivery_id = ? AND l.status = 'TO_SEND' GROUP BY p.time_zone",
        [delivery.id],
    )
    floor = to_ms(now)
    default_ms = max(to_ms(local_send_time(delivery.scheduled_at, own, None)), floor)
    cases: list[tuple[str, int]] = []
    counts: dict[int, int] = {}
    for row in rows:
        due = default_ms
        if row["z"]:
            try:
                recipient = zone(row["z"])
            except BadInput:  # stored before the check existed: the delivery's zone
                recipient = None
            if recipient is not None:
                due = max(to_ms(local_send_time(delivery.scheduled_at, own, recipient)), floor)
                if due != default_ms:
                    cases.append((row["z"], due))
        counts[due] = counts.get(due, 0) + int(row["n"])
    params: list[Any] = []
    expression = "CAST(? AS BIGINT)"
    if cases:
        whens = " ".join("WHEN ? THEN CAST(? AS BIGINT)" for _ in cases)
        expression = f"CASE p.time_zone {whens} ELSE CAST(? AS BIGINT) END"
        for name, due in cases:
            params += [name, due]
    # A join, not a subquery per log: one pass over the delivery's logs and their profiles.
    await sql.execute(
        f"UPDATE sending_log SET due_at = {expression} FROM profile p"
        " WHERE p.id = sending_log.profile_id AND sending_log.delivery_id = ?"
        " AND sending_log.status = 'TO_SEND'",
        [*params, default_ms, delivery.id],
    )
    await sql.execute(  # logs whose profile was deleted since the preparation
        "UPDATE sending_log SET due_at = ? WHERE delivery_id = ? AND status = 'TO_SEND'"
        " AND profile_id IS NULL",
        [default_ms, delivery.id],
    )
    delivery.send_times = sorted([ms, n] for ms, n in counts.items())
    return from_ms(min(counts)) if counts else now


def last_send_time(delivery: Delivery) -> datetime | None:
    groups = _groups(delivery)
    return from_ms(max(ms for ms, _ in groups)) if groups else None


def waiting(delivery: Delivery, now: datetime) -> tuple[int, datetime | None]:
    """How many messages wait for their send time, and when the next of them is due."""
    if delivery.status.value not in {"SCHEDULED", "IN_PROGRESS", "PAUSED"}:
        return 0, None
    later = [(ms, n) for ms, n in _groups(delivery) if ms > to_ms(now)]
    if not later:
        return 0, None
    return sum(n for _, n in later), from_ms(min(ms for ms, _ in later))


def validity_end(delivery: Delivery, start: datetime) -> datetime:
    """Each message's validity period starts at its own send time: the delivery's ends with
    the last message's."""
    last = last_send_time(delivery)
    return max(last or start, start) + timedelta(seconds=delivery.validity_period)
