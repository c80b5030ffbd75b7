"""The domain's enums, registered with strawberry under the contract's names."""

import strawberry

from models.actions import DeliveryAction
from models.enums import (
    Channel,
    DeliveryStatus,
    DenylistReason,
    FailureReason,
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
strawberry.enum(
    FailureReason,
    description="Why a message failed, was ignored or was excluded at preparation (SPEC §4).",
)
strawberry.enum(WaitingReason, description="What a delivery in progress is waiting for.")
strawberry.enum(
    AggregationPeriod,
    description="Within one period (in the delivery's time zone) every execution of a recurring"
    " delivery adds its recipients to one occurrence; NONE: one occurrence per execution.",
)
strawberry.enum(
    DeliveryAction,
    description="What an operator may do to a delivery: each is a mutation (SEND_PROOF is"
    " sendProof, COMPUTE_STATS computeStats, EDIT updateDelivery, DELETE deleteDelivery,"
    " CONFIRM confirmSend, the others <action>Delivery).",
)

__all__ = [
    "AggregationPeriod",
    "Channel",
    "DeliveryAction",
    "DeliveryStatus",
    "DenylistReason",
    "FailureReason",
    "FailureType",
    "FeedbackMode",
    "Role",
    "SendingLogStatus",
    "WaitingReason",
]
