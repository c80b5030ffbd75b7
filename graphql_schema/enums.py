"""The domain's enums, registered with strawberry under the contract's names."""

import strawberry

from models.enums import (
    Channel,
    DeliveryStatus,
    DenylistReason,
    FailureType,
    FeedbackMode,
    Role,
    SendingLogStatus,
    WaitingReason,
)
from models.recurrence import AggregationPeriod

for _enum in (
    Channel,
    DeliveryStatus,
    SendingLogStatus,
    FailureType,
    FeedbackMode,
    Role,
    DenylistReason,
):
    strawberry.enum(_enum)
strawberry.enum(WaitingReason, description="What a delivery in progress is waiting for.")
strawberry.enum(
    AggregationPeriod,
    description="Within one period (in the delivery's time zone) every execution of a recurring"
    " delivery adds its recipients to one occurrence; NONE: one occurrence per execution.",
)

__all__ = [
    "AggregationPeriod",
    "Channel",
    "DeliveryStatus",
    "DenylistReason",
    "FailureType",
    "FeedbackMode",
    "Role",
    "SendingLogStatus",
    "WaitingReason",
]
