"""Inputs for creating and editing deliveries."""

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any

import strawberry
from strawberry import UNSET
from strawberry.types.base import StrawberryOptional

from graphql_schema.enums import AggregationPeriod, Channel, FeedbackMode
from graphql_schema.pagination import parse_id
from models.errors import BadInput
from models.lifecycle import DeliveryDraft, check_audience_size
from models.waves import MAX_INTERVAL_MINUTES, MAX_WAVE_SIZE, WavePlan


@strawberry.input
class AudienceInput:
    profile_ids: list[strawberry.ID] | None = None
    all_profiles: bool | None = strawberry.field(
        default=None, description="Target every profile (instead of profileIds)."
    )


@strawberry.input(
    description="A recurring delivery: each occurrence is a delivery of its own. Give `rule` (a"
    " calendar rule in the delivery's timeZone) or, the first form, `intervalSeconds`."
)
class RecurrenceInput:
    rule: str | None = strawberry.field(
        default=None,
        description="An RFC 5545 RRULE, e.g. FREQ=DAILY;BYHOUR=9;BYMINUTE=0 (daily at 09:00 in"
        " the delivery's timeZone), FREQ=HOURLY;INTERVAL=6, FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;"
        "BYHOUR=8, FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=10;COUNT=12. It starts at scheduledAt (or"
        " the confirmation); occurrences at least 15 minutes apart (docs/scheduling.md).",
    )
    interval_seconds: int | None = strawberry.field(
        default=None,
        description="3600 hourly, 86400 daily, ... (no calendar, no time zone).",
        deprecation_reason="Use rule: a calendar rule in the delivery's time zone.",
    )
    count: int | None = strawberry.field(
        default=None, description="At most this many executions; None: until stopped."
    )
    confirm_each_occurrence: bool = strawberry.field(
        default=False,
        description="Each occurrence waits in PENDING_CONFIRMATION until confirmSend (only"
        " without an aggregation period).",
    )
    aggregation_period: AggregationPeriod | None = strawberry.field(
        default=None,
        description="DAY, WEEK or MONTH (in the delivery's timeZone): the executions of one"
        " period add their recipients to one occurrence. NONE (the default): one occurrence per"
        " execution.",
    )


@strawberry.input(
    description="Send a part at a time: a first wave of firstSize messages, then a wave of size"
    f" messages every intervalMinutes (each 1 to {MAX_WAVE_SIZE}; the interval at most"
    f" {MAX_INTERVAL_MINUTES} minutes). A stop after a wave cancels every later one."
)
class WavesInput:
    first_size: int
    size: int
    interval_minutes: int


@strawberry.input
class CreateDeliveryInput:
    label: str
    channel: Channel
    body: str
    audience: AudienceInput
    subject: str | None = None
    scheduled_at: datetime | None = None
    validity_period: int | None = None
    feedback_mode: FeedbackMode | None = None
    require_approval: bool | None = None
    require_proof: bool | None = strawberry.field(
        default=None,
        description="confirmSend waits for a proof sent since the last edit. Omitted in an"
        " update: unchanged.",
    )
    recurrence: RecurrenceInput | None = None
    time_zone: str | None = strawberry.field(
        default=None,
        description="An IANA time zone such as Europe/Madrid (default UTC): the zone of a"
        " scheduledAt given without an offset, and of the recurrence's rule.",
    )
    send_in_recipient_time_zone: bool | None = strawberry.field(
        default=None,
        description="Relay each message at the contact date's local time in its recipient's"
        " zone (Profile.timeZone; the delivery's zone, or UTC, for a profile without one)."
        " Needs scheduledAt; a time already past is sent at the confirmation.",
    )
    waves: WavesInput | None = None

    def draft(self) -> DeliveryDraft:
        recurrence = self.recurrence
        check_audience_size(len(self.audience.profile_ids or []))  # before parsing each id
        if recurrence and recurrence.rule is None and recurrence.interval_seconds is None:
            raise BadInput("recurrence needs a rule (or intervalSeconds)")
        return DeliveryDraft(
            label=self.label,
            channel=self.channel,
            body=self.body,
            subject=self.subject,
            profile_ids=[parse_id(i, "profile") for i in self.audience.profile_ids or []],
            all_profiles=bool(self.audience.all_profiles),
            scheduled_at=self.scheduled_at,
            validity_period=self.validity_period,
            feedback_mode=self.feedback_mode,
            require_approval=self.require_approval,
            require_proof=self.require_proof,
            time_zone=self.time_zone,
            recurrence_rule=recurrence.rule if recurrence else None,
            aggregation_period=recurrence.aggregation_period if recurrence else None,
            recurrence_interval=recurrence.interval_seconds if recurrence else None,
            recurrence_count=recurrence.count if recurrence else None,
            confirm_each_occurrence=recurrence.confirm_each_occurrence if recurrence else False,
            send_in_recipient_time_zone=self.send_in_recipient_time_zone,
            waves=(
                WavePlan(self.waves.first_size, self.waves.size, self.waves.interval_minutes)
                if self.waves
                else None
            ),
        )


