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

__all__ = [
    "Channel",
    "DeliveryStatus",
    "DenylistReason",
    "FailureType",
    "FeedbackMode",
    "Role",
    "SendingLogStatus",
]
