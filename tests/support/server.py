"""A real server for a test: the app under uvicorn on a free port, in the test's event loop.

uvicorn's own `Server` polls for its exit every 0.1 s and sleeps 0.1 s more in its shutdown,
which cost every test about 0.2 s when it stopped its server. `_Uvicorn` waits on an event
and polls for open connections every 5 ms instead; the rest (lifespan, graceful drain of
connections and tasks) is uvicorn's.

Each app builds its strawberry schema (0.05 to 0.13 s). The schema depends only on its
`SchemaOptions` and holds no state of a server or a request, so a test process builds it once
per set of options and every app of that process shares it, as every request of a server does.
"""

import asyncio
import functools
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from tortoise.backends.base.executor import EXECUTOR_CACHE

from server import graphql_app
from server.app import create_app
from server.settings import Settings
from tests.support import databases
from tests.support.client import Api, http_client

SECRET = "test-secret"
graphql_app.build_schema = functools.cache(graphql_app.build_schema)  # type: ignore[assignment]
ServerFactory = Callable[..., Any]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Uvicorn(uvicorn.Server):
    """uvicorn.Server that stops as soon as it is asked to (see the module's docstring)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.exit_requested = asyncio.Event()

    async def main_loop(self) -> None:
        await self.on_tick(0)  # the default headers
        while not self.should_exit:
            # should_exit may also be set by uvicorn itself (a signal): look at it now and then.
            try:
                await asyncio.wait_for(self.exit_requested.wait(), 0.1)
            except TimeoutError:
                continue

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        try:
            async with asyncio.timeout(self.config.timeout_graceful_shutdown):
                # uvicorn signals neither a closed connection nor a finished task.
                while self.server_state.connections or self.server_state.tasks:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
        except TimeoutError:
            for task in self.server_state.tasks:
                task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        for server in self.servers:
            await server.wait_closed()
        await self.lifespan.shutdown()


class RunningServer:
    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        if settings.public_url is None:
            settings.public_url = self.base_url
        self.settings = settings
        # The operators' tokens by role name, when the database has the template's operators.
        self.operators: dict[str, str] = {}
        self.app = create_app(settings)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            ws="websockets-sansio",
        )
        self.server = _Uvicorn(config)
        self.task: asyncio.Task[None] | None = None

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime

    async def start(self) -> None:
        # tortoise caches INSERT statements per connection *name*, not per dialect: a test run
        # that goes from SQLite to PostgreSQL in one process must forget them.
        EXECUTOR_CACHE.clear()
        self.task = asyncio.create_task(self.server.serve())
        for _ in range(2000):
            if self.server.started:
                return
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.0025)
        raise RuntimeError("server did not start")

    async def stop(self) -> None:
        self.server.should_exit = True
        self.server.exit_requested.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 15)


async def api_for(running: RunningServer) -> AsyncIterator[Api]:
    """A client with one operator per role (ROLES): admin, starter, preparer, approver,
    reader."""
    async with http_client(running.base_url, timeout=30) as http:
        api = Api(running.base_url, http, SECRET)
        api.tokens.update(running.operators or await databases.create_operators())
        yield api


@asynccontextmanager
async def client_of(running: RunningServer) -> AsyncIterator[Api]:
    """api_for as a context manager, for a server a test starts itself."""
    async for api in api_for(running):
        yield api
