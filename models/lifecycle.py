"""The operations on deliveries: each one transaction, each status change through LIFECYCLE.

Operators' actions (create, edit, prepare, approve, confirm, pause, resume, stop) and the
engine's (start scheduled ones, spawn recurring occurrences, mark SENT, apply the end of the
validity period) live here, so the API and the engine share one set of rules. Callers publish
events after these return, i.e. after the commit. Each action also writes its audit event
(models/audit.py) inside its own transaction: `by` is the operator, or `ENGINE`.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from tortoise.expressions import Q
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from models import timed
from models.audit import ENGINE, Actor, AuditAction
from models.audit import record as audit
from models.delivery import LIFECYCLE, MAX_VALIDITY_SECONDS, Delivery, utcnow
from models.enums import Channel, DeliveryStatus, FeedbackMode, Role
from models.errors import BadInput, Forbidden, InvalidState, NotFound, PreparationFailed
from models.kpi_history import record_points
from models.preparation import append_logs, audience_warnings, check_content, create_logs
from models.profile import Profile
from models.recurrence import AggregationPeriod, parse_rule, period_bounds
from models.relay import (
    add_to_counters,
    cancel_unsent,
    count_unsent,
    drop_retries,
    fail_unrelayed,
    has_unsent,
)
from models.sending_log import TABLES, Outcome, counter_deltas
from models.sql import Sql
from models.stats import recount_tracking
from models.timezones import check_zone, localise, zone
from models.waves import WavePlan, plan_of

S = DeliveryStatus
MAX_BODY = 512 * 1024
MAX_AUDIENCE_IDS = 100_000
DEFAULT_VALIDITY = MAX_VALIDITY_SECONDS


@dataclass
class DeliveryDraft:
    label: str
    channel: Channel
    body: str
    subject: str | None = None
    profile_ids: list[int] | None = None
    all_profiles: bool = False
    scheduled_at: datetime | None = None
    validity_period: int | None = None
    feedback_mode: FeedbackMode | None = None
    # None: false for a new delivery, unchanged by an edit
    require_approval: bool | None = None
    require_proof: bool | None = None  # None: false for a new delivery, unchanged by an edit
    recurrence_interval: int | None = None
    recurrence_count: int | None = None
    confirm_each_occurrence: bool = False
    # the zone of a scheduled_at without offset and of the recurrence (None: UTC)
    time_zone: str | None = None
    recurrence_rule: str | None = None  # an RFC 5545 RRULE, instead of recurrence_interval
    aggregation_period: AggregationPeriod | None = None
    # Per-recipient send time and waves (models/timed.py); None: false / none.
    send_in_recipient_time_zone: bool | None = None
    waves: WavePlan | None = None


def check_audience_size(count: int) -> None:
    """The cap holds for the list as sent, repeated ids included: they are collapsed after."""
    if count > MAX_AUDIENCE_IDS:
        raise BadInput(
            f"at most {MAX_AUDIENCE_IDS} profileIds (got {count}); use allProfiles for more"
        )


async def _ids(query: QuerySet[Any]) -> list[int]:
    return cast(list[int], await query.values_list("id", flat=True))


async def _validate(draft: DeliveryDraft) -> dict[str, Any]:
    label = draft.label.strip()
    if not label or len(label) > 255:
        raise BadInput("label must be 1 to 255 characters")
    if len(draft.body) > MAX_BODY:
        raise BadInput(f"body must be at most {MAX_BODY} bytes")
    if draft.subject is not None and len(draft.subject) > 998:
        raise BadInput("subject must be at most 998 characters")
    validity = draft.validity_period if draft.validity_period is not None else DEFAULT_VALIDITY
    if not 1 <= validity <= MAX_VALIDITY_SECONDS:
        raise BadInput(
            f"validityPeriod must be between 1 and {MAX_VALIDITY_SECONDS} seconds (3.5 days)"
        )
    raw = draft.profile_ids or []
    if draft.all_profiles and raw:
        raise BadInput("give either profileIds or allProfiles, not both")
    check_audience_size(len(raw))
    ids = list(dict.fromkeys(raw))  # a profile listed twice is targeted once
    if ids:
        found: set[int] = set()
        for start in range(0, len(ids), 5000):  # PostgreSQL takes at most 32,767 parameters
            found.update(await _ids(Profile.filter(id__in=ids[start : start + 5000])))
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFound(f"no profile with id {', '.join(map(str, missing[:10]))}")
    time_zone = check_zone(draft.time_zone) or "UTC"
    scheduled_at = localise(draft.scheduled_at, zone(time_zone))
    interval, count = draft.recurrence_interval, draft.recurrence_count
    rule = draft.recurrence_rule
    if interval is not None and rule is not None:
        raise BadInput("give the recurrence either a rule or intervalSeconds, not both")
    if interval is not None and interval < 1:
        raise BadInput("recurrence interval must be at least 1 second")
    if rule is not None:
        rule = parse_rule(rule, scheduled_at or utcnow(), zone(time_zone))
    recurring = interval is not None or rule is not None
    if count is not None and (not recurring or count < 1):
        raise BadInput("recurrence count needs a rule or an interval and must be at least 1")
    if draft.confirm_each_occurrence and not recurring:
        raise BadInput("confirmation before each occurrence is for recurring deliveries")
    period = draft.aggregation_period or AggregationPeriod.NONE
    if period is not AggregationPeriod.NONE:
        if not recurring:
            raise BadInput("an aggregation period is for recurring deliveries")
        if draft.confirm_each_occurrence:
            raise BadInput(
                "confirmation before each occurrence is offered only without an aggregation"
                " period: an aggregated occurrence gathers every execution of its period, so"
                " there is no single occurrence to confirm (choose one of the two)"
            )
    in_recipient_zone = bool(draft.send_in_recipient_time_zone)
    timed.check(in_recipient_zone, draft.waves, scheduled_at, recurring)
    plan = draft.waves
    audience: dict[str, Any] = {"all": True} if draft.all_profiles else {"profileIds": ids}
    if len(ids) < len(raw):
        audience["repeated"] = len(raw) - len(ids)
    return {
        "label": label,
        "channel": draft.channel,
        "subject": draft.subject,
        "body": draft.body,
        "audience": audience,
        # What the audience calls for; the content's warnings are added at preparation.
        "warnings": audience_warnings(audience),
        "scheduled_at": scheduled_at,
        "time_zone": time_zone,
        "validity_period": validity,
        "recurrence_interval": interval,
        "recurrence_rule": rule,
        "aggregation_period": period,
        "recurrence_count": count,
        "confirm_each_occurrence": draft.confirm_each_occurrence,
        "send_in_recipient_time_zone": in_recipient_zone,
        "wave_first_size": plan.first_size if plan else None,
        "wave_size": plan.size if plan else None,
        "wave_interval_minutes": plan.interval_minutes if plan else None,
    } | (
        ({} if draft.require_approval is None else {"require_approval": draft.require_approval})
        | ({} if draft.require_proof is None else {"require_proof": draft.require_proof})
    )


async def create_delivery(draft: DeliveryDraft, default_mode: FeedbackMode, by: Actor) -> Delivery:
    values = await _validate(draft)
    async with in_transaction():
        delivery = await Delivery.create(
            **values, feedback_mode=draft.feedback_mode or default_mode
        )
        await audit(AuditAction.CREATED, by, delivery=delivery, detail={"to": "DRAFT"})
    return delivery


async def get_delivery(delivery_id: int) -> Delivery:
    delivery = await Delivery.get_or_none(id=delivery_id)
    if delivery is None:
        raise NotFound(f"no delivery with id {delivery_id}")
    return delivery


async def _locked(delivery_id: int) -> Delivery:
    delivery = await Delivery.select_for_update().get_or_none(id=delivery_id)
    if delivery is None:
        raise NotFound(f"no delivery with id {delivery_id}")
    return delivery


def _reset_figures(delivery: Delivery) -> None:
    for name in (
        "to_send",
        "excluded",
        "processed",
        "sent",
        "pending",
        "failed",
        "opens",
        "clicks",
    ):
        setattr(delivery, name, 0)
    delivery.approved_by = delivery.approved_at = None


def draft_of(delivery: Delivery) -> DeliveryDraft:
    """What the delivery holds, as a draft: what a patch starts from (requireApproval None:
    unchanged unless the patch gives it)."""
    audience = delivery.audience or {}
    return DeliveryDraft(
        label=delivery.label,
        channel=delivery.channel,
        body=delivery.body,
        subject=delivery.subject,
        profile_ids=list(audience.get("profileIds", [])),
        all_profiles=bool(audience.get("all")),
        scheduled_at=delivery.scheduled_at,
        validity_period=delivery.validity_period,
        feedback_mode=delivery.feedback_mode,
        recurrence_interval=delivery.recurrence_interval,
        recurrence_count=delivery.recurrence_count,
        confirm_each_occurrence=delivery.confirm_each_occurrence,
        time_zone=delivery.time_zone,
        recurrence_rule=delivery.recurrence_rule,
        aggregation_period=delivery.aggregation_period,
        send_in_recipient_time_zone=delivery.send_in_recipient_time_zone,
        waves=plan_of(delivery),
    )


async def update_delivery(
    delivery_id: int, change: DeliveryDraft | Callable[[DeliveryDraft], DeliveryDraft], by: Actor
) -> Delivery:
    """Editing after preparation sends the delivery back to DRAFT (its target is recomputed).
    `change` is the new draft, or makes it from the current one (a patch), under the lock."""
    async with in_transaction() as conn:
        delivery = await _locked(delivery_id)
        delivery.check("edit")
        draft = change(draft_of(delivery)) if callable(change) else change
        if (
            delivery.require_approval
            and draft.require_approval is False
            and not by.may(Role.APPROVE_DELIVERIES)
        ):
            raise Forbidden(
                "You are not allowed to turn requireApproval off: the APPROVE_DELIVERIES role"
                " (or ADMINISTRATION) is required."
            )
        before = delivery.status
        values = await _validate(draft)
        if draft.feedback_mode is not None:
            values["feedback_mode"] = draft.feedback_mode
        delivery.update_from_dict(values)
        delivery.move("edit")
        delivery.version += 1
        _reset_figures(delivery)  # the approval too: what was approved is no more
        delivery.proofed_at = None  # and a proof of what it was (requireProof)
        await Sql(conn).execute("DELETE FROM sending_log WHERE delivery_id = ?", [delivery_id])
        await delivery.save()
        await _moved(AuditAction.UPDATED, by, delivery, before)
    return delivery


async def delete_delivery(delivery_id: int, by: Actor) -> None:
    async with in_transaction():
        delivery = await _locked(delivery_id)
        delivery.check("delete")
        await audit(
            AuditAction.DELETED, by, delivery=delivery, detail={"from": delivery.status.value}
        )
        await delivery.delete()  # its audit trail stays: events hold plain values, no key


async def _moved(
    action: AuditAction,
    by: Actor,
    delivery: Delivery,
    before: DeliveryStatus,
    at: datetime | None = None,
    **detail: Any,
) -> None:
    """The audit event of a status change: the status it left and the one it reached."""
    await audit(
        action,
        by,
        delivery=delivery,
        at=at,
        detail={"from": before.value, "to": delivery.status.value, **detail},
    )


async def prepare_delivery(delivery_id: int, by: Actor) -> Delivery:
    async with in_transaction() as conn:
        delivery = await _locked(delivery_id)
        delivery.check("prepare")
        errors, warnings = check_content(delivery.channel, delivery.subject, delivery.body)
        if errors:
            raise PreparationFailed(errors)
        _reset_figures(delivery)
        to_send, excluded = await create_logs(Sql(conn), delivery, insert=not delivery.is_recurring)
        if to_send == 0:
            raise PreparationFailed(["no recipient left to send to after exclusions"])
        delivery.to_send, delivery.excluded = to_send, excluded
        delivery.warnings = [*audience_warnings(delivery.audience), *warnings]
        delivery.version += 1
        delivery.move("prepare")
        await delivery.save()
        await _moved(AuditAction.PREPARED, by, delivery, S.DRAFT, toSend=to_send, excluded=excluded)
    return delivery


async def approve_delivery(delivery_id: int, by: Actor, now: datetime) -> Delivery:
    async with in_transaction():
        delivery = await _locked(delivery_id)
        check(delivery, "approve", now)
        delivery.approved_by, delivery.approved_at = by.name, now
        delivery.version += 1
        await delivery.save()
        await audit(AuditAction.APPROVED, by, delivery=delivery, at=now)
    return delivery


async def confirm_send(
    delivery_id: int, by: Actor, now: datetime, version: int | None = None
) -> Delivery:
    """The last, irreversible step. The row lock makes a second confirmation an INVALID_STATE.

    `version` is the delivery's version that the confirmer reviewed: if it was edited,
    prepared or approved since, nothing is sent and the confirmer is told to look again."""
    async with in_transaction():
        delivery = await _locked(delivery_id)
        delivery.check("confirm")
        if version is not None and version != delivery.version:
            raise InvalidState(
                f"delivery {delivery_id} changed since you reviewed it (version {version},"
                f" now {delivery.version}): review it again before confirming the send"
            )
        check(delivery, "confirm", now)
        before = delivery.status
        delivery.confirmed_by, delivery.confirmed_at = by.name, now
        # Sent in each recipient's zone: it starts with its first message's time.
        starts = timed.on_confirm(delivery, now) or delivery.scheduled_at
        if delivery.is_recurring and delivery.recurrence_rule is not None:
            delivery.recurrence_start = delivery.scheduled_at or now
            first = delivery.schedule(now).first(now)
            if first is None:
                raise InvalidState(
                    f"delivery {delivery_id}: its rule has no occurrence left after"
                    f" {now:%Y-%m-%d %H:%M} UTC; edit the rule or its start"
                )
            delivery.next_occurrence_at = first
            delivery.move("confirm", S.SCHEDULED)
        elif delivery.is_recurring:
            delivery.next_occurrence_at = max(delivery.scheduled_at or now, now)
            delivery.move("confirm", S.SCHEDULED)
        elif starts is not None and starts > now:
            delivery.move("confirm", S.SCHEDULED)
        else:
            delivery.move("confirm", S.IN_PROGRESS)
            delivery.begin_sending(now)
            timed.on_start(delivery, now)
        await delivery.save()
        await _moved(
            AuditAction.CONFIRMED,
            by,
            delivery,
            before,
            now,
            toSend=delivery.to_send,
            scheduledAt=delivery.scheduled_at.isoformat() if delivery.scheduled_at else None,
            parentId=delivery.parent_id,
        )
    return delivery


async def pause_delivery(delivery_id: int, by: Actor) -> Delivery:
    return await _simple(delivery_id, "pause", AuditAction.PAUSED, by)


async def resume_delivery(delivery_id: int, by: Actor, now: datetime | None = None) -> Delivery:
    """PAUSED, or FAILED while its validity period runs (the operator fixed the cause), goes
    back to IN_PROGRESS and continues where it stopped: a FAILED delivery kept its unrelayed
    logs TO_SEND and its planned retries, and relayed ones are never sent again."""
    return await _simple(delivery_id, "resume", AuditAction.RESUMED, by, now or utcnow())


async def _simple(
    delivery_id: int, action: str, audited: AuditAction, by: Actor, now: datetime | None = None
) -> Delivery:
    async with in_transaction():
        delivery = await _locked(delivery_id)
        before = delivery.status
        check(delivery, action, now or utcnow())
        # Since when the sending stood still (a pause, or a failure), for the waves' schedule.
        held_since = delivery.paused_at or (delivery.ended_at if before is S.FAILED else None)
        if before is S.FAILED:
            delivery.failure_message = None  # type: ignore[assignment]
            delivery.ended_at = None
        if action == "resume":
            timed.on_resume(delivery, now or utcnow(), held_since)
            delivery.paused_at = None
        elif action == "pause":
            delivery.paused_at = now or utcnow()
        delivery.move(action)
        await delivery.save()
        await _moved(audited, by, delivery, before, processed=delivery.processed)
    return delivery


def refusal(delivery: Delivery, action: str, now: datetime) -> str | None:
    """Why `action` cannot be done to `delivery` now, or None: its status (LIFECYCLE), and
    the rules beyond the status. The actions check this, and Delivery.allowedActions reads
    it (models/actions.py), so that a screen never copies these rules."""
    refused = delivery.refusal(action)
    if refused is not None:
        return refused
    if action == "approve":
        if not delivery.require_approval:
            return f"delivery {delivery.id} does not require approval"
        if delivery.approved_at is not None:
            return f"delivery {delivery.id} is already approved"
    elif action == "confirm":
        if delivery.require_approval and delivery.approved_at is None:
            return f"delivery {delivery.id} requires approval before it is sent"
        if delivery.require_proof and delivery.status is S.READY and delivery.proofed_at is None:
            return (  # requireProof (models/proofs.py): an edit forgets the proofs before it
                f"delivery {delivery.id} requires a proof before it is sent, and none was"
                " accepted by the MTA since its last edit: send one with sendProof"
            )
    elif action == "send_proof" and delivery.channel is not Channel.EMAIL:
        return (
            f"proofs are sent by email; delivery {delivery.id} is {delivery.channel.value}:"
            " use previewDelivery to see its message"
        )
    elif action == "resume" and delivery.status is S.FAILED and not _still_valid(delivery, now):
        ended = delivery.valid_until.isoformat() if delivery.valid_until else "already"
        return (
            f"cannot resume delivery {delivery.id}: it FAILED and its validity period ended"
            f" ({ended}); messages never relayed have failed for good"
        )
    return None


def _still_valid(delivery: Delivery, now: datetime) -> bool:
    """A FAILED delivery can be resumed only while its validity period runs (SPEC §2)."""
    return (
        not delivery.figures_final
        and delivery.valid_until is not None
        and delivery.valid_until > now
    )


def check(delivery: Delivery, action: str, now: datetime) -> None:
    refused = refusal(delivery, action, now)
    if refused is not None:
        raise InvalidState(refused)


async def stop_delivery(delivery_id: int, by: Actor, now: datetime) -> Delivery:
    """Messages not yet relayed are never sent: they become IGNORED (CANCELLED)."""
    async with in_transaction() as conn:
        delivery = await _locked(delivery_id)
        before = delivery.status
        delivery.move("stop")
        delivery.stopped_by, delivery.ended_at = by.name, now
        delivery.next_occurrence_at = None  # a stopped recurrence has no next occurrence
        cancelled = await cancel_unsent(Sql(conn), delivery_id)
        await delivery.save()
        await _moved(AuditAction.STOPPED, by, delivery, before, now, cancelled=cancelled)
    return delivery


# ---- the engine's side -------------------------------------------------------------------


async def start_due(now: datetime) -> list[int]:
    """Scheduled (non-recurring) deliveries whose contact date has come start sending."""
    due = await _ids(
        Delivery.filter(
            status=S.SCHEDULED,
            scheduled_at__lte=now,
            recurrence_interval__isnull=True,
            recurrence_rule__isnull=True,
            first_due_at__isnull=True,
        )
    )
    # Sent in each recipient's zone: when the first recipient's time comes (models/timed.py).
    due += await _ids(Delivery.filter(status=S.SCHEDULED, first_due_at__lte=now))
    started: list[int] = []
    for delivery_id in sorted(set(due)):
        async with in_transaction():
            delivery = await _locked(delivery_id)
            if delivery.status is not S.SCHEDULED:
                continue  # another worker was first
            delivery.move("start")
            delivery.begin_sending(now)
            timed.on_start(delivery, now)
            await delivery.save()
            await _moved(AuditAction.STARTED, ENGINE, delivery, S.SCHEDULED, now)
            started.append(delivery_id)
    return started


async def spawn_occurrences(now: datetime) -> list[int]:
    """Each due occurrence of a recurring delivery becomes a delivery of its own.

    Returns the ids of the parents and the new occurrences (all changed).
    """
    parents = await _ids(
        Delivery.filter(
            Q(recurrence_interval__isnull=False) | Q(recurrence_rule__isnull=False),
            status=S.SCHEDULED,
            parent_id__isnull=True,
            next_occurrence_at__lte=now,
        )
    )
    changed: list[int] = []
    for parent_id in parents:
        async with in_transaction() as conn:
            period_locked = await _lock_occurrences_first(parent_id)
            parent = await _locked(parent_id)
            due = parent.next_occurrence_at
            if parent.status is not S.SCHEDULED or due is None or due > now:
                continue
            if period_locked != _period_of(parent, due).get("period_start"):
                continue  # executed meanwhile by another worker: the next tick looks again
            parent.executions += 1
            if parent.aggregation_period is not AggregationPeriod.NONE:
                joined = await _join_period(Sql(conn), parent, due, now)
                if joined is not None:
                    changed.append(joined)
                    await _plan_next(parent, due, now)
                    await parent.save()
                    changed.append(parent.id)
                    continue
            index = parent.occurrences_created + 1
            child = await Delivery.create(
                label=f"{parent.label} #{index}",
                channel=parent.channel,
                subject=parent.subject,
                body=parent.body,
                audience=parent.audience,
                validity_period=parent.validity_period,
                feedback_mode=parent.feedback_mode,
                parent_id=parent.id,
                scheduled_at=due,
                time_zone=parent.time_zone,
                status=S.DRAFT,
                executions=1,
                **_period_of(parent, due),
            )
            to_send, excluded = await create_logs(Sql(conn), child)
            child.to_send, child.excluded = to_send, excluded
            child.status = S.READY
            if parent.confirm_each_occurrence:
                child.status = S.PENDING_CONFIRMATION
            await audit(
                AuditAction.CREATED,
                ENGINE,
                delivery=child,
                at=now,
                detail={
                    "to": child.status.value,
                    "parentId": parent.id,
                    "occurrence": index,
                    "toSend": to_send,
                    "excluded": excluded,
                },
            )
            if not parent.confirm_each_occurrence:
                # confirmed once for all occurrences by the parent's confirmation
                child.confirmed_by, child.confirmed_at = parent.confirmed_by, now
                child.move("confirm", S.IN_PROGRESS)
                child.begin_sending(now)
                await _moved(
                    AuditAction.STARTED, ENGINE, child, S.READY, now, confirmedBy=child.confirmed_by
                )
            await child.save()
            if parent.confirm_each_occurrence:
                changed += await _supersede_waiting(Sql(conn), parent, child, index, now)
            # The recurring delivery's counters are the sums of its occurrences' (SPEC §5);
            # before the first one they were its preparation's target.
            parent.to_send = child.to_send + (parent.to_send if parent.occurrences_created else 0)
            parent.occurrences_created = index
            await _plan_next(parent, due, now)
            await parent.save()
            await record_points(Sql(conn), "id IN (?, ?)", [parent.id, child.id])
            changed += [parent.id, child.id]
    return changed


async def _plan_next(parent: Delivery, due: datetime, now: datetime) -> None:
    """The parent's next occurrence after the one just executed, or the end of the recurrence
    (its count reached, its rule exhausted). A rule skips occurrences missed while no engine
    ran (the one due is executed late, once); an interval catches them up, as it always did."""
    if parent.recurrence_rule is not None:
        after = max(due, now)
        nxt = parent.schedule(now).first(after, inclusive=False)
    else:
        assert parent.recurrence_interval is not None
        nxt = due + timedelta(seconds=parent.recurrence_interval)
    count = parent.recurrence_count
    # rows from before executions were counted: their occurrences were executions
    executed = max(parent.executions, parent.occurrences_created)
    if nxt is None or (count is not None and executed >= count):
        parent.move("end_recurrence")
        parent.ended_at = now
        parent.next_occurrence_at = None
        await _moved(AuditAction.FINISHED, ENGINE, parent, S.SCHEDULED, now)
    else:
        parent.next_occurrence_at = nxt


def _period_of(parent: Delivery, due: datetime) -> dict[str, Any]:
    """An aggregating occurrence's period (in the parent's zone); nothing without one."""
    if parent.aggregation_period is AggregationPeriod.NONE:
        return {}
    begin, end = period_bounds(due, parent.aggregation_period, zone(parent.time_zone))
    return {"period_start": begin, "period_end": end}


DUPLICATES_WARNING = (
    "each execution of this period adds its recipients here; a recipient already sent to in"
    " the period is excluded as DUPLICATE"
)


async def _lock_occurrences_first(parent_id: int) -> datetime | None:
    """Lock the occurrences the recurring delivery's next execution may write (its period's
    occurrence, or those still waiting for a confirmation) before the recurring delivery itself:
    the order of every other writer (the relay's record locks an occurrence, then moves its
    parent's counters: models/relay.py AND_ITS_PARENT). The other order deadlocks with a record
    of that occurrence (tests/api/deliveries/test_lock_order.py). Returns the period's start
    (None without an aggregation period), for the caller to check, once it holds the parent,
    that the period is still the one locked."""
    parent = await Delivery.get_or_none(id=parent_id)
    if parent is None or parent.next_occurrence_at is None:
        return None
    begin = _period_of(parent, parent.next_occurrence_at).get("period_start")
    if begin is not None:
        await (
            Delivery.select_for_update()
            .filter(parent_id=parent_id, period_start=begin)
            .order_by("id")
        )
    elif parent.confirm_each_occurrence:  # _supersede_waiting's
        await (
            Delivery.select_for_update()
            .filter(parent_id=parent_id, status=S.PENDING_CONFIRMATION)
            .order_by("id")
        )
    return begin


async def _join_period(sql: Sql, parent: Delivery, due: datetime, now: datetime) -> int | None:
    """With an aggregation period, an execution whose period already has its occurrence adds
    its recipients to it (preparation runs again; DUPLICATE for those the period already
    holds) and sends again. Returns the occurrence's id, or None when the period has none yet
    (the caller creates it). A period whose occurrence was stopped or failed stays so: the
    execution sends nothing."""
    begin = _period_of(parent, due)["period_start"]
    occurrence = (
        await Delivery.select_for_update()
        .filter(parent_id=parent.id, period_start=begin)
        .order_by("id")
        .first()
    )
    if occurrence is None:
        return None
    occurrence.executions += 1
    if occurrence.status not in LIFECYCLE["add_execution"][0]:
        await occurrence.save()
        return occurrence.id
    to_send, excluded, duplicates = await append_logs(sql, occurrence)
    before = occurrence.status
    occurrence.to_send += to_send
    occurrence.excluded += excluded
    parent.to_send += to_send  # the recurring delivery's figures are its occurrences' sums
    if duplicates and DUPLICATES_WARNING not in occurrence.warnings:
        occurrence.warnings = [*occurrence.warnings, DUPLICATES_WARNING]
    if to_send:
        occurrence.move("add_execution", S.PAUSED if before is S.PAUSED else S.IN_PROGRESS)
        occurrence.sent_at = occurrence.ended_at = None
        occurrence.figures_final = False
        until = now + timedelta(seconds=occurrence.validity_period)
        occurrence.valid_until = max(occurrence.valid_until or until, until)
    await occurrence.save()
    await _moved(
        AuditAction.STARTED, ENGINE, occurrence, before, now,
        execution=occurrence.executions, toSend=to_send, excluded=excluded, duplicates=duplicates,
    )  # fmt: skip
    return occurrence.id


async def _supersede_waiting(
    sql: Sql, parent: Delivery, child: Delivery, index: int, now: datetime
) -> list[int]:
    """An occurrence still waiting in PENDING_CONFIRMATION when the next one is due is
    superseded by it: it is STOPPED by the engine (its messages never sent), so that a late
    confirmation sends the newest content to the newest audience, and occurrences never pile
    up. Its to send stays in the recurring delivery's sums, like any stopped delivery's."""
    waiting = await (
        Delivery.select_for_update()
        .filter(parent_id=parent.id, status=S.PENDING_CONFIRMATION)
        .exclude(id=child.id)
        .order_by("id")
    )
    for old in waiting:
        old.move("stop")
        old.ended_at = now
        cancelled = await cancel_unsent(sql, old.id)
        await old.save()
        await _moved(
            AuditAction.STOPPED,
            ENGINE,
            old,
            S.PENDING_CONFIRMATION,
            now,
            cancelled=cancelled,
            reason=f"superseded by occurrence #{index}: it was not confirmed in time",
            supersededBy=child.id,
        )
    return [old.id for old in waiting]


async def mark_sent_if_done(delivery_id: int, now: datetime) -> bool:
    """IN_PROGRESS becomes SENT when every message has been relayed."""
    if await has_unsent(delivery_id):
        return False
    async with in_transaction():
        delivery = await _locked(delivery_id)
        if delivery.status is not S.IN_PROGRESS or await has_unsent(delivery_id):
            return False
        delivery.move("all_relayed")
        delivery.sent_at = now
        await delivery.save()
        await _moved(AuditAction.SENT, ENGINE, delivery, S.IN_PROGRESS, now)
    return True


async def expire_due(now: datetime) -> list[int]:
    """Apply the end of the validity period (SPEC §4) to every delivery whose period is over."""
    due = await _ids(Delivery.filter(valid_until__lte=now, figures_final=False))
    done: list[int] = []
    for delivery_id in due:
        async with in_transaction() as conn:
            delivery = await _locked(delivery_id)
            if delivery.figures_final:
                continue
            await _expire(Sql(conn), delivery, now)
            done.append(delivery_id)
    return done


async def _expire(sql: Sql, delivery: Delivery, now: datetime) -> None:
    """Table-driven: every (status, failure type) row of the mode's table for EXPIRED."""
    deltas: dict[str, int] = {}
    for (status, failure_type, outcome), (after, after_type) in TABLES[
        delivery.feedback_mode
    ].items():
        if outcome is not Outcome.EXPIRED or (status, failure_type) == (after, after_type):
            continue
        moved = await sql.execute(
            "UPDATE sending_log SET status = ?, failure_type = ? WHERE delivery_id = ?"
            " AND excluded = ? AND status = ? AND failure_type = ?",
            [
                after.value,
                after_type.value if after_type else None,
                delivery.id,
                False,
                status.value,
                failure_type.value if failure_type else None,
            ],
        )
        for name, value in counter_deltas(status, after).items():
            deltas[name] = deltas.get(name, 0) + value * moved
    await add_to_counters(sql, delivery.id, deltas)
    await recount_tracking(sql, delivery.id)  # LEGACY logs that left SENT take their opens
    await drop_retries(sql, delivery.id)
    never_relayed = await fail_unrelayed(sql, delivery.id)
    await delivery.refresh_from_db()
    delivery.figures_final = True
    before = delivery.status
    if never_relayed and delivery.status in LIFECYCLE["fail"][0]:
        # SPEC §2: the validity period ending with messages never relayed is a failure.
        reason = f"the validity period ended with {never_relayed} message(s) never relayed" + (
            " (the delivery was paused)" if before is S.PAUSED else ""
        )
        delivery.move("fail")
        delivery.failure_message, delivery.ended_at = reason, now
        await delivery.save()
        await _moved(
            AuditAction.FAILED, ENGINE, delivery, before, now, reason=reason,
            notRelayed=never_relayed,
        )  # fmt: skip
        return
    if delivery.status in LIFECYCLE["expire"][0]:
        delivery.move("expire")
        delivery.ended_at = now
    await delivery.save()
    if delivery.status is not before:
        await _moved(AuditAction.FINISHED, ENGINE, delivery, before, now)


@dataclass(frozen=True)
class Sending:
    """A delivery the dispatcher serves: IN_PROGRESS, with its mode and whether it is waiting
    for the MTA (as the database says: another worker may have seen the MTA come back)."""

    id: int
    mode: FeedbackMode
    waiting: bool
    timed: bool = False  # its messages have due times (models/timed.py)
    origin: datetime | None = None  # what its due times count from (the waves' anchor)


async def deliveries_in_progress() -> list[Sending]:
    rows = (
        await Delivery.filter(status=S.IN_PROGRESS)
        .order_by("id")
        .values_list(
            "id",
            "feedback_mode",
            "waiting_since",
            "send_in_recipient_time_zone",
            "wave_size",
            "wave_anchor",
        )
    )
    return [
        Sending(int(i), FeedbackMode(m), w is not None, bool(zoned) or waves is not None, anchor)
        for i, m, w, zoned, waves, anchor in rows
    ]


async def fail_delivery(delivery_id: int, reason: str, now: datetime) -> bool:
    """Sending cannot go on (a permanent error): the delivery is FAILED and says why. Its
    unrelayed logs stay TO_SEND and its planned retries stay planned, so that an operator who
    fixed the cause can resume it while the validity period runs; at the end of the period
    they fail for good (NOT_RELAYED)."""
    async with in_transaction() as conn:
        delivery = await _locked(delivery_id)
        if delivery.status not in LIFECYCLE["fail"][0]:
            return False
        before = delivery.status
        delivery.move("fail")
        delivery.failure_message, delivery.ended_at = reason, now
        await delivery.save()
        unrelayed = await count_unsent(Sql(conn), delivery_id)
        await _moved(
            AuditAction.FAILED, ENGINE, delivery, before, now, reason=reason, notRelayed=unrelayed
        )
    return True
