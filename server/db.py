"""Database configuration and migrations (tortoise's built-in migrator)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.migrations.api import migrate

from models import MODEL_MODULES


def normalise_url(url: str) -> str:
    """Accept the common spellings: postgresql:// is postgres:// for tortoise."""
    if url.startswith("postgresql://"):
        return "postgres://" + url[len("postgresql://") :]
    return url


def asyncpg_dsn(database_url: str) -> str:
    """tortoise's `postgres://...?minsize=..` -> a plain libpq DSN for asyncpg."""
    url = database_url.split("?", 1)[0]
    for scheme in ("postgres://", "asyncpg://", "psycopg://"):
        if url.startswith(scheme):
            return "postgresql://" + url[len(scheme) :]
    return url


PG_ENGINE = "server.pg_backend"  # tortoise's asyncpg client, transactions made failure-proof
SQLITE_ENGINE = "server.sqlite_backend"  # tortoise's SQLite client, its lock made failure-proof


def tortoise_config(database_url: str) -> dict[str, Any]:
    url = normalise_url(database_url)
    if url.startswith("sqlite://") and "busy_timeout" not in url:
        url += ("&" if "?" in url else "?") + "busy_timeout=10000"
    connection: str | dict[str, Any] = url
    if url.startswith("postgres://"):
        connection = {**expand_db_url(url), "engine": PG_ENGINE}
    elif url.startswith("sqlite://"):
        connection = {**expand_db_url(url), "engine": SQLITE_ENGINE}
    return {
        "connections": {"default": connection},
        "apps": {
            "models": {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "models.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


MIGRATION_LOCK_KEY = 0x5C4ED01F  # pg_advisory_lock(bigint): one constant for schema changes


@asynccontextmanager
async def migration_lock(database_url: str) -> AsyncIterator[None]:
    """Processes of a cluster started together would each create the same tables and types and
    all but one would fail; on PostgreSQL they queue on a session advisory lock (on a connection
    of its own, so the lock goes with it if the process dies) and the later ones find the
    migrations applied. SQLite has one process."""
    if not normalise_url(database_url).startswith("postgres://"):
        yield
        return
    conn = await asyncpg.connect(asyncpg_dsn(database_url), timeout=10)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        yield
    finally:
        conn.terminate()  # ends the session: the lock is released with it


def ensure_sqlite_dir(database_url: str) -> None:
    """A SQLite file's folder (data/ by default) is created on first start."""
    if database_url.startswith("sqlite://") and ":memory:" not in database_url:
        path = database_url[len("sqlite://") :].split("?", 1)[0]
        Path(path).parent.mkdir(parents=True, exist_ok=True)


async def apply_migrations(database_url: str) -> None:
    """Bring the schema up to date (creating a SQLite file's folder first). Call before the ORM
    is registered for the app."""
    ensure_sqlite_dir(database_url)
    async with migration_lock(database_url):
        await migrate(config=tortoise_config(database_url))
        await Tortoise.close_connections()
