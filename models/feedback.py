"""Applying the MTA's reports to sending logs (SPEC §4), in one transaction per batch.

Every event is recorded once by its `eventId` (a replay changes nothing). An event whose
message id matches no log is counted `unknown` and not recorded, so that it can be sent again
once the log exists. A recorded bounce or delivery report changes nothing when the delivery's
validity period is over, when it is older than the log's last event, or when its reason is an
ignored one. Complaints and unsubscribes change no status and always apply (models/optouts.py).

An event names its log by the MTA message id, or, when the source knows the log itself (a
bounce to the message's VERP address, server/inbound/), by `log_id`.
"""

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from tortoise import fields
from tortoise.models import Model
from tortoise.transactions import in_transaction

from models.address_status import AddressState, load_address_states, save_address_states
from models.enums import (
    IGNORED_REASONS,
    FailureReason,
    FailureType,
    FeedbackMode,
    FeedbackType,
    SendingLogStatus,
)
from models.optouts import KINDS as OPT_OUTS
from models.optouts import OptOut, record_opt_outs
from models.quarantine import (
    QuarantinePolicy,
    on_hard_error,
    on_soft_error,
    on_success_after_retry,
)
from models.reasons import Bounce, Verdict
from models.relay import add_to_counters, lock_deliveries
from models.sending_log import OUTCOME_OF_FEEDBACK, Outcome, counter_deltas, transition
from models.sql import Sql, in_list, parse_ts
from models.tracking import tracked_logs

MAX_EVENTS = 1000
SENT = SendingLogStatus.SENT
# The reason of a bounce reported without one (the contract's webhook makes `reason` optional).
DEFAULT_REASONS: dict[FeedbackType, Bounce] = {
    FeedbackType.HARD_BOUNCE: Bounce(Verdict.HARD, FailureReason.USER_UNKNOWN),
    FeedbackType.SOFT_BOUNCE: Bounce(Verdict.SOFT, FailureReason.UNDEFINED),
}


class FeedbackEvent(Model):
    """Each report the MTA sent, kept for idempotency and for the record."""

    event_id = fields.CharField(max_length=200, primary_key=True)
    message_id = fields.CharField(max_length=128)
    type = fields.CharField(max_length=16)
    reason = fields.CharField(max_length=32, null=True)
    occurred_at = fields.DatetimeField()
    received_at = fields.DatetimeField()

    class Meta:
        table = "feedback_event"


@dataclass(frozen=True)
class Event:
    event_id: str
    message_id: str
    type: FeedbackType
    timestamp: datetime
    reason: FailureReason | None = None
    # The sending log, when the source names it directly (then `message_id` may be empty).
    log_id: int | None = None


@dataclass
class FeedbackResult:
    accepted: int = 0
    duplicates: int = 0
    unknown: int = 0
    deliveries: set[int] = field(default_factory=set)
    # Which events were new, and which named no log (the rest were duplicates): a caller that
    # applies several sources' events in one batch tells each its own outcome.
    recorded: set[str] = field(default_factory=set)
    unmatched: set[str] = field(default_factory=set)


@dataclass
class _Log:
    id: int
    delivery_id: int
    address: str
    status: SendingLogStatus
    failure_type: FailureType | None
    failure_reason: str | None
    retries: int
    event_at: datetime | None
    mode: FeedbackMode
    valid_until: datetime | None
    changed: bool = False
    initial: SendingLogStatus | None = None  # the status before this batch

    def __post_init__(self) -> None:
        self.initial = self.status


