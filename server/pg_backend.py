"""tortoise's asyncpg backend, with transactions that always give their connection back.

tortoise (1.1.9) runs `in_transaction()` on a pooled connection that it puts in the task's
context (a contextvar) so that every query of the block uses it. Two failures leave it there
for good: a BEGIN that fails (the connection died between the pool and the BEGIN: `__aexit__`
never runs) and a pool release that raises after the COMMIT or ROLLBACK (asyncpg's reset of a
connection that PostgreSQL just closed, "another operation is in progress": the context is reset
after the release, so not at all). From then on every query and transaction of that task, and
of every task it starts, goes to the dead connection ("connection is closed", "connection has
been released back to the pool") however long the database has been back: a worker's
dispatcher, one long-lived task, could no longer record anything after a PostgreSQL restart.

Here the context is restored first, whatever fails, and the connection always goes back (asyncpg
terminates one whose reset fails, and the pool opens a new one). Selected by
`server.db.tortoise_config` as the engine for postgres:// URLs.
"""

import logging
from typing import Any

from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import TransactionContext, TransactionContextPooled
from tortoise.connection import get_connections
from tortoise.exceptions import TransactionManagementError

log = logging.getLogger(__name__)


class PooledTransaction(TransactionContextPooled):
    async def __aenter__(self) -> Any:
        await self.ensure_connection()
        pool = self.client._parent._pool
        self.client._connection = await pool.acquire()
        self.token = get_connections().set(self.connection_name, self.client)
        try:
            await self.client.begin()
        except BaseException:
            get_connections().reset(self.token)
            await self._give_back()
            raise
        return self.client

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        try:
            if not self.client._finalized:
                if exc_type is None:
                    await self.client.commit()
                elif exc_type is not TransactionManagementError:
                    await self.client.rollback()
        finally:
            get_connections().reset(self.token)
            await self._give_back()

    async def _give_back(self) -> None:
        """Release the connection. A release that fails has already terminated it (asyncpg):
        the transaction's outcome stands, so that failure is only logged."""
        pool = self.client._parent._pool
        if pool is None:
            return
        try:
            await pool.release(self.client._connection)
        except Exception as error:
            log.warning("a database connection could not be reset; it is closed (%s)", error)


class ResilientAsyncpgClient(AsyncpgDBClient):
    def _in_transaction(self) -> TransactionContext:
        return PooledTransaction(TransactionWrapper(self), self._pool_init_lock)


client_class = ResilientAsyncpgClient  # what tortoise looks for in an engine module
