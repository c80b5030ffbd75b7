"""GraphiQL at `/graphql` in a browser, served offline (stub: filled in by the GraphiQL work)."""

from starlette.routing import BaseRoute

from server.settings import Settings


class GraphiQL:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.routes: list[BaseRoute] = []

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None
