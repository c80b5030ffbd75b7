"""Inputs for creating and editing deliveries."""

from datetime import datetime

import strawberry

from graphql_schema.enums import Channel, FeedbackMode
from graphql_schema.pagination import parse_id
from models.lifecycle import DeliveryDraft, check_audience_size


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
            require_proof=self.require_proof,
            recurrence_interval=recurrence.interval_seconds if recurrence else None,
            recurrence_count=recurrence.count if recurrence else None,
            confirm_each_occurrence=recurrence.confirm_each_occurrence if recurrence else False,
        )
