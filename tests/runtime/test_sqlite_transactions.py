"""A SQLite transaction whose start fails, or is cancelled, must give the connection's lock
back (server/sqlite_backend.py). tortoise's own context took the lock, then awaited the BEGIN:
a failure or a cancellation there (a request whose client went away is cancelled wherever it
waits) left the lock taken, and every later query of the process waited forever."""

import asyncio
import contextvars
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from tortoise.backends.sqlite.client import SqliteTransactionWrapper
from tortoise.connection import get_connection
from tortoise.transactions import in_transaction

from models.sql import Sql
from tests.support.databases import orm_with_notes

BEFORE: contextvars.ContextVar[contextvars.Context] = contextvars.ContextVar("before")


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[str]:
    """The ORM on a fresh SQLite file with one table; the file's path."""
    async with orm_with_notes("sqlite", tmp_path) as url:
        BEFORE.set(contextvars.copy_context())  # another task's, before any fault
        yield url.removeprefix("sqlite://").split("?", 1)[0]


def next_begin(monkeypatch: pytest.MonkeyPatch, fault: Callable[..., Awaitable[Any]]) -> None:
    """The next transaction's BEGIN does `fault(the real begin)` instead."""
    real = SqliteTransactionWrapper.begin

    async def faulty(wrapper: SqliteTransactionWrapper) -> None:
        monkeypatch.setattr(SqliteTransactionWrapper, "begin", real)
        await fault(real.__get__(wrapper))

    monkeypatch.setattr(SqliteTransactionWrapper, "begin", faulty)


async def insert(note: int) -> None:
    async with in_transaction() as conn:
        await Sql(conn).execute("INSERT INTO note (id) VALUES (?)", [note])


async def still_works(path: str) -> None:
    """The task is not left in the transaction; another task's queries and transactions go on
    (not waiting on a lock left taken), and what they write is committed: another connection
    reads it."""
    assert not isinstance(get_connection("default"), SqliteTransactionWrapper)

    async def elsewhere() -> None:
        await insert(2)
        await Sql().execute("INSERT INTO note (id) VALUES (?)", [3])

    await asyncio.wait_for(asyncio.create_task(elsewhere(), context=BEFORE.get()), 10)
    with sqlite3.connect(path) as other:
        assert [row[0] for row in other.execute("SELECT id FROM note ORDER BY id")] == [2, 3]


async def test_a_begin_that_fails_gives_the_lock_back(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refused(_begin: Callable[[], Awaitable[None]]) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    next_begin(monkeypatch, refused)
    with pytest.raises(sqlite3.OperationalError):
        await insert(1)
    await still_works(database)


async def test_a_transaction_cancelled_in_its_begin_gives_the_lock_back(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled after its BEGIN ran (aiosqlite runs it on its thread whether or not the task
    still waits): that transaction is rolled back, so the next queries are not caught in it."""
    begun = asyncio.Event()

    async def slow(begin: Callable[[], Awaitable[None]]) -> None:
        await begin()
        begun.set()
        await asyncio.sleep(60)

    next_begin(monkeypatch, slow)
    task = asyncio.create_task(insert(1))
    await asyncio.wait_for(begun.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await still_works(database)
