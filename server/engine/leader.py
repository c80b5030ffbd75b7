"""Leadership for time-driven work: on PostgreSQL several workers run the dispatcher (claims are
safe across processes), but scheduled starts, recurring occurrences, expiries and the stats
refresh should run once per cluster. The leader is the worker holding a session-level advisory
lock on one dedicated connection: if that connection (or the process) dies, PostgreSQL releases
the lock and another worker takes it at its next attempt. On SQLite there is one process, which
always leads."""

import logging
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from server.db import asyncpg_dsn

__all__ = ["LOCK_KEY", "Leader", "asyncpg_dsn"]

log = logging.getLogger(__name__)

LOCK_KEY = 0x5C4ED01E  # pg_try_advisory_lock(bigint): one constant for the scheduler


class Leader:
    """`await holds()` once per tick: True while this process leads. A follower tries the lock
    only every `retry_ticks` calls, so N workers do not hammer the database."""

    def __init__(self, database_url: str, *, retry_ticks: int = 4) -> None:
        self.single = database_url.startswith("sqlite")
        self.dsn = asyncpg_dsn(database_url)
        self.retry_ticks = retry_ticks
        self.leading = self.single
        self._conn: Any = None  # asyncpg.Connection (asyncpg ships no type hints)
        self._countdown = 0

    @property
    def backend_pid(self) -> int | None:
        return None if self._conn is None else self._conn.get_server_pid()

    async def holds(self) -> bool:
        if self.single:
            return True
        if self.leading:
            try:
                assert self._conn is not None
                await self._conn.fetchval("SELECT 1", timeout=5)
                return True
            except Exception:  # any failure: the session (and so the lock) cannot be trusted
                log.warning("scheduler leadership lost: its database connection is gone")
                await self._drop()
                return False
        if self._countdown > 0:
            self._countdown -= 1
            return False
        self._countdown = self.retry_ticks - 1
        try:
            if self._conn is None:
                self._conn = await asyncpg.connect(self.dsn, timeout=5)
            self.leading = bool(
                await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY, timeout=5)
            )
        except Exception:
            log.warning("scheduler leadership: cannot reach the database", exc_info=True)
            await self._drop()
            return False
        if self.leading:
            log.info("this worker now runs the scheduler (advisory lock %s)", LOCK_KEY)
        return self.leading

    async def _drop(self) -> None:
        self.leading = False
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()

    async def close(self) -> None:
        """Closing the session releases the lock at once for the next worker."""
        conn, self._conn = self._conn, None
        self.leading = self.single
        if conn is not None:
            try:
                await conn.close(timeout=5)
            except Exception:
                conn.terminate()
