"""Fixtures: a real server (uvicorn on a free port) per test, on SQLite and on PostgreSQL.

PostgreSQL tests use TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres)
and a fresh database per test (tests/support/databases.py); when that server is not reachable they
are
skipped, and the skip reason says so.
"""

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import uvicorn
from tortoise.backends.base.executor import EXECUTOR_CACHE

from server.app import create_app
from server.settings import Settings
from tests.support import databases
from tests.support.client import Api, http_client
from tests.support.databases import PG_AVAILABLE, PG_URL, ROLES, fresh_database

__all__ = ["PG_AVAILABLE", "PG_URL", "ROLES", "fresh_database"]  # tests import them from here
SECRET = "test-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    databases.close()


# The longest tests (tens of seconds each) start first, so that parallel workers (`-n auto`, the
# README's command) finish together instead of one running the 100,000-recipient send alone at
# the end. `--maxschedchunk 1` (pyproject.toml) has xdist hand out tests one at a time, except
# two to each worker at the start: the second test of the worker that starts the longest is a
# short one, so that nothing long waits behind it.
LONGEST_FIRST = (
    "tests/runtime/test_cluster.py::test_a_killed_worker",
    "tests/api/feedback/test_fuzz_webhook.py",
    "tests/runtime/test_cluster.py",
    "tests/api/input/test_fuzz_graphql.py",
    "tests/runtime/test_faults.py",
    "tests/runtime/test_worker.py",
    "tests/runtime/test_restart.py",
    "tests/rules/test_state_machine.py",
    "tests/browser/",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        found = (i for i, prefix in enumerate(LONGEST_FIRST) if item.nodeid.startswith(prefix))
        return next(found, len(LONGEST_FIRST))

    items.sort(key=rank)
    short = next((i for i, item in enumerate(items) if rank(item) == len(LONGEST_FIRST)), None)
    if short is not None and short > 1:
        items.insert(1, items.pop(short))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres" and not PG_AVAILABLE:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL} (set TEST_POSTGRES_URL)")
    return str(request.param)


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
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime

    async def start(self) -> None:
        # tortoise caches INSERT statements per connection *name*, not per dialect: a test run
        # that goes from SQLite to PostgreSQL in one process must forget them.
        EXECUTOR_CACHE.clear()
        self.task = asyncio.create_task(self.server.serve())
        for _ in range(500):
            if self.server.started:
                return
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)
        raise RuntimeError("server did not start")

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await asyncio.wait_for(self.task, 15)


ServerFactory = Callable[..., Any]


@pytest.fixture
async def make_server(db_kind: str, tmp_path: Any) -> AsyncIterator[Callable[..., Any]]:
    """Start servers on one fresh database: make_server(mta_url=..., **settings)."""
    servers: list[RunningServer] = []
    async with fresh_database(db_kind, tmp_path, migrated=True) as url:

        async def start(**overrides: Any) -> RunningServer:
            values: dict[str, Any] = {
                "database_url": url,
                "mta_url": "capture://",
                "feedback_secret": SECRET,
                "engine_tick_seconds": 0.05,
                "progress_interval_seconds": 0.05,
                "batch_size": 100,
                # Every test client is 127.0.0.1: tests that try bad tokens on purpose must not
                # lock the others out. tests/api/access/test_auth_failures.py sets its own limit.
                "auth_failure_limit": 10_000,
            }
            values.update(overrides)
            running = RunningServer(Settings(_env_file=None, **values))  # type: ignore[call-arg]
            if values["database_url"] == url:
                running.operators = databases.template_operators(db_kind)
            await running.start()
            servers.append(running)
            return running

        try:
            yield start
        finally:
            for running in reversed(servers):
                await running.stop()


async def api_for(running: RunningServer) -> AsyncIterator[Api]:
    """A client with one operator per role (ROLES): admin, starter, preparer, approver,
    reader."""
    async with http_client(running.base_url, timeout=30) as http:
        api = Api(running.base_url, http, SECRET)
        api.tokens.update(running.operators or await databases.create_operators())
        yield api


@pytest.fixture
async def server(make_server: Callable[..., Any]) -> RunningServer:
    """A server with the capture MTA: feedback comes only from the webhook."""
    return await make_server()  # type: ignore[no-any-return]


@pytest.fixture
async def api(server: RunningServer) -> AsyncIterator[Api]:
    """A client with one operator per role: admin, starter, preparer, approver, reader."""
    async for client in api_for(server):
        yield client
