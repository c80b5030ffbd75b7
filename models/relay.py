"""Claiming and recording batches of messages for the sending engine.

A claim is one atomic UPDATE that stamps a lease (`claimed_until`, epoch ms) and the message id
on up to `size` TO_SEND logs; on PostgreSQL the inner SELECT uses FOR UPDATE SKIP LOCKED, so
concurrent workers always get disjoint rows. While the MTA holds the batch, what it accepted is
recorded every RELAY_RECORD_INTERVAL_SECONDS: one UPDATE of the logs (status from the feedback
table's "relayed" row) and one of the counters, in a transaction that also reads the delivery's
status. A worker that dies between the MTA's answer and its record leaves logs whose lease
expires: another worker claims them again, which is the only way a message can be relayed twice
(at most what was accepted since the last record).
"""

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from models.audit import ENGINE, AuditAction
from models.audit import record as audit
from models.delivery import Delivery, utcnow
from models.enums import (
    DeliveryStatus,
    FailureReason,
    FailureType,
    FeedbackMode,
    SendingLogStatus,
)
from models.kpi_history import record_points
from models.sending_log import Outcome, counter_deltas, transition
from models.sql import Sql, in_list
from models.waiting import recovered_in


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Claimed:
    log_id: int
    address: str
    profile_id: int | None
    message_id: str
    retries: int = 0  # soft bounces so far
    retry: bool = False  # a planned retry of a message the MTA refused for now
    due_at: int | None = None  # epoch ms: its own send time, when it has one (send_time.py)


def message_id_prefix(delivery_id: int) -> str:
    return f"d{delivery_id}."


async def claim_batch(
    delivery_id: int,
    size: int,
    lease_seconds: float,
    domain: str,
    now: datetime | None = None,
    timed: bool = False,
    origin: datetime | None = None,
) -> list[Claimed]:
    """Claim up to `size` messages to send. A `timed` delivery (per-recipient send times,
    waves) gives each message a due time: only those due by `now` are claimed, earliest
    first, straight from the partial index on (delivery_id, due_at, id) of the TO_SEND logs
    that have one (migration 0009). Due times are epoch ms, or ms after `origin` (waves)."""
    sql = Sql()
    at = now_ms()
    if timed:
        due = "AND due_at IS NOT NULL AND due_at <= ?"
        order = "due_at, id"
        bound = int((now or utcnow()).timestamp() * 1000)
        extra = [bound - (int(origin.timestamp() * 1000) if origin else 0)]
    else:
        due, order, extra = "", "id", []
    rows = await sql.rows(
        "UPDATE sending_log SET claimed_until = ?,"
        " message_id = COALESCE(message_id, CAST(? AS TEXT) || CAST(id AS TEXT) || CAST(? AS TEXT))"
        " WHERE id IN (SELECT id FROM sending_log WHERE delivery_id = ? AND status = 'TO_SEND' "
        + due
        + " AND EXISTS (SELECT 1 FROM delivery WHERE id = ? AND status = 'IN_PROGRESS')"
        " AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY "
        + order
        + " LIMIT ?"
        + sql.skip_locked()
        + ") RETURNING id, address, profile_id, message_id, retries, due_at",
        [
            at + int(lease_seconds * 1000),
            message_id_prefix(delivery_id),
            "@" + domain,
            delivery_id,
            *extra,
            delivery_id,
            at,
            size,
        ],
    )
    rows.sort(key=lambda r: r["id"])
    return [
        Claimed(
            r["id"],
            r["address"],
            r["profile_id"],
            r["message_id"],
            r["retries"],
            due_at=r["due_at"],
        )
        for r in rows
    ]


