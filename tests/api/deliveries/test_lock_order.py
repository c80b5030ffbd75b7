"""An aggregation period's execution and the relay's record of its occurrence, at the same
moment on PostgreSQL: both lock the occurrence's row before its recurring delivery's, so
neither waits for the other in a cycle (PostgreSQL would end one with a deadlock error after a
second, and the relay would try its record again).

The relay's side is played by a connection of the test's own, doing what models/relay.py's
record does: lock the occurrence, then move its counters and its parent's in one UPDATE."""

import asyncio
from datetime import datetime

import asyncpg
import pytest

from models.lifecycle import spawn_occurrences
from server.engine.leader import asyncpg_dsn
from tests.support import flows
from tests.support.client import Api
from tests.support.server import RunningServer

pytestmark = pytest.mark.parametrize(
    "db_kind", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)

OCCURRENCES = "{ deliveries(first: 10) { edges { node { id parentId } } } }"


async def occurrence_of(api: Api, parent_id: str) -> str:
    edges = (await api.gql(OCCURRENCES))["deliveries"]["edges"]
    [found] = [e["node"]["id"] for e in edges if e["node"]["parentId"] == parent_id]
    return str(found)


async def waiting_for_a_lock(conn: asyncpg.Connection) -> None:
    """Until another backend waits for a row lock (the spawn, blocked behind the record)."""
    for _ in range(400):
        if await conn.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"):
            return
        await asyncio.sleep(0.025)
    raise AssertionError("the spawn never waited for the occurrence's lock")


async def test_a_period_joined_while_its_occurrence_is_recorded_does_not_deadlock(
    api: Api, server: RunningServer
) -> None:
    [profile] = await flows.import_profiles(api, ["lock1@example.com"])
    parent = await flows.create_delivery(
        api,
        [profile],
        scheduledAt="2027-06-01T00:00:00",
        timeZone="Europe/Madrid",
        recurrence={"rule": "FREQ=HOURLY;INTERVAL=12;BYMINUTE=0", "aggregationPeriod": "DAY"},
    )
    await flows.prepare(api, parent["id"])
    await flows.confirm(api, parent["id"])
    await server.runtime.engine.scheduler.work(datetime.fromisoformat("2027-05-31T22:00:00+00:00"))
    occurrence = await occurrence_of(api, parent["id"])
    await flows.wait_for(api, occurrence, lambda d: d["status"] == "SENT")

    record = await asyncpg.connect(asyncpg_dsn(server.settings.database_url))
    try:
        async with record.transaction():
            await record.execute(
                "SELECT id FROM delivery WHERE id = $1 FOR UPDATE", int(occurrence)
            )
            spawn = asyncio.create_task(
                spawn_occurrences(datetime.fromisoformat("2027-06-01T10:00:00+00:00"))
            )
            await waiting_for_a_lock(record)
            # the record's counters: the occurrence's and its parent's, in one statement
            await record.execute(
                "UPDATE delivery SET sent = sent + 0 WHERE id IN ($1, $2)",
                int(occurrence),
                int(parent["id"]),
            )
        changed = await asyncio.wait_for(spawn, 30)
    finally:
        await record.close()
    assert int(occurrence) in changed  # the execution joined the period's occurrence
    joined = await flows.wait_for(api, occurrence, lambda d: d["status"] == "SENT")
    assert joined["kpis"]["toSend"] == 1  # its one recipient, a DUPLICATE the second time
