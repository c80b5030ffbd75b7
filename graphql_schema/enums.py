"""The domain's enums, exposed to GraphQL under the contract's names."""

import strawberry

from models import enums

Channel = strawberry.enum(enums.Channel)
DeliveryStatus = strawberry.enum(enums.DeliveryStatus)
SendingLogStatus = strawberry.enum(enums.SendingLogStatus)
FailureType = strawberry.enum(enums.FailureType)
FeedbackMode = strawberry.enum(enums.FeedbackMode)
Role = strawberry.enum(enums.Role)