async def claim_retries(size: int, lease_seconds: float, now: datetime) -> dict[int, list[Claimed]]:
    """Claim due retries (SMTP 4xx refusals), by delivery: only while the delivery is sending
    or sent and its validity period runs; after it, expiry settles the message for good."""
    sql = Sql()
    at = now_ms()
    rows = await sql.rows(
        "UPDATE sending_log SET claimed_until = ?"
        " WHERE id IN (SELECT id FROM sending_log WHERE retry_at IS NOT NULL AND retry_at <= ?"
        " AND (claimed_until IS NULL OR claimed_until < ?)"
        " AND EXISTS (SELECT 1 FROM delivery d WHERE d.id = sending_log.delivery_id"
        " AND d.status IN ('IN_PROGRESS', 'SENT') AND d.valid_until > ?)"
        " ORDER BY retry_at, id LIMIT ?"
        + sql.skip_locked()
        + ") RETURNING id, delivery_id, address, profile_id, message_id, retries, due_at",
        [at + int(lease_seconds * 1000), int(now.timestamp() * 1000), at, sql.ts(now), size],
    )
    batches: dict[int, list[Claimed]] = {}
    for r in sorted(rows, key=lambda r: r["id"]):
        batches.setdefault(r["delivery_id"], []).append(
            Claimed(
                r["id"],
                r["address"],
                r["profile_id"],
                r["message_id"],
                r["retries"],
                True,
                r["due_at"],
            )
        )
    return batches


async def extend_claims(log_ids: list[int], lease_seconds: float) -> int:
    """Push the lease of a batch still being relayed further out, so that a slow MTA (a batch
    that outlives its lease) does not let another worker claim and relay it a second time.
    Only logs still under a lease are touched: one recorded meanwhile is left alone."""
    if not log_ids:
        return 0
    return await Sql().execute(
        "UPDATE sending_log SET claimed_until = ? WHERE claimed_until IS NOT NULL AND id IN "
        + in_list(log_ids),
        [now_ms() + int(lease_seconds * 1000), *log_ids],
    )


def next_retry(
    retries: int, now: datetime, valid_until: datetime, interval: float, later: float
) -> datetime | None:
    """The product's retry plan (SPEC §4): the first RETRIES_AT_INTERVAL retries `interval`
    seconds apart, then one every `later` seconds; none once the validity period is over."""
    step = interval if retries <= RETRIES_AT_INTERVAL else later
    at = now + timedelta(seconds=step)
    return at if at < valid_until else None


RETRIES_AT_INTERVAL = 5


async def plan_retries(plan: dict[int, datetime | None]) -> None:
    """Set (or clear) each log's next retry and drop its claim."""
    by_time: dict[int | None, list[int]] = {}
    for log_id, at in plan.items():
        by_time.setdefault(int(at.timestamp() * 1000) if at else None, []).append(log_id)
    sql = Sql()
    for at_ms, ids in by_time.items():
        await sql.execute(
            "UPDATE sending_log SET retry_at = ?, claimed_until = NULL WHERE id IN " + in_list(ids),
            [at_ms, *ids],
        )


@dataclass(frozen=True)
class Recorded:
    """What one record did, and the delivery as the record found it under its row lock: the
    dispatcher re-checks the status there (a stop or a pause closes the batch's gate)."""

    count: int  # logs moved to the relayed status
    status: DeliveryStatus | None  # None: the delivery is gone
    recovered: bool = False  # the delivery was waiting for the MTA, and no longer is