async def apply_feedback(
    events: list[Event], now: datetime, policy: QuarantinePolicy | None = None
) -> FeedbackResult:
    policy = policy or QuarantinePolicy()
    result = FeedbackResult()
    # Within one batch the first copy of an eventId wins; the others are duplicates.
    unique: dict[str, Event] = {}
    for event in events:
        if event.event_id in unique:
            result.duplicates += 1
        else:
            unique[event.event_id] = event
    if not unique:
        return result
    async with in_transaction() as conn:
        sql = Sql(conn)
        unique = await _resolve_log_ids(sql, unique)
        message_ids = sorted({e.message_id for e in unique.values() if e.message_id})
        if not message_ids:
            result.unknown = len(unique)
            result.unmatched = set(unique)
            return result
        if sql.postgres:
            await lock_deliveries(sql, await _deliveries_of(sql, message_ids))
        logs = await _load_logs(sql, message_ids)
        known = [e for e in unique.values() if e.message_id in logs]
        result.unknown = len(unique) - len(known)
        result.unmatched = {e.event_id for e in unique.values() if e.message_id not in logs}
        inserted = await _record_events(sql, known, now)
        result.recorded = inserted
        result.duplicates += len(known) - len(inserted)
        result.accepted = len(inserted)
        fresh = sorted(
            (e for e in known if e.event_id in inserted), key=lambda e: _effective_time(e, now)
        )
        addresses: dict[str, list[tuple[str, datetime, str]]] = defaultdict(list)
        deltas: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        opt_outs: list[OptOut] = []
        for event in fresh:
            log = logs[event.message_id]
            if event.type in OPT_OUTS:
                at = _effective_time(event, now)
                opt_outs.append(OptOut(log.id, log.delivery_id, log.address, event.type, at))
                continue
            effect = _apply_one(log, event, now, deltas[log.delivery_id])
            if effect:
                at = _effective_time(event, now)
                addresses[log.address].append((effect, at, _reason(event)))
        changed = [log for log in logs.values() if log.changed]
        await sql.many(
            "UPDATE sending_log SET status = ?, failure_type = ?, failure_reason = ?,"
            " retries = ?, event_at = ?, claimed_until = NULL WHERE id = ?",
            [
                [
                    log.status.value,
                    log.failure_type.value if log.failure_type else None,
                    log.failure_reason,
                    log.retries,
                    sql.ts(log.event_at),
                    log.id,
                ]
                for log in changed
            ],
        )
        await _follow_opens(sql, changed, deltas)
        for delivery_id, delta in deltas.items():
            await add_to_counters(sql, delivery_id, delta)
        # Every address this batch touches is locked at once, in address order, so that
        # concurrent batches cannot deadlock between the quarantine and the deny list.
        states = await load_address_states(sql, [*addresses, *(o.address for o in opt_outs)])
        if addresses:
            await _update_addresses(sql, states, addresses, policy)
        counted = await record_opt_outs(sql, opt_outs) if opt_outs else set()
        result.deliveries = {log.delivery_id for log in changed} | counted
    return result


async def _follow_opens(sql: Sql, changed: list["_Log"], deltas: dict[int, dict[str, int]]) -> None:
    """Opens and clicks count only recipients whose log is SENT (SPEC §5). A log that becomes
    SENT with opens or clicks already recorded (an EFS message opened before its delivery
    report) counts them at once; one that stops being SENT (a LEGACY bounce) takes its own
    away, never more than the counter holds (the hourly refresh may not have counted them yet).
    So the counters never exceed what the tracking logs say of SENT logs, nor `sent`."""
    flips = [log for log in changed if (log.initial is SENT) != (log.status is SENT)]
    deliveries = sorted({log.delivery_id for log in flips})
    if not deliveries or not await sql.rows(
        "SELECT 1 AS x FROM tracking_log WHERE delivery_id IN " + in_list(deliveries) + " LIMIT 1",
        deliveries,
    ):
        return  # no open yet (the common case while a send runs): nothing to look up per log
    tracked = await tracked_logs(sql, sorted(log.id for log in flips))
    moves: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for log in flips:
        if log.id in tracked:
            step = 1 if log.status is SENT else -1
            moves[log.delivery_id]["opens"] += step
            moves[log.delivery_id]["clicks"] += step if tracked[log.id] else 0
    for delivery_id, move in moves.items():
        if move["opens"] < 0 or move["clicks"] < 0:
            rows = await sql.rows("SELECT opens, clicks FROM delivery WHERE id = ?", [delivery_id])
            for name in ("opens", "clicks"):
                move[name] = max(move[name], -int(rows[0][name])) if rows else 0
        for name, value in move.items():
            deltas[delivery_id][name] += value


async def _resolve_log_ids(sql: Sql, events: dict[str, Event]) -> dict[str, Event]:
    """Events that name their log by id get its message id; a log that does not exist, or was
    never relayed (no message id), leaves the event without one: it counts `unknown`."""
    ids = sorted({e.log_id for e in events.values() if e.log_id is not None})
    if not ids:
        return events
    rows = await sql.rows("SELECT id, message_id FROM sending_log WHERE id IN " + in_list(ids), ids)
    message_ids = {r["id"]: r["message_id"] or "" for r in rows}
    return {
        key: e if e.log_id is None else replace(e, message_id=message_ids.get(e.log_id, ""))
        for key, e in events.items()
    }


def _effective_time(event: Event, now: datetime) -> datetime:
    """An MTA clock ahead of ours must not freeze a log: a report is never later than now."""
    return min(event.timestamp, now)


def _reason(event: Event) -> str:
    """The failure reason a bounce leaves on the log (unused for a delivery report)."""
    if event.reason is not None:
        return event.reason.value
    default = DEFAULT_REASONS.get(event.type, DEFAULT_REASONS[FeedbackType.HARD_BOUNCE])
    return default.reason.value


