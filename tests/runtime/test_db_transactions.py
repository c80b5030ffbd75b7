"""A transaction that meets a dead PostgreSQL connection must not leave its task on it.

What a PostgreSQL restart does to a busy worker, made deterministic: the pool hands over a
connection that dies before its BEGIN, or the release of a connection that PostgreSQL just closed
fails (asyncpg terminates it and raises). With tortoise's own transaction context either left the
task's context pointing at the dead connection, and every later query of that task failed
("connection is closed") long after the database was back (server/pg_backend.py)."""

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from tortoise.connection import get_connection
from tortoise.transactions import in_transaction

from models.sql import Sql
from tests.support.databases import PG_AVAILABLE, orm_with_notes

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_AVAILABLE, reason="PostgreSQL not reachable"),
]


@pytest.fixture
async def pool(tmp_path: Path) -> AsyncIterator[Any]:
    """The ORM on a fresh PostgreSQL database; its connection pool, once opened."""
    async with orm_with_notes("postgres", tmp_path):
        yield get_connection("default")._pool  # type: ignore[attr-defined]


def once(monkeypatch: pytest.MonkeyPatch, name: str, fault: Callable[..., Awaitable[Any]]) -> None:
    """asyncpg's Pool.`name` does `fault(the real method bound to the pool, *args)` on its next
    call only (on the class: a Pool has __slots__)."""
    real = getattr(asyncpg.Pool, name)

    async def faulty(pool: Any, *args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(asyncpg.Pool, name, real)
        return await fault(real.__get__(pool), *args, **kwargs)

    monkeypatch.setattr(asyncpg.Pool, name, faulty)


async def still_works() -> None:
    """The same task queries, in and out of a transaction, on the pool's connections."""
    client = get_connection("default")
    assert type(client).__name__ != "TransactionWrapper", "the task is left in the transaction"
    assert await Sql().rows("SELECT 1 AS one") == [{"one": 1}]
    async with in_transaction() as conn:
        await Sql(conn).execute("INSERT INTO note (id) VALUES (?)", [99])
    assert await Sql().rows("SELECT id FROM note WHERE id = 99") == [{"id": 99}]


async def test_a_connection_that_dies_before_begin_fails_that_transaction_only(
    pool: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def dying(acquire: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        proxy = await acquire(*args, **kwargs)
        proxy.terminate()  # PostgreSQL went away just after the pool handed it over
        return proxy

    once(monkeypatch, "acquire", dying)
    with pytest.raises(asyncpg.InterfaceError):
        async with in_transaction() as conn:
            await Sql(conn).execute("INSERT INTO note (id) VALUES (?)", [1])
    await still_works()
    assert await Sql().rows("SELECT id FROM note WHERE id = 1") == []


async def failing_release(release: Callable[..., Awaitable[Any]], proxy: Any, **kwargs: Any) -> Any:
    """What asyncpg does when the reset of a connection PostgreSQL has just closed fails."""
    proxy.terminate()
    raise asyncpg.InternalClientError("cannot switch to state 15; another operation (2)")


async def test_a_release_that_fails_after_the_commit_keeps_the_commit_and_the_task_working(
    pool: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    once(monkeypatch, "release", failing_release)
    async with in_transaction() as conn:
        await Sql(conn).execute("INSERT INTO note (id) VALUES (?)", [2])
    assert await Sql().rows("SELECT id FROM note WHERE id = 2") == [{"id": 2}]
    await still_works()


async def test_a_release_that_fails_after_a_rollback_keeps_the_error_and_the_task_working(
    pool: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    once(monkeypatch, "release", failing_release)
    with pytest.raises(ZeroDivisionError):
        async with in_transaction() as conn:
            await Sql(conn).execute("INSERT INTO note (id) VALUES (?)", [3])
            1 / 0  # noqa: B018
    assert await Sql().rows("SELECT id FROM note WHERE id = 3") == []
    await still_works()
