"""tortoise's SQLite backend, with transactions that always give their lock back.

tortoise (1.1.9) runs every query on its one SQLite connection under an asyncio lock, and
`in_transaction()` holds that lock from BEGIN to COMMIT. Its context takes the lock, then awaits
the BEGIN: when that await fails (a BEGIN refused, or the task cancelled there, which is what
stopping the work of a request whose client went away does) `__aexit__` never runs, and the lock
stays taken for good: every later query of the process waits forever, `/health` included.

Here a failed start releases the lock and restores the task's context, after rolling back in
case the BEGIN ran anyway (aiosqlite runs it on its own thread whether or not the caller still
waits): otherwise the next queries would run in that transaction, uncommitted. Selected by
`server.db.tortoise_config` as the engine for sqlite:// URLs.
"""

import contextlib
from typing import Any

from tortoise.backends.base.client import TransactionContext
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
)
from tortoise.connection import get_connections


class LockSafeTransaction(SqliteTransactionContext):
    async def __aenter__(self) -> Any:
        await self._trxlock.acquire()
        token = None
        try:
            await self.ensure_connection()
            token = get_connections().set(self.connection_name, self.connection)
            await self.connection.begin()
        except BaseException:
            try:
                if token is not None:
                    get_connections().reset(token)
                raw = self.connection._connection
                if raw is not None:
                    with contextlib.suppress(Exception):
                        await raw.rollback()
            finally:
                self._trxlock.release()
            raise
        self.token = token
        return self.connection


class LockSafeSqliteClient(SqliteClient):
    def _in_transaction(self) -> TransactionContext:
        return LockSafeTransaction(SqliteTransactionWrapper(self), self._lock)


client_class = LockSafeSqliteClient  # what tortoise looks for in an engine module
