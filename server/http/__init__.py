"""Plain HTTP endpoints beside GraphQL: MTA feedback webhooks, tracking, unsubscribe, limits."""

from typing import Protocol

from starlette.routing import BaseRoute


class Endpoints(Protocol):
    """A group of routes with a lifetime (a flush task, an HTTP client): the app mounts
    `routes`, calls `start()` after the database is up and `close()` before it goes down."""

    routes: list[BaseRoute]

    async def start(self) -> None: ...

    async def close(self) -> None: ...
