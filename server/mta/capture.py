"""`capture://`: accepts every message and reports nothing, so feedback comes only from the
webhook. It remembers what it relayed, for tests and for driving feedback by hand."""

from collections import Counter

from models.relay import Claimed
from server.mta.base import Content, FeedbackSink, RelayResult


class CaptureMta:
    def __init__(self) -> None:
        self.relayed: Counter[str] = Counter()  # message id -> times relayed

    async def start(self, sink: FeedbackSink) -> None:
        return None

    async def relay(self, content: Content, batch: list[Claimed]) -> RelayResult:
        for message in batch:
            self.relayed[message.message_id] += 1
        return RelayResult(accepted=[m.log_id for m in batch])

    async def close(self) -> None:
        return None
