"""Amazon SES notifications through SNS (stub: filled in by the provider-webhook work)."""

from collections.abc import Awaitable, Callable

from starlette.routing import BaseRoute

from models.feedback import Event, FeedbackResult
from server.settings import Settings


class SesWebhook:
    def __init__(
        self, settings: Settings, intake: Callable[[list[Event]], Awaitable[FeedbackResult]]
    ) -> None:
        self.settings, self.intake = settings, intake
        self.routes: list[BaseRoute] = []

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None