async def record_relayed(
    delivery_id: int, mode: FeedbackMode, log_ids: list[int], now: datetime | None = None
) -> Recorded:
    """Record that the MTA took these logs (accepted, or refused at once: either way handed
    over): one UPDATE for the logs, one for the counters, in one transaction that locks the
    delivery row and reads its status.

    Logs that feedback already moved (a report faster than this write) are left alone. A log
    that was inside an SMTP transaction when its delivery was stopped, or when its validity
    period ended, was relayed all the same: it is moved from CANCELLED or NOT_RELAYED to the
    relayed status, so that the figures say exactly what the MTA got (for a stop, an audit event
    `RELAYED_AFTER_STOP` corrects the stop's `cancelled` count). The MTA answered, so a delivery
    waiting for it is no longer waiting (audited once, as `MTA_RECOVERED`).
    """
    after = transition(mode, SendingLogStatus.TO_SEND, None, Outcome.RELAYED)
    assert after is not None
    status, _ = after
    async with in_transaction() as conn:
        sql = Sql(conn)
        row: dict[str, Any] | None = None
        if sql.postgres:  # lock order: the delivery row before its logs (see lock_deliveries)
            row = await _delivery_row(sql, delivery_id, " FOR UPDATE")
            if row is None:
                return Recorded(0, None)
        count = revived = 0
        deltas: dict[str, int] = {}
        moves = ", claimed_until = NULL, failure_type = NULL, failure_reason = NULL WHERE id IN "
        relayed = counter_deltas(SendingLogStatus.TO_SEND, status)
        if log_ids:
            count = await sql.execute(
                "UPDATE sending_log SET status = ?" + moves + in_list(log_ids)
                + " AND status = 'TO_SEND'",
                [status.value, *log_ids],
            )  # fmt: skip
            deltas = {k: v * count for k, v in relayed.items()}
        if count < len(log_ids):  # rare: a report came first, or a stop / an expiry meanwhile
            revived = await sql.execute(
                "UPDATE sending_log SET status = ?" + moves + in_list(log_ids)
                + " AND status = 'IGNORED' AND failure_reason = ? AND excluded = ?",
                [status.value, *log_ids, FailureReason.CANCELLED.value, False],
            )  # fmt: skip
            unfailed = await sql.execute(
                "UPDATE sending_log SET status = ?" + moves + in_list(log_ids)
                + " AND status = 'FAILED' AND failure_reason = ?",
                [status.value, *log_ids, FailureReason.NOT_RELAYED.value],
            )  # fmt: skip
            for name, value in relayed.items():
                deltas[name] = deltas.get(name, 0) + value * revived
            for name, value in counter_deltas(SendingLogStatus.FAILED, status).items():
                deltas[name] = deltas.get(name, 0) + value * unfailed
            count += revived + unfailed
        # The counters' UPDATE reads the status back (RETURNING): no extra round trip.
        row = await add_to_counters(sql, delivery_id, deltas, returning=True) or row
        if row is None:
            row = await _delivery_row(sql, delivery_id, "")
            if row is None:
                return Recorded(0, None)
        current = DeliveryStatus(row["status"])
        if revived and current is DeliveryStatus.STOPPED:
            await _relayed_after_stop(sql, delivery_id, revived, now)
        recovered = False
        if row["waiting_since"] is not None:
            recovered = await recovered_in(sql, delivery_id, now or datetime.now(UTC))
    return Recorded(count, current, recovered)


async def _delivery_row(sql: Sql, delivery_id: int, lock: str) -> dict[str, Any] | None:
    rows = await sql.rows(
        "SELECT status, waiting_since FROM delivery WHERE id = ?" + lock, [delivery_id]
    )
    return rows[0] if rows else None


async def _relayed_after_stop(
    sql: Sql, delivery_id: int, relayed: int, now: datetime | None
) -> None:
    left = await sql.rows(
        "SELECT COUNT(*) AS n FROM sending_log WHERE delivery_id = ? AND status = 'IGNORED'"
        " AND failure_reason = ? AND excluded = ?",
        [delivery_id, FailureReason.CANCELLED.value, False],
    )
    await audit(
        AuditAction.RELAYED_AFTER_STOP,
        ENGINE,
        delivery=await Delivery.get(id=delivery_id),
        at=now,
        detail={"relayed": relayed, "cancelled": int(left[0]["n"])},
    )


async def delivery_status(delivery_id: int) -> DeliveryStatus | None:
    """The status alone: the dispatcher's re-check while a batch is being handed over."""
    rows = await Sql().rows("SELECT status FROM delivery WHERE id = ?", [delivery_id])
    return DeliveryStatus(rows[0]["status"]) if rows else None


async def lock_deliveries(sql: Sql, delivery_ids: list[int]) -> None:
    """Every writer locks delivery rows (in id order) before their logs, so that operators'
    actions (which lock the delivery, then its logs) and the engine never deadlock."""
    if sql.postgres and delivery_ids:
        ids = sorted(set(delivery_ids))
        await sql.rows(
            "SELECT id FROM delivery WHERE id IN " + in_list(ids) + " ORDER BY id FOR UPDATE", ids
        )


# The delivery and, for an occurrence, its recurring delivery: a recurring delivery's counters
# are the sums of its occurrences' (SPEC §5), moved by the same statement as the occurrence's.
# So an occurrence's row is always locked before its parent's (PostgreSQL): a transaction that
# locks a recurring delivery and then its occurrences must not also wait for counters to move
# (models/stats.py locks the occurrences first; models/lifecycle.py's execution of a recurring
# delivery locks the occurrences it may write before the recurring delivery, and only stops an
# occurrence that has relayed nothing).
AND_ITS_PARENT = "id IN (?, (SELECT p.parent_id FROM delivery p WHERE p.id = ?))"


