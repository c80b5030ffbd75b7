"""Fixtures: a real server (uvicorn on a free port) per test, on SQLite and on PostgreSQL.

PostgreSQL tests use TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres)
and a fresh database per test; when that server is not reachable they are skipped, and the
skip reason says so.
"""

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from tortoise.backends.base.executor import EXECUTOR_CACHE

from models.enums import Role
from models.operator import create_operator
from server.app import create_app
from server.db import apply_migrations
from server.settings import Settings
from tests.client import Api

PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
SECRET = "test-secret"


def _pg_available() -> bool:
    host, port = "127.0.0.1", 5432
    rest = PG_URL.split("@", 1)[-1].split("/", 1)[0]
    if ":" in rest:
        host, port_text = rest.rsplit(":", 1)
        port = int(port_text)
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


PG_AVAILABLE = _pg_available()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# A migrated database that each server test's PostgreSQL database is copied from: copying takes
# 0.05 s where migrating an empty one takes 0.3 s (about a minute over the suite). Dropped when
# the session ends (pytest_sessionfinish).
_template: str | None = None


async def _migrated_template(admin: Any) -> str:
    global _template
    if _template is None:
        name = f"dtemplate_{uuid.uuid4().hex[:12]}"
        await admin.execute(f'CREATE DATABASE "{name}"')
        await apply_migrations(f"{PG_URL.rsplit('/', 1)[0]}/{name}")
        _template = name
    return _template


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _template is not None:

        async def drop() -> None:
            admin = await asyncpg.connect(PG_URL.replace("postgres://", "postgresql://", 1))
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{_template}" WITH (FORCE)')
            finally:
                await admin.close()

        asyncio.run(drop())


@contextlib.asynccontextmanager
async def fresh_database(kind: str, tmp_path: Any, *, migrated: bool = False) -> AsyncIterator[str]:
    """An empty database, or with `migrated` one with every migration applied (on PostgreSQL
    a copy of a template migrated once per session)."""
    if kind == "sqlite":
        yield f"sqlite://{tmp_path}/test.sqlite3"
        return
    name = f"dtest_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_URL.replace("postgres://", "postgresql://", 1))
    try:
        template = f' TEMPLATE "{await _migrated_template(admin)}"' if migrated else ""
        await admin.execute(f'CREATE DATABASE "{name}"{template}')
        base = PG_URL.rsplit("/", 1)[0]
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


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
                # lock the others out. tests/test_auth_failures.py sets its own limit.
                "auth_failure_limit": 10_000,
            }
            values.update(overrides)
            running = RunningServer(Settings(_env_file=None, **values))  # type: ignore[call-arg]
            await running.start()
            servers.append(running)
            return running

        try:
            yield start
        finally:
            for running in reversed(servers):
                await running.stop()


ROLES = {
    "admin": [Role.ADMINISTRATION],
    "starter": [Role.START_DELIVERIES],
    "preparer": [Role.PREPARE_DELIVERIES],
    "approver": [Role.APPROVE_DELIVERIES],
    "reader": [],
}


async def api_for(running: RunningServer) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=running.base_url, timeout=30) as http:
        api = Api(running.base_url, http, SECRET)
        for name, roles in ROLES.items():
            _, token = await create_operator(f"{name}-{uuid.uuid4().hex[:6]}", roles)
            api.tokens[name] = token
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
