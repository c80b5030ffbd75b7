"""The delivery and its lifecycle (SPEC §2).

`LIFECYCLE` is the whole state machine: an action, the statuses it may start from, and where
it leads. Every status change goes through `Delivery.move`, so a wrong state is always the same
clear `INVALID_STATE` error. (Resuming a FAILED delivery also needs its validity period to run:
`models/lifecycle.py: resume_delivery` checks that.)
"""

from datetime import datetime, timedelta
from typing import Any

from tortoise import fields
from tortoise.models import Model

from models.clock import utcnow
from models.enums import Channel, DeliveryStatus, FeedbackMode, WaitingReason
from models.errors import InvalidState
from models.kpis import Kpis
from models.recurrence import AggregationPeriod, Schedule
from models.sql import Sql

S = DeliveryStatus

# The most the product honours, and the default for email: 3.5 days (SPEC §4).
MAX_VALIDITY_SECONDS = int(3.5 * 24 * 3600)

# action: (statuses it may start from, status it leads to; None = decided by the action)
LIFECYCLE: dict[str, tuple[frozenset[DeliveryStatus], DeliveryStatus | None]] = {
    "edit": (frozenset({S.DRAFT, S.READY}), S.DRAFT),
    "delete": (frozenset({S.DRAFT, S.READY}), None),
    "prepare": (frozenset({S.DRAFT}), S.READY),
    "approve": (frozenset({S.READY}), S.READY),
    "confirm": (frozenset({S.READY, S.PENDING_CONFIRMATION}), None),  # SCHEDULED / IN_PROGRESS
    "start": (frozenset({S.SCHEDULED}), S.IN_PROGRESS),
    "pause": (frozenset({S.IN_PROGRESS}), S.PAUSED),
    # FAILED too, while its validity period runs: the operator fixed the cause (SPEC §2)
    "resume": (frozenset({S.PAUSED, S.FAILED}), S.IN_PROGRESS),
    "stop": (frozenset({S.PENDING_CONFIRMATION, S.SCHEDULED, S.IN_PROGRESS, S.PAUSED}), S.STOPPED),
    "all_relayed": (frozenset({S.IN_PROGRESS}), S.SENT),
    # the validity period ends; with messages never relayed it is "fail" instead (SPEC §2)
    "expire": (frozenset({S.SENT, S.IN_PROGRESS, S.PAUSED}), S.FINISHED),
    "end_recurrence": (frozenset({S.SCHEDULED}), S.FINISHED),
    "fail": (frozenset({S.SCHEDULED, S.IN_PROGRESS, S.PAUSED}), S.FAILED),
    # one more execution joins its aggregation period's occurrence (models/recurrence.py):
    # it sends again (a PAUSED one stays PAUSED), a new validity period from then on
    "add_execution": (frozenset({S.IN_PROGRESS, S.PAUSED, S.SENT, S.FINISHED}), None),
    # a proof goes to test addresses; the delivery stays as it is
    "send_proof": (frozenset({S.READY}), S.READY),
}


__all__ = ["LIFECYCLE", "MAX_VALIDITY_SECONDS", "Delivery", "exists", "utcnow"]


