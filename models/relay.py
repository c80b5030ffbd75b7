"""Claiming and recording batches of messages for the sending engine.

A claim is one atomic UPDATE that stamps a lease (`claimed_until`, epoch ms) and the message id
on up to `size` TO_SEND logs; on PostgreSQL the inner SELECT uses FOR UPDATE SKIP LOCKED, so
concurrent workers always get disjoint rows. After the MTA accepted the batch, one UPDATE records
it (status from the feedback table's "relayed" row) and one UPDATE moves the counters. A worker
that dies between the two leaves logs whose lease expires: another worker claims them again,
which is the only way a message can be relayed twice (the batch in flight).
"""

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from models.enums import FailureReason, FailureType, FeedbackMode, SendingLogStatus
from models.sending_log import Outcome, counter_deltas, transition
from models.sql import Sql, in_list


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


def message_id_prefix(delivery_id: int) -> str:
    return f"d{delivery_id}."


async def claim_batch(
    delivery_id: int, size: int, lease_seconds: float, domain: str
) -> list[Claimed]:
    sql = Sql()
    now = now_ms()
    rows = await sql.rows(
        "UPDATE sending_log SET claimed_until = ?,"
        " message_id = COALESCE(message_id, CAST(? AS TEXT) || CAST(id AS TEXT) || CAST(? AS TEXT))"
        " WHERE id IN (SELECT id FROM sending_log WHERE delivery_id = ? AND status = 'TO_SEND'"
        " AND EXISTS (SELECT 1 FROM delivery WHERE id = ? AND status = 'IN_PROGRESS')"
        " AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY id LIMIT ?"
        + sql.skip_locked()
        + ") RETURNING id, address, profile_id, message_id, retries",
        [
            now + int(lease_seconds * 1000),
            message_id_prefix(delivery_id),
            "@" + domain,
            delivery_id,
            delivery_id,
            now,
            size,
        ],
    )
    rows.sort(key=lambda r: r["id"])
    return [
        Claimed(r["id"], r["address"], r["profile_id"], r["message_id"], r["retries"]) for r in rows
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
        + ") RETURNING id, delivery_id, address, profile_id, message_id, retries",
        [at + int(lease_seconds * 1000), at, at, sql.ts(now), size],
    )
    batches: dict[int, list[Claimed]] = {}
    for r in sorted(rows, key=lambda r: r["id"]):
        batches.setdefault(r["delivery_id"], []).append(
            Claimed(r["id"], r["address"], r["profile_id"], r["message_id"], r["retries"], True)
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


async def record_relayed(delivery_id: int, mode: FeedbackMode, log_ids: list[int]) -> int:
    """Record that the MTA accepted these logs: one UPDATE for the logs, one for the counters.

    Logs that feedback already moved (a report faster than this write) or that were cancelled
    by a stop are left alone, except that a cancelled log that was in fact relayed is counted.
    """
    if not log_ids:
        return 0
    after = transition(mode, SendingLogStatus.TO_SEND, None, Outcome.RELAYED)
    assert after is not None
    status, _ = after
    async with in_transaction() as conn:
        sql = Sql(conn)
        await lock_deliveries(sql, [delivery_id])
        count = await sql.execute(
            "UPDATE sending_log SET status = ?, claimed_until = NULL, failure_type = NULL,"
            " failure_reason = NULL WHERE id IN "
            + in_list(log_ids)
            + " AND (status = 'TO_SEND' OR (status = 'IGNORED' AND failure_reason = ?"
            " AND excluded = ?))",
            [status.value, *log_ids, FailureReason.CANCELLED.value, False],
        )
        deltas = counter_deltas(SendingLogStatus.TO_SEND, status)
        await add_to_counters(sql, delivery_id, {k: v * count for k, v in deltas.items()})
    return count


async def lock_deliveries(sql: Sql, delivery_ids: list[int]) -> None:
    """Every writer locks delivery rows (in id order) before their logs, so that operators'
    actions (which lock the delivery, then its logs) and the engine never deadlock."""
    if sql.postgres and delivery_ids:
        ids = sorted(set(delivery_ids))
        await sql.rows(
            "SELECT id FROM delivery WHERE id IN " + in_list(ids) + " ORDER BY id FOR UPDATE", ids
        )


async def add_to_counters(sql: Sql, delivery_id: int, deltas: dict[str, int]) -> None:
    deltas = {k: v for k, v in deltas.items() if v}
    if not deltas:
        return
    sets = ", ".join(f"{name} = {name} + ?" for name in sorted(deltas))
    await sql.execute(
        f"UPDATE delivery SET {sets} WHERE id = ?",
        [deltas[name] for name in sorted(deltas)] + [delivery_id],
    )


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


async def cancel_unsent(sql: Sql, delivery_id: int) -> int:
    """TO_SEND logs become IGNORED (CANCELLED): they will never be relayed; planned retries
    are dropped (the delivery ended, or its validity period did)."""
    await sql.execute(
        "UPDATE sending_log SET retry_at = NULL WHERE delivery_id = ? AND retry_at IS NOT NULL",
        [delivery_id],
    )
    return await sql.execute(
        "UPDATE sending_log SET status = 'IGNORED', failure_type = ?, failure_reason = ?,"
        " claimed_until = NULL WHERE delivery_id = ? AND status = 'TO_SEND'",
        [FailureType.IGNORED.value, FailureReason.CANCELLED.value, delivery_id],
    )


async def release_batch(log_ids: list[int]) -> None:
    """Give messages back (the MTA did not take them): they will be claimed again. A planned
    retry keeps its `retry_at`, so it is due again at once."""
    if log_ids:
        await Sql().execute(
            "UPDATE sending_log SET claimed_until = NULL"
            " WHERE (status = 'TO_SEND' OR retry_at IS NOT NULL) AND id IN " + in_list(log_ids),
            log_ids,
        )