def _apply_one(log: _Log, event: Event, now: datetime, deltas: dict[str, int]) -> str | None:
    """Move one log by the table; returns the quarantine effect ("hard", "soft", "success")."""
    if log.valid_until is not None and now >= log.valid_until:
        return None  # recorded, but the figures are final
    at = _effective_time(event, now)
    if log.event_at is not None and at < log.event_at:
        return None  # older than what the log already knows
    if event.reason in IGNORED_REASONS:
        return None
    before = log.status
    if before is SendingLogStatus.TO_SEND:
        # The report beat the engine's own record of the relay: relay first, then apply it.
        relayed = transition(log.mode, before, None, Outcome.RELAYED)
        if relayed is None:
            return None
        log.status, log.failure_type = relayed
    outcome = OUTCOME_OF_FEEDBACK[event.type]
    after = transition(log.mode, log.status, log.failure_type, outcome)
    if after is None:
        log.status = before  # nothing applies: undo the implicit relay
        return None
    had_soft = log.failure_type is FailureType.SOFT
    log.status, log.failure_type = after
    log.event_at = at
    log.changed = True
    for name, value in counter_deltas(before, log.status).items():
        deltas[name] += value
    if outcome is Outcome.SOFT_BOUNCE:
        log.retries += 1
        log.failure_reason = _reason(event)
        return "soft"
    if outcome is Outcome.HARD_BOUNCE:
        log.failure_reason = _reason(event)
        return "hard"
    log.failure_reason = None
    return "success" if had_soft else None


async def _deliveries_of(sql: Sql, message_ids: list[str]) -> list[int]:
    rows = await sql.rows(
        "SELECT DISTINCT delivery_id FROM sending_log WHERE message_id IN " + in_list(message_ids),
        message_ids,
    )
    return [r["delivery_id"] for r in rows]


async def _load_logs(sql: Sql, message_ids: list[str]) -> dict[str, _Log]:
    rows = await sql.rows(
        "SELECT l.id, l.delivery_id, l.address, l.status, l.failure_type, l.failure_reason,"
        " l.retries, l.event_at, l.message_id, d.feedback_mode, d.valid_until"
        " FROM sending_log l JOIN delivery d ON d.id = l.delivery_id"
        " WHERE l.message_id IN "
        + in_list(message_ids)
        + " ORDER BY l.id"
        + (" FOR UPDATE OF l" if sql.postgres else ""),
        message_ids,
    )
    per_delivery: dict[int, tuple[FeedbackMode, datetime | None]] = {}
    logs: dict[str, _Log] = {}
    for r in rows:
        delivery = per_delivery.get(r["delivery_id"])
        if delivery is None:
            delivery = (FeedbackMode(r["feedback_mode"]), parse_ts(r["valid_until"]))
            per_delivery[r["delivery_id"]] = delivery
        logs[r["message_id"]] = _Log(
            id=r["id"],
            delivery_id=r["delivery_id"],
            address=r["address"],
            status=SendingLogStatus(r["status"]),
            failure_type=FailureType(r["failure_type"]) if r["failure_type"] else None,
            failure_reason=r["failure_reason"],
            retries=r["retries"],
            event_at=parse_ts(r["event_at"]) if r["event_at"] is not None else None,
            mode=delivery[0],
            valid_until=delivery[1],
        )
    return logs


async def _record_events(sql: Sql, events: list[Event], now: datetime) -> set[str]:
    """Insert the events; returns the ids that were new (ON CONFLICT DO NOTHING RETURNING)."""
    if not events:
        return set()
    values: list[Any] = []
    received = sql.ts(now)
    for e in events:
        values += [
            e.event_id,
            e.message_id,
            e.type.value,
            e.reason.value if e.reason else None,
            sql.ts(e.timestamp),
            received,
        ]
    rows = await sql.rows(
        "INSERT INTO feedback_event (event_id, message_id, type, reason, occurred_at,"
        " received_at) VALUES "
        + ",".join(["(?,?,?,?,?,?)"] * len(events))
        + " ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
        values,
    )
    return {r["event_id"] for r in rows}


async def _update_addresses(
    sql: Sql,
    states: dict[str, AddressState],
    effects: dict[str, list[tuple[str, datetime, str]]],
    policy: QuarantinePolicy,
) -> None:
    states = {a: s for a, s in states.items() if a in effects}
    for address, items in effects.items():
        state = states.setdefault(address, AddressState(address=address))
        for effect, at, reason in items:
            if effect == "hard":
                on_hard_error(state, at, reason)
            elif effect == "soft":
                on_soft_error(state, at, policy)
            else:
                on_success_after_retry(state)
    await save_address_states(sql, list(states.values()))
