"""What the database holds, as a value that changes whenever a commit may have changed it.

The result cache (graphql_schema/results.py) keeps an answer with the version read before it
was computed, if the version after is the same (the reads saw that one state), and serves it
while the version stays the same. So the version must never repeat for another state:
- SQLite: `total_changes()` of tortoise's one connection (every row this process's writes
  touched: reads and writes share the connection, and a transaction holds its lock, so no
  read sees uncommitted rows) and `PRAGMA data_version` (moved by every commit of any other
  connection: other processes, the CSV upload's own). Both restart with a new connection, so
  the connection object is part of the version (the cache keeps it, so its id is not reused).
- PostgreSQL: the current snapshot (xmin:xmax:in-progress ids). Every commit of a writing
  transaction changes it, and two equal snapshots see exactly the same rows. It covers the
  whole cluster: a write to another database changes it too (a miss, never a stale answer).
"""

from typing import Any

from tortoise.connection import get_connection

SQLITE = "SELECT total_changes(), data_version FROM pragma_data_version"
POSTGRES = "SELECT current_database(), pg_current_snapshot()::text"


async def data_version() -> tuple[Any, ...]:
    client = get_connection("default")
    postgres = client.capabilities.dialect == "postgres"
    _, rows = await client.execute_query(POSTGRES if postgres else SQLITE)
    identity = client if postgres else getattr(client, "_connection", client)
    return (identity, *rows[0])
