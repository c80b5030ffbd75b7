"""What the engine needs from a mail transfer agent, whatever it is."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from models.enums import FailureReason, FeedbackType
from models.feedback import Event
from models.relay import Claimed

# Where an MTA adapter hands the reports it produces (the same path as the webhook).
FeedbackSink = Callable[[list[Event]], Awaitable[object]]


@dataclass(frozen=True)
class Content:
    """What is sent, for one delivery (personalisation and tracking come with the SMTP work)."""

    delivery_id: int
    subject: str | None
    body: str
    valid_until: datetime
    validity_period: int  # seconds, as the delivery was configured


@dataclass
class RelayResult:
    """Log ids the MTA took, and those it refused at once (reported as bounces)."""

    accepted: list[int] = field(default_factory=list)
    refused: list[tuple[Claimed, FeedbackType, FailureReason]] = field(default_factory=list)


class Mta(Protocol):
    async def start(self, sink: FeedbackSink) -> None: ...

    async def relay(self, content: Content, batch: list[Claimed]) -> RelayResult: ...

    async def close(self) -> None: ...
