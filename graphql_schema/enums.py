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

__all__ = [
    "Channel",
    "DeliveryStatus",
    "DenylistReason",
    "FailureType",
    "FeedbackMode",
    "Role",
    "SendingLogStatus",
    "WaitingReason",
]
