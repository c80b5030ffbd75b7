"""What the engine needs from a mail transfer agent, whatever it is."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from models.enums import Channel, FailureReason, FeedbackType
from models.feedback import Event
from models.proofs import ProofMessage, Relayed
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
    # When the sending started: a message with its own send time (models/send_time.py) whose
    # time was already past then has its validity period from then.
    started_at: datetime | None = None
    # What the messages' due times count from (the waves' anchor; None: epoch times).
    due_origin: datetime | None = None


class RelayError(Exception):
    """Why the MTA took none, or not all, of a batch.

    A transient error (the relay is down, busy, unreachable, or dropped the connection) never
    fails a delivery: the engine backs off and tries again until the MTA answers. A permanent
    one (our credentials or our sender refused, STARTTLS required but not offered, an untrusted
    certificate, a configuration error) fails it after MAX_RELAY_FAILURES in a row. `cause` is
    a plain phrase that operators read ("connection refused"): never the MTA's own text, which
    may hold addresses or hosts. Anything else an adapter raises counts as transient.
    """

    def __init__(self, message: str, *, cause: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.cause, self.permanent = cause, permanent


@dataclass
class Handover:
    """One batch on its way to the MTA, shared by the dispatcher and the adapter while it runs.

    The adapter asks `may_send()` before each transaction it starts: the dispatcher closes the
    gate as soon as it learns that the delivery was stopped or paused (a bus event, or the
    status it re-reads at least every RELAY_RECORD_INTERVAL_SECONDS), so that at most the
    transactions already started (one per connection) still reach the MTA. The adapter appends
    each message's fate as soon as it is known, so that the dispatcher records what the MTA
    accepted while the batch is still going, not only at its end.

    `accepted`: log ids the MTA took. `refused`: messages it refused (a 5xx is a hard bounce, a
    4xx a soft one that the engine retries later). `unsent`: messages never handed over because
    the connection failed: given back, to be claimed again. `withheld`: messages never handed
    over because the gate closed: given back (pause) or left cancelled (stop). `error` says why
    some were unsent.
    """

    batch: list[Claimed]
    accepted: list[int] = field(default_factory=list)
    refused: list[tuple[Claimed, FeedbackType, FailureReason]] = field(default_factory=list)
    unsent: list[int] = field(default_factory=list)
    withheld: list[int] = field(default_factory=list)
    error: Exception | None = None
    open: bool = True

    def may_send(self) -> bool:
        return self.open

    def withhold(self, rest: list[Claimed]) -> None:
        self.withheld += [c.log_id for c in rest]


class Mta(Protocol):
    async def start(self, sink: FeedbackSink) -> None: ...

    async def relay(self, content: Content, handover: Handover) -> None: ...

    async def send_proofs(self, number: int, messages: list[ProofMessage]) -> list[Relayed]:
        """Proof `number`'s messages (models/proofs.py), outside any batch: one outcome each,
        in order. No sending log stands behind them, so an adapter reports no feedback."""
        ...

    async def close(self) -> None: ...
