"""The few raw SQL helpers the hot paths need, so the same statement runs on SQLite and PostgreSQL.

Statements are written with `?` placeholders; `Sql.q` renumbers them to `$n` for asyncpg.
"""

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.connection import get_connection

_PLACEHOLDER = re.compile(r"\?")


class Sql:
    """A connection (or the current transaction) plus its dialect's quirks."""

    def __init__(self, conn: BaseDBAsyncClient | None = None) -> None:
        self.conn = conn if conn is not None else get_connection("default")
        self.dialect: str = self.conn.capabilities.dialect
        self.postgres = self.dialect == "postgres"

    def q(self, sql: str) -> str:
        if not self.postgres:
            return sql
        counter = iter(range(1, 1_000_000))
        return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)

    def skip_locked(self) -> str:
        """Row locks that let several workers claim disjoint rows (a no-op on SQLite)."""
        return " FOR UPDATE SKIP LOCKED" if self.postgres else ""

    def for_update(self) -> str:
        return " FOR UPDATE" if self.postgres else ""

    def ts(self, value: datetime | None) -> Any:
        """A timestamp parameter as tortoise stores it (text on SQLite, timestamptz on PG)."""
        if value is None or self.postgres:
            return value
        return _sqlite_ts(value)

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return await self.conn.execute_query_dict(self.q(sql), list(params))

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        count, _ = await self.conn.execute_query(self.q(sql), list(params))
        return count

    async def many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        if params:
            await self.conn.execute_many(self.q(sql), [list(p) for p in params])


@lru_cache(maxsize=4096)
def _sqlite_ts(value: datetime) -> str:
    """Memoised: a feedback batch repeats the same few timestamps many times."""
    return value.astimezone(UTC).isoformat(" ")


def in_list(values: Sequence[Any]) -> str:
    """`(?, ?, ...)` for an IN clause of len(values) parameters."""
    return "(" + ",".join("?" * len(values)) + ")"


def parse_ts(value: Any) -> datetime | None:
    """Read back a timestamp from a raw row (a string on SQLite, a datetime on PostgreSQL)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
