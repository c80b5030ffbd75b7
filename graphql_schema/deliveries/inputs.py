"""Inputs for creating and editing deliveries."""

from datetime import datetime

import strawberry

from graphql_schema.enums import Channel, FeedbackMode
from graphql_schema.pagination import parse_id
from models.lifecycle import DeliveryDraft, check_audience_size
from models.waves import MAX_INTERVAL_MINUTES, MAX_WAVE_SIZE, WavePlan


@strawberry.input
class AudienceInput:
    profile_ids: list[strawberry.ID] | None = None
    all_profiles: bool | None = strawberry.field(
        default=None, description="Target every profile (instead of profileIds)."
    )


@strawberry.input(description="A recurring delivery: each occurrence is a delivery of its own.")
class RecurrenceInput:
    interval_seconds: int = strawberry.field(description="3600 hourly, 86400 daily, ...")
    count: int | None = strawberry.field(default=None, description="None: until stopped.")
    confirm_each_occurrence: bool = strawberry.field(
        default=False,
        description="Each occurrence waits in PENDING_CONFIRMATION until confirmSend.",
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
    recurrence: RecurrenceInput | None = None
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
