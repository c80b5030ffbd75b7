"""SMTP relay (stub: filled in by the SMTP work)."""

from models.relay import Claimed
from server.mta.base import Content, FeedbackSink, RelayResult
from server.settings import Settings


class SmtpMta:
    @classmethod
    def from_settings(cls, settings: Settings) -> "SmtpMta":
        raise ValueError("smtp:// is not implemented yet")

    async def start(self, sink: FeedbackSink) -> None:
        return None

    async def relay(self, content: Content, batch: list[Claimed]) -> RelayResult:
        raise NotImplementedError

    async def close(self) -> None:
        return None
