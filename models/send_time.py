"""Per-recipient send time (issue 17, section 3): each message of a delivery that sends "in each
recipient's time zone" is relayed at the contact date's local wall time in its recipient's zone.

The contact date's wall time is read in the delivery's zone (UTC when it has none): 09:00 in
Madrid becomes 09:00 in New York, Tokyo and Madrid alike. A profile without a zone gets the
delivery's zone. A time already past when the send is confirmed is sent at once: its own send
time is the confirmation.

Each sending log gets its due time (`due_at`, epoch ms) when the preparation writes it
(`models/preparation.py: create_logs`, from the profiles' zones then: what the operator
reviewed), so the confirmation writes nothing per message; the engine claims only logs that
are due (`models/relay.py: claim_batch`). What is waiting is kept on the delivery as a few
(due time, count) groups, one per distinct send time (at most one per zone), so that the
progress says how many messages wait for their time without counting logs.
"""

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from models.delivery import Delivery
from models.errors import BadInput
from models.sql import Sql, in_list
from models.timezones import zone


def to_ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def delivery_zone(delivery: Delivery) -> tzinfo:
    """The delivery's own zone (`CreateDeliveryInput.timeZone`, UTC unless given)."""
    return zone(delivery.time_zone)


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
    if not delivery.send_in_recipient_time_zone:
        return []
    return [(int(ms), int(n)) for ms, n in (delivery.send_times or [])]


async def zones_of(sql: Sql, audience: dict[str, Any]) -> dict[int, str]:
    """The zone of each profile of the audience that has one."""
    if audience.get("all"):
        rows = await sql.rows("SELECT id, time_zone FROM profile WHERE time_zone IS NOT NULL")
        return {int(r["id"]): r["time_zone"] for r in rows}
    ids = [int(i) for i in audience.get("profileIds", [])]
    zones: dict[int, str] = {}
    for start in range(0, len(ids), 5000):  # PostgreSQL takes at most 32,767 parameters
        chunk = ids[start : start + 5000]
        rows = await sql.rows(
            "SELECT id, time_zone FROM profile WHERE time_zone IS NOT NULL AND id IN "
            + in_list(chunk),
            chunk,
        )
        zones.update({int(r["id"]): r["time_zone"] for r in rows})
    return zones


class SendTimes:
    """At the preparation: each recipient's send time (epoch ms), and the groups that the
    delivery keeps (`Delivery.send_times`). The times are the contact date's wall time in
    each zone, not yet clamped to the confirmation: a time already past at the confirmation is
    simply due at once (the claim takes every message due by now)."""

    def __init__(self, delivery: Delivery, zones: dict[int, str]) -> None:
        assert delivery.scheduled_at is not None
        self.contact = delivery.scheduled_at
        self.own = delivery_zone(delivery)
        self.zones = zones
        self.default = to_ms(local_send_time(self.contact, self.own, None))
        self._by_zone: dict[str, int] = {}
        self.counts: dict[int, int] = {}

    def due(self, profile_id: int | None) -> int:
        """One message's send time; counted in its group."""
        name = self.zones.get(profile_id) if profile_id is not None else None
        at = self.default
        if name is not None:
            found = self._by_zone.get(name)
            if found is None:
                try:
                    recipient: tzinfo | None = zone(name)
                except BadInput:  # stored before the check existed: the delivery's zone
                    recipient = None
                found = to_ms(local_send_time(self.contact, self.own, recipient))
                self._by_zone[name] = found
            at = found
        self.counts[at] = self.counts.get(at, 0) + 1
        return at

    def groups(self) -> list[list[int]]:
        return sorted([ms, n] for ms, n in self.counts.items())


async def send_times_for(sql: Sql, delivery: Delivery) -> SendTimes | None:
    """What the preparation needs to give each message its send time (None: sent at once)."""
    if not delivery.send_in_recipient_time_zone or delivery.scheduled_at is None:
        return None
    return SendTimes(delivery, await zones_of(sql, delivery.audience))


def first_send_time(delivery: Delivery, now: datetime) -> datetime:
    """At the confirmation: when the first message is due (now, when its time is past)."""
    groups = _groups(delivery)
    first = from_ms(min(ms for ms, _ in groups)) if groups else now
    return max(first, now)


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