async def add_to_counters(
    sql: Sql, delivery_id: int, deltas: dict[str, int], *, returning: bool = False
) -> dict[str, Any] | None:
    """Add to the delivery's counters (and to its recurring delivery's), and write the new
    figures into their history (models/kpi_history.py); with `returning`, the delivery's status
    and waiting state as the update left them (None when there was nothing to add)."""
    deltas = {k: v for k, v in deltas.items() if v}
    if not deltas:
        return None
    sets = ", ".join(f"{name} = {name} + ?" for name in sorted(deltas))
    params = [deltas[name] for name in sorted(deltas)] + [delivery_id, delivery_id]
    statement = f"UPDATE delivery SET {sets} WHERE {AND_ITS_PARENT}"
    row: dict[str, Any] | None = None
    if not returning:
        await sql.execute(statement, params)
    else:
        rows = await sql.rows(statement + " RETURNING id, status, waiting_since", params)
        row = next((r for r in rows if int(r["id"]) == delivery_id), None)
    await record_points(sql, AND_ITS_PARENT, [delivery_id, delivery_id], key=delivery_id)
    return row


async def release_claims() -> int:
    """Forget every lease: safe only when no other worker shares the database (SQLite)."""
    return await Sql().execute(
        "UPDATE sending_log SET claimed_until = NULL"
        " WHERE claimed_until IS NOT NULL AND (status = 'TO_SEND' OR retry_at IS NOT NULL)"
    )


async def has_unsent(delivery_id: int) -> bool:
    rows = await Sql().rows(
        "SELECT 1 AS x FROM sending_log WHERE delivery_id = ? AND status = 'TO_SEND' LIMIT 1",
        [delivery_id],
    )
    return bool(rows)


async def drop_retries(sql: Sql, delivery_id: int) -> None:
    """Planned retries are dropped: the delivery was stopped, or its validity period ended."""
    await sql.execute(
        "UPDATE sending_log SET retry_at = NULL WHERE delivery_id = ? AND retry_at IS NOT NULL",
        [delivery_id],
    )


async def cancel_unsent(sql: Sql, delivery_id: int) -> int:
    """A stop: TO_SEND logs become IGNORED (CANCELLED), never to be relayed, and planned
    retries are dropped. (A batch being handed over at that moment stops at its next
    transaction: see server/engine/dispatcher.py.)"""
    await drop_retries(sql, delivery_id)
    return await sql.execute(
        "UPDATE sending_log SET status = 'IGNORED', failure_type = ?, failure_reason = ?,"
        " claimed_until = NULL WHERE delivery_id = ? AND status = 'TO_SEND'",
        [FailureType.IGNORED.value, FailureReason.CANCELLED.value, delivery_id],
    )


async def fail_unrelayed(sql: Sql, delivery_id: int) -> int:
    """The validity period is over: TO_SEND logs have failed for good (FAILED / SOFT /
    NOT_RELAYED), counted in `processed` and `failed` so that the send's progress reaches its
    end and no rate over `processed` can exceed 100 % (docs/kpis.md)."""
    moved = await sql.execute(
        "UPDATE sending_log SET status = 'FAILED', failure_type = ?, failure_reason = ?,"
        " claimed_until = NULL WHERE delivery_id = ? AND status = 'TO_SEND'",
        [FailureType.SOFT.value, FailureReason.NOT_RELAYED.value, delivery_id],
    )
    deltas = counter_deltas(SendingLogStatus.TO_SEND, SendingLogStatus.FAILED)
    await add_to_counters(sql, delivery_id, {k: v * moved for k, v in deltas.items()})
    return moved


async def count_unsent(sql: Sql, delivery_id: int) -> int:
    rows = await sql.rows(
        "SELECT COUNT(*) AS n FROM sending_log WHERE delivery_id = ? AND status = 'TO_SEND'",
        [delivery_id],
    )
    return int(rows[0]["n"])


async def release_batch(log_ids: list[int]) -> None:
    """Give messages back (the MTA did not take them): they will be claimed again. A planned
    retry keeps its `retry_at`, so it is due again at once."""
    if log_ids:
        await Sql().execute(
            "UPDATE sending_log SET claimed_until = NULL"
            " WHERE (status = 'TO_SEND' OR retry_at IS NOT NULL) AND id IN " + in_list(log_ids),
            log_ids,
        )