def input_of(draft: DeliveryDraft) -> CreateDeliveryInput:
    """A delivery's current content as the input that would create it: what a patch applies
    its given fields to. A field added to CreateDeliveryInput is read from the draft field of
    the same name."""
    recurrence = None
    if draft.recurrence_interval is not None or draft.recurrence_rule is not None:
        recurrence = RecurrenceInput(
            rule=draft.recurrence_rule,
            interval_seconds=draft.recurrence_interval,
            count=draft.recurrence_count,
            confirm_each_occurrence=draft.confirm_each_occurrence,
            aggregation_period=draft.aggregation_period,
        )
    audience = AudienceInput(
        profile_ids=None
        if draft.all_profiles
        else [strawberry.ID(str(i)) for i in draft.profile_ids or []],
        all_profiles=True if draft.all_profiles else None,
    )
    plan = draft.waves
    waves = (
        WavesInput(
            first_size=plan.first_size, size=plan.size, interval_minutes=plan.interval_minutes
        )
        if plan
        else None
    )
    special = {
        "audience": audience,
        "recurrence": recurrence,
        "require_approval": None,
        "waves": waves,
    }
    values: dict[str, Any] = {
        name: special[name] if name in special else getattr(draft, name, None)
        for name in _field_names(CreateDeliveryInput)
    }
    return CreateDeliveryInput(**values)


def _field_names(kind: type) -> list[str]:
    return [f.python_name for f in kind.__strawberry_definition__.fields]  # type: ignore[attr-defined]


def _patch_type() -> type:
    """UpdateDeliveryInput: CreateDeliveryInput's fields, each optional and left out by
    default, so that a field added to one is in the other."""
    namespace: dict[str, object] = {"__annotations__": {}}
    for f in CreateDeliveryInput.__strawberry_definition__.fields:  # type: ignore[attr-defined]
        kind = f.type_annotation.annotation if f.type_annotation else f.type
        namespace["__annotations__"][f.python_name] = kind | None  # type: ignore[index]
        namespace[f.python_name] = strawberry.field(default=UNSET, description=f.description)
    return strawberry.input(
        type("UpdateDeliveryInput", (), namespace),
        description="The fields to change; every field left out keeps its value (null clears"
        " an optional one). The delivery goes back to DRAFT as on any edit.",
    )


UpdateDeliveryInput = _patch_type()


def patch(given: object) -> Callable[[DeliveryDraft], DeliveryDraft]:
    """The change an UpdateDeliveryInput makes to a delivery's draft (models/lifecycle.py:
    update_delivery applies it under the row lock)."""
    changes = {
        name: value
        for name in _field_names(CreateDeliveryInput)
        if (value := getattr(given, name)) is not UNSET
    }
    for name, value in changes.items():
        if value is None and name in REQUIRED:
            raise BadInput(f"{name} cannot be null: leave it out to keep it")

    def apply(current: DeliveryDraft) -> DeliveryDraft:
        merged = dataclasses.replace(input_of(current), **changes)
        return merged.draft()

    return apply


REQUIRED = frozenset(
    f.python_name
    for f in CreateDeliveryInput.__strawberry_definition__.fields  # type: ignore[attr-defined]
    if not isinstance(f.type, StrawberryOptional)
)
