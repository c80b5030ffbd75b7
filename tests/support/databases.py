"""Test databases: a fresh one for each server test, on SQLite or PostgreSQL.

A migrated database is a copy of a template that is migrated, and given one operator per role
(`ROLES`), once per test process: copying takes 0.05 s where migrating takes 0.3 s on
PostgreSQL and 0.5 s on SQLite, and the operators' inserts another 0.05 s. On PostgreSQL a thread
creates the next test's database while a test runs and another drops the used ones, so that
tests seldom wait for CREATE or DROP DATABASE (0.1 to 0.9 s each on a loaded machine).
`close()` (pytest_sessionfinish) removes what is left.

TEST_POSTGRES_URL names the PostgreSQL server (default postgres://postgres@127.0.0.1:5432/postgres).
"""

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
from tortoise import Tortoise
from tortoise.backends.base.executor import EXECUTOR_CACHE

from models.enums import Role
from models.operator import create_operator
from models.sql import Sql
from server.db import apply_migrations, tortoise_config

PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
PG_BASE = PG_URL.rsplit("/", 1)[0]

# The operators of every migrated test database, by the name a test uses for them.
ROLES = {
    "admin": [Role.ADMINISTRATION],
    "starter": [Role.START_DELIVERIES],
    "preparer": [Role.PREPARE_DELIVERIES],
    "approver": [Role.APPROVE_DELIVERIES],
    "reader": [],
}


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


async def create_operators(url: str | None = None) -> dict[str, str]:
    """One operator per role (`ROLES`), in the database the ORM is on (or in `url`): their
    bearer tokens by role name."""
    if url is not None:
        EXECUTOR_CACHE.clear()  # see fresh_database
        await Tortoise.init(config=tortoise_config(url))
    try:
        return {
            name: (await create_operator(f"{name}-{uuid.uuid4().hex[:6]}", roles))[1]
            for name, roles in ROLES.items()
        }
    finally:
        if url is not None:
            await Tortoise.close_connections()


async def _admin_execute(*statements: str) -> None:
    admin = await asyncpg.connect(PG_URL.replace("postgres://", "postgresql://", 1))
    try:
        for statement in statements:
            await admin.execute(statement)
    finally:
        await admin.close()


class _Postgres:
    """CREATE DATABASE in a thread of its own, DROP DATABASE in another (a drop never delays
    the next test's database)."""

    def __init__(self) -> None:
        self.creating = ThreadPoolExecutor(1, thread_name_prefix="test-databases-create")
        self.dropping = ThreadPoolExecutor(1, thread_name_prefix="test-databases-drop")
        self.template: str | None = None
        self.next: Future[str] | None = None  # a copy of the template, ready for the next test

    def _create(self, template: str | None) -> Future[str]:
        name = f"dtest_{uuid.uuid4().hex[:12]}"
        copy = f' TEMPLATE "{template}"' if template else ""

        def create() -> str:
            asyncio.run(_admin_execute(f'CREATE DATABASE "{name}"{copy}'))
            return name

        return self.creating.submit(create)

    def drop(self, name: str) -> None:
        sql = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        self.dropping.submit(lambda: asyncio.run(_admin_execute(sql)))

    async def take(self, migrated: bool) -> str:
        if not migrated:
            return await asyncio.wrap_future(self._create(None))
        if self.template is None:
            name = f"dtemplate_{uuid.uuid4().hex[:12]}"
            await _admin_execute(f'CREATE DATABASE "{name}"')
            await apply_migrations(f"{PG_BASE}/{name}")
            _operators["postgres"] = await create_operators(f"{PG_BASE}/{name}")
            self.template = name
        ready, self.next = self.next, self._create(self.template)
        return await asyncio.wrap_future(ready or self._create(self.template))

    def close(self) -> None:
        if self.next is not None:
            with contextlib.suppress(Exception):
                self.drop(self.next.result())
        self.creating.shutdown(wait=True)
        if self.template is not None:
            self.drop(self.template)
        self.dropping.shutdown(wait=True)


_postgres: _Postgres | None = None
_sqlite_template: Path | None = None
_operators: dict[str, dict[str, str]] = {}  # database kind -> the template's operators


def template_operators(kind: str) -> dict[str, str]:
    """The bearer tokens of the operators in every migrated database of this kind."""
    return dict(_operators[kind])


@contextlib.asynccontextmanager
async def fresh_database(kind: str, tmp_path: Any, *, migrated: bool = False) -> AsyncIterator[str]:
    """An empty database, or with `migrated` one with every migration applied and the
    operators of `template_operators(kind)`."""
    global _postgres, _sqlite_template
    # tortoise caches INSERT statements per connection *name*, not per dialect: whatever this
    # process ran before may have been on the other kind of database.
    EXECUTOR_CACHE.clear()
    if kind == "sqlite":
        path = Path(tmp_path) / "test.sqlite3"
        if migrated:
            if _sqlite_template is None:
                template = Path(tempfile.mkdtemp(prefix="dtemplate-")) / "template.sqlite3"
                await apply_migrations(f"sqlite://{template}")
                _operators["sqlite"] = await create_operators(f"sqlite://{template}")
                _sqlite_template = template
            shutil.copyfile(_sqlite_template, path)
        yield f"sqlite://{path}"
        return
    if _postgres is None:
        _postgres = _Postgres()
    name = await _postgres.take(migrated)
    try:
        yield f"{PG_BASE}/{name}"
    finally:
        _postgres.drop(name)


def close() -> None:
    """Removes the templates and the databases not yet dropped (at the end of the session)."""
    if _sqlite_template is not None:
        shutil.rmtree(_sqlite_template.parent, ignore_errors=True)
    if _postgres is not None:
        _postgres.close()


REDIS_URL = "redis://127.0.0.1:6379/0"


def _reachable(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


REDIS_AVAILABLE = _reachable("127.0.0.1", 6379)


@contextlib.asynccontextmanager
async def orm_with_notes(kind: str, tmp_path: Any) -> AsyncIterator[str]:
    """The ORM on a fresh database of that kind holding one table, `note (id int)`, for tests
    of the transactions themselves; the database's URL."""
    async with fresh_database(kind, tmp_path) as url:
        await Tortoise.init(config=tortoise_config(url))
        try:
            await Sql().execute("CREATE TABLE note (id int PRIMARY KEY)")
            yield url
        finally:
            await Tortoise.close_connections()