class Delivery(Model):
    id = fields.IntField(primary_key=True)
    label = fields.CharField(max_length=255)
    channel = fields.CharEnumField(Channel, max_length=8, description="channel")
    subject = fields.CharField(max_length=998, null=True)
    body = fields.TextField()
    status = fields.CharEnumField(
        DeliveryStatus, max_length=24, default=S.DRAFT, description="status"
    )
    feedback_mode = fields.CharEnumField(FeedbackMode, max_length=8, description="feedback mode")
    audience = fields.JSONField[dict[str, Any]](default=dict)
    scheduled_at = fields.DatetimeField(null=True)
    # The IANA zone of the contact date and of the recurrence (models/timezones.py).
    time_zone = fields.CharField(max_length=64, default="UTC", db_default="UTC")
    validity_period = fields.IntField()
    require_approval = fields.BooleanField(default=False)
    # confirmSend waits for a proof that the MTA accepted since the last edit (models/proofs.py).
    require_proof = fields.BooleanField(default=False, db_default=False)
    proofed_at = fields.DatetimeField(null=True)  # that proof's time; an edit clears it
    # What an operator reviewed: +1 on every edit, preparation and approval, so that confirmSend
    # can refuse a delivery that changed since the confirmer looked at it.
    version = fields.IntField(default=1, db_default=1)  # rows from before it existed: 1
    approved_by = fields.CharField(max_length=200, null=True)
    approved_at = fields.DatetimeField(null=True)
    confirmed_by = fields.CharField(max_length=200, null=True)
    confirmed_at = fields.DatetimeField(null=True)
    started_at = fields.DatetimeField(null=True)
    valid_until = fields.DatetimeField(null=True)
    sent_at = fields.DatetimeField(null=True)
    ended_at = fields.DatetimeField(null=True)
    # Set once the validity period's end was applied to the logs (SPEC §4): figures are final.
    figures_final = fields.BooleanField(default=False)
    stopped_by = fields.CharField(max_length=200, null=True)
    failure_message = fields.TextField(null=True)
    # What a delivery IN_PROGRESS is waiting for (the MTA is down: the engine backs off and
    # retries by itself); all null when it is not waiting. `waiting_cause` is a plain phrase
    # ("connection refused"), never the MTA's own text.
    waiting_reason = fields.CharEnumField(
        WaitingReason, max_length=24, null=True, description="waiting reason"
    )
    waiting_since = fields.DatetimeField(null=True)
    waiting_retry_at = fields.DatetimeField(null=True)
    waiting_attempts = fields.IntField(default=0, db_default=0)  # rows from before it: 0
    waiting_cause = fields.CharField(max_length=100, null=True)
    warnings = fields.JSONField[list[str]](default=list)
    # Recurrence: the parent is a template; each occurrence is a delivery of its own.
    # Either a number of seconds (the first form) or an RFC 5545 rule in `time_zone`
    # (models/recurrence.py); `recurrence_start` anchors the rule (contact date or confirmation).
    recurrence_interval = fields.IntField(null=True)
    recurrence_rule = fields.CharField(max_length=500, null=True)
    recurrence_start = fields.DatetimeField(null=True)
    aggregation_period = fields.CharEnumField(
        AggregationPeriod,
        max_length=8,
        default=AggregationPeriod.NONE,
        db_default="NONE",
        description="aggregation period",
    )
    # Executions of the recurrence so far (with an aggregation period, several per occurrence).
    executions = fields.IntField(default=0, db_default=0)
    # An occurrence that aggregates a period's executions: the period, as UTC instants.
    period_start = fields.DatetimeField(null=True)
    period_end = fields.DatetimeField(null=True)
    recurrence_count = fields.IntField(null=True)
    confirm_each_occurrence = fields.BooleanField(default=False)
    next_occurrence_at = fields.DatetimeField(null=True)
    occurrences_created = fields.IntField(default=0)
    parent: fields.ForeignKeyNullableRelation["Delivery"] = fields.ForeignKeyField(
        "models.Delivery", related_name="occurrences", null=True, on_delete=fields.CASCADE
    )
    # Per-recipient send time (models/send_time.py): each message at the contact date's local
    # time in its recipient's zone; `send_times` holds [due epoch ms, messages] per send time.
    send_in_recipient_time_zone = fields.BooleanField(default=False, db_default=False)
    send_times = fields.JSONField[list[list[int]]](null=True)
    # When the first message is due: a SCHEDULED delivery starts sending then (start_due).
    first_due_at = fields.DatetimeField(null=True)
    # Waves (models/waves.py): all null when the delivery is sent at once.
    wave_first_size = fields.IntField(null=True)
    wave_size = fields.IntField(null=True)
    wave_interval_minutes = fields.IntField(null=True)
    wave_anchor = fields.DatetimeField(null=True)  # when wave 1 was due (moves on a resume)
    # When the running pause began (null when not paused): a resume moves the waves left by
    # the pause's length, and the waves' progress stands still meanwhile.
    paused_at = fields.DatetimeField(null=True)
    # KPI counters, kept up to date by every write that changes a sending log.
    to_send = fields.IntField(default=0)
    excluded = fields.IntField(default=0)
    processed = fields.IntField(default=0)
    sent = fields.IntField(default=0)
    pending = fields.IntField(default=0)
    failed = fields.IntField(default=0)
    opens = fields.IntField(default=0)
    clicks = fields.IntField(default=0)
    # Recipients who complained (spam reports) and who unsubscribed (models/optouts.py).
    complaints = fields.IntField(default=0, db_default=0)
    unsubscriptions = fields.IntField(default=0, db_default=0)
    stats_computed_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    parent_id: int | None

    class Meta:
        table = "delivery"
        indexes = (("status", "scheduled_at"), ("status", "valid_until"), ("parent_id", "id"))

    @property
    def is_recurring(self) -> bool:
        has_rule = self.recurrence_interval is not None or self.recurrence_rule is not None
        return has_rule and self.parent_id is None

    def schedule(self, now: datetime) -> Schedule:
        """The recurrence's occurrences; before the confirmation it starts at the contact date
        or `now`."""
        start = self.recurrence_start or self.scheduled_at or now
        if self.recurrence_rule is None and self.next_occurrence_at is not None:
            start = self.next_occurrence_at  # an interval counts from the next one due
        return Schedule(self.recurrence_rule, self.recurrence_interval, self.time_zone, start)

    @property
    def kpis(self) -> Kpis:
        return Kpis(
            to_send=self.to_send,
            processed=self.processed,
            sent=self.sent,
            pending=self.pending,
            failed=self.failed,
            opens=self.opens,
            clicks=self.clicks,
            stats_computed_at=self.stats_computed_at,
            complaints=self.complaints,
            unsubscriptions=self.unsubscriptions,
            channel=self.channel,
        )

    def refusal(self, action: str) -> str | None:
        """Why LIFECYCLE refuses `action` from this delivery's status, or None."""
        allowed, _ = LIFECYCLE[action]
        if self.status in allowed:
            return None
        names = ", ".join(sorted(s.value for s in allowed))
        return (
            f"cannot {action.replace('_', ' ')} delivery {self.id}: its status is "
            f"{self.status.value} (allowed from: {names})"
        )

    def check(self, action: str) -> None:
        refused = self.refusal(action)
        if refused is not None:
            raise InvalidState(refused)

    def move(self, action: str, to: DeliveryStatus | None = None) -> None:
        """Apply a lifecycle action in memory; the caller saves inside its transaction."""
        self.check(action)
        target = LIFECYCLE[action][1] or to
        if target is None:
            raise ValueError(f"action {action} needs an explicit target status")
        self.status = target
        if target is not S.IN_PROGRESS:
            self.clear_waiting()  # only a delivery that is sending waits for the MTA

    def clear_waiting(self) -> None:
        self.waiting_reason = None  # type: ignore[assignment]
        self.waiting_since = self.waiting_retry_at = None
        self.waiting_cause = None
        self.waiting_attempts = 0

    def begin_sending(self, now: datetime) -> None:
        """The validity period starts when the sending starts (SPEC §4)."""
        self.started_at = now
        self.valid_until = now + timedelta(seconds=self.validity_period)


async def exists(delivery_id: int) -> bool:
    """Whether the delivery exists, without reading its row (a page of its sending logs asks):
    a plain statement costs a third of tortoise's `exists()`, a fifth of reading the row."""
    return bool(await Sql().rows("SELECT 1 AS found FROM delivery WHERE id = ?", [delivery_id]))
