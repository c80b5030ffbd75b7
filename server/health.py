"""`GET /health`: the process answers and its database can be read.

On SQLite the read goes through a read-only connection of its own. tortoise has one SQLite
connection, and a write transaction (a feedback batch's, a send's records) holds it until it
commits; during the 6,000-subscriber flood, `SELECT 1` queued behind those took 0.3 to 1 s at
p99 while a request that needs no database answered within 0.1 s (bench/RESULTS.md, finding 6).
The file is in WAL mode, so a reader is never held up by a writer: the probe says whether the
database can be read, not whether the server's connection is between two transactions. On
PostgreSQL, a connection of the pool, as every request.

The read is one call to the reader's thread (`execute_fetchall`), not three (execute, fetchone,
the cursor's close): each call's answer comes back through the event loop, two turns of it, and
while 6,000 subscriptions start a turn takes 15 to 30 ms, so the three calls alone held the probe
up to 130 ms, 42 at the median (bench/RESULTS.md, "/health while the 6,000 subscribe").
"""

import contextlib

import aiosqlite

from models.sql import Sql
from server.db import normalise_url

PROBE = "SELECT count(*) FROM sqlite_master"  # reads the file's first page, not just the engine


class Health:
    def __init__(self, database_url: str) -> None:
        url = normalise_url(database_url)
        path = url[len("sqlite://") :].split("?", 1)[0] if url.startswith("sqlite://") else None
        self.path = None if path is None or ":memory:" in path else path
        self.reader: aiosqlite.Connection | None = None

    async def check(self) -> None:
        """Raises if the database cannot be read."""
        if self.path is None:
            await Sql().rows("SELECT 1 AS ok")
            return
        try:
            if self.reader is None:
                self.reader = await aiosqlite.connect(f"file:{self.path}?mode=ro", uri=True)
            await self.reader.execute_fetchall(PROBE)  # one trip to its thread
        except Exception:
            await self.close()  # the next probe opens a new one
            raise

    async def close(self) -> None:
        reader, self.reader = self.reader, None
        if reader is not None:
            with contextlib.suppress(Exception):
                await reader.close()
