"""Complaints and unsubscribes: the recipient said no (issue 15).

A spam complaint (a provider's report, a feedback-loop ARF report) or an unsubscribe (a
provider's, or the product's own one-click link) is recorded against the message's sending log
(`complained_at`, `unsubscribed_at`: the first time of each), counts once per log in the
delivery's `complaints` / `unsubscriptions` counters, moved in the same transaction, and puts the
address on the deny list with the reason (COMPLAINT, UNSUBSCRIBED) and the time. It changes no
status, and it applies whenever it arrives, also after the validity period: a recipient may
complain about an old message, and must never be written to again.

A second report for the same log counts nothing again but still deny-lists the address: a
recipient who unsubscribes again after an administrator took them off the list is back on it.
"""

from dataclasses import dataclass
from datetime import datetime

from tortoise.transactions import in_transaction

from models.denylist import denylist
from models.enums import DenylistReason, FeedbackType
from models.relay import add_to_counters, lock_deliveries
from models.sql import Sql, in_list
from models.tracking import HANDED_OVER


@dataclass(frozen=True)
class Kind:
    column: str  # on sending_log: when it happened first
    counter: str  # on delivery: how many logs have it
    reason: DenylistReason  # on the deny list


KINDS: dict[FeedbackType, Kind] = {
    FeedbackType.COMPLAINT: Kind("complained_at", "complaints", DenylistReason.COMPLAINT),
    FeedbackType.UNSUBSCRIBE: Kind(
        "unsubscribed_at", "unsubscriptions", DenylistReason.UNSUBSCRIBED
    ),
}


# Feedback types (RFC 5965 `Feedback-Type`, SES `complaintFeedbackType`, SparkPost `fbtype`)
# that are not a recipient's complaint: a report that a message is *not* spam, and
# authentication-failure reports (RFC 6591). Any other type, an unknown one, or none at all
# (SES often has none) is a complaint, as RFC 5965 says to treat unknown types as "other".
NOT_COMPLAINTS = frozenset({"not-spam", "auth-failure", "dmarc"})


def is_complaint(feedback_type: object) -> bool:
    return not (isinstance(feedback_type, str) and feedback_type.strip().lower() in NOT_COMPLAINTS)


@dataclass(frozen=True)
class OptOut:
    log_id: int
    delivery_id: int
    address: str
    type: FeedbackType  # COMPLAINT or UNSUBSCRIBE
    at: datetime


async def record_opt_outs(sql: Sql, items: list[OptOut]) -> set[int]:
    """Record opt-outs inside the caller's transaction, which has locked the deliveries (and, in
    the feedback path, the logs and the addresses). Returns the deliveries whose counters moved."""
    changed: set[int] = set()
    for kind_type, kind in KINDS.items():
        first: dict[int, OptOut] = {}
        for item in sorted((i for i in items if i.type is kind_type), key=lambda i: i.at):
            first.setdefault(item.log_id, item)
        if not first:
            continue
        ids = sorted(first)
        rows = await sql.rows(
            f"SELECT id FROM sending_log WHERE {kind.column} IS NULL AND id IN " + in_list(ids),
            ids,
        )
        new = [first[r["id"]] for r in rows]
        await sql.many(
            f"UPDATE sending_log SET {kind.column} = ? WHERE id = ? AND {kind.column} IS NULL",
            [[sql.ts(item.at), item.log_id] for item in sorted(new, key=lambda i: i.log_id)],
        )
        per_delivery: dict[int, int] = {}
        for item in new:
            per_delivery[item.delivery_id] = per_delivery.get(item.delivery_id, 0) + 1
        for delivery_id in sorted(per_delivery):
            await add_to_counters(sql, delivery_id, {kind.counter: per_delivery[delivery_id]})
        changed |= set(per_delivery)
    await denylist(sql, [(i.address, KINDS[i.type].reason, i.at) for i in items])
    return changed


async def unsubscribe(delivery_id: int, log_id: int, now: datetime) -> bool | None:
    """The product's own one-click unsubscribe, in one transaction. None when the log does not
    exist in that delivery; else whether the delivery's counters moved (its first time)."""
    async with in_transaction() as conn:
        sql = Sql(conn)
        await lock_deliveries(sql, [delivery_id])
        rows = await sql.rows(
            "SELECT address FROM sending_log s WHERE id = ? AND delivery_id = ? AND "
            + HANDED_OVER  # a preview's unsubscribe link, before the send, unsubscribes nobody
            + sql.for_update(),
            [log_id, delivery_id],
        )
        if not rows:
            return None
        opt_out = OptOut(log_id, delivery_id, rows[0]["address"], FeedbackType.UNSUBSCRIBE, now)
        return bool(await record_opt_outs(sql, [opt_out]))
