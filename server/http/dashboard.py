"""The live Deployment dashboard at `/` (stub: filled in by the dashboard work)."""

from starlette.routing import BaseRoute

from server.settings import Settings


class Dashboard:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.routes: list[BaseRoute] = []

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None
