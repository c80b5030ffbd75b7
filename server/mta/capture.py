"""`capture://`: accepts every message and reports nothing, so feedback comes only from the
webhook. It remembers what it relayed, for tests and for driving feedback by hand."""

from collections import Counter

from models.proofs import ProofMessage, ProofOutcome, Relayed
from server.mta.base import Content, FeedbackSink, Handover


class CaptureMta:
    def __init__(self) -> None:
        self.relayed: Counter[str] = Counter()  # message id -> times relayed
        self.proofs: list[tuple[int, ProofMessage]] = []  # (proof number, message)

    async def start(self, sink: FeedbackSink) -> None:
        return None

    async def relay(self, content: Content, handover: Handover) -> None:
        """The whole batch in one step: the gate is asked once, just before."""
        if not handover.may_send():
            handover.withhold(handover.batch)
            return
        for message in handover.batch:
            self.relayed[message.message_id] += 1
        handover.accepted += [m.log_id for m in handover.batch]

    async def send_proofs(self, number: int, messages: list[ProofMessage]) -> list[Relayed]:
        self.proofs += [(number, m) for m in messages]
        return [Relayed(ProofOutcome.ACCEPTED) for _ in messages]

    async def close(self) -> None:
        return None
