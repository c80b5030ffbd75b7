"""Inputs for creating and editing deliveries."""

from datetime import datetime

import strawberry

from graphql_schema.enums import AggregationPeriod, Channel, FeedbackMode
from graphql_schema.pagination import parse_id
from models.errors import BadInput
from models.lifecycle import DeliveryDraft, check_audience_size


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
    time_zone: str | None = strawberry.field(
        default=None,
        description="An IANA time zone such as Europe/Madrid (default UTC): the zone of a"
        " scheduledAt given without an offset, and of the recurrence's rule.",
    )

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
            time_zone=self.time_zone,
            recurrence_rule=recurrence.rule if recurrence else None,
            aggregation_period=recurrence.aggregation_period if recurrence else None,
            recurrence_interval=recurrence.interval_seconds if recurrence else None,
            recurrence_count=recurrence.count if recurrence else None,
            confirm_each_occurrence=recurrence.confirm_each_occurrence if recurrence else False,
        )
