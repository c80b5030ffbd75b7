"""What the engine needs from a mail transfer agent, whatever it is."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from models.enums import Channel, FailureReason, FeedbackType
from models.feedback import Event
from models.relay import Claimed

# Where an MTA adapter hands the reports it produces (the same path as the webhook).
FeedbackSink = Callable[[list[Event]], Awaitable[object]]


@dataclass(frozen=True)
class Content:
    """What is sent, for one delivery: the template that each recipient's copy is made from
    (personalisation and tracking are the adapter's job: see server/mta/compose.py)."""

    delivery_id: int
    channel: Channel
    subject: str | None
    body: str
    valid_until: datetime
    validity_period: int  # seconds, as the delivery was configured


@dataclass
class RelayResult:
    """What became of each message of a batch.

    `accepted`: log ids the MTA took. `refused`: messages it refused (a 5xx is a hard bounce,
    a 4xx a soft one that the engine retries later). `unsent`: messages it never took (the
    connection dropped before their turn): the engine gives them back to be claimed again.
    `error` says why some were unsent; it counts as a failed relay.
    """

    accepted: list[int] = field(default_factory=list)
    refused: list[tuple[Claimed, FeedbackType, FailureReason]] = field(default_factory=list)
    unsent: list[int] = field(default_factory=list)
    error: Exception | None = None


class Mta(Protocol):
    async def start(self, sink: FeedbackSink) -> None: ...

    async def relay(self, content: Content, batch: list[Claimed]) -> RelayResult: ...

    async def close(self) -> None: ...
