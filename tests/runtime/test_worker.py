"""`python -m server worker` and the scheduler's leadership: on PostgreSQL every worker relays
(claims are disjoint) but time-driven work runs only on the holder of an advisory lock."""

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from server.engine.leader import Leader, asyncpg_dsn
from tests.support import flows
from tests.support.client import Api
from tests.support.cluster import (
    bulk_delivery,
    cluster,
    log_counts,
    ready_delivery,
)
from tests.support.databases import PG_AVAILABLE, PG_URL, fresh_database

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_AVAILABLE, reason=f"PostgreSQL not reachable at {PG_URL}"),
]
ROOT = Path(__file__).resolve().parents[2]
RETRY = 4  # Leader's default retry_ticks


async def lead_within(leader: Leader, calls: int) -> bool:
    for _ in range(calls):
        if await leader.holds():
            return True
    return False


async def test_one_leader_at_a_time_and_a_dead_leaders_lock_passes_to_the_other(
    tmp_path: Path,
) -> None:
    async with fresh_database("postgres", tmp_path) as url:
        one, two = Leader(url), Leader(url)
        admin = await asyncpg.connect(asyncpg_dsn(url))
        try:
            assert await one.holds() and not await two.holds()
            for _ in range(2 * RETRY):  # the follower retries, and fails while the lock is held
                assert await one.holds() and not await two.holds()

            await admin.execute("SELECT pg_terminate_backend($1)", one.backend_pid)
            assert not await one.holds()  # it notices at its next tick
            assert await lead_within(two, RETRY + 1)
            for _ in range(2 * RETRY):
                assert not await one.holds() and await two.holds()

            await two.close()  # a clean stop releases the lock at once
            assert await lead_within(one, RETRY + 1)
        finally:
            await one.close()
            await two.close()
            await admin.close()


async def test_on_sqlite_the_single_process_always_leads(tmp_path: Path) -> None:
    leader = Leader(f"sqlite://{tmp_path}/x.sqlite3")
    assert await leader.holds() and await leader.holds()
    await leader.close()


async def test_migrate_run_by_several_processes_at_once_applies_once_and_all_succeed(
    tmp_path: Path,
) -> None:
    async with fresh_database("postgres", tmp_path) as url:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": url}
        runs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "server",
                "migrate",
                env=env,
                cwd=tmp_path,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            for _ in range(4)
        ]
        outputs = [(await asyncio.wait_for(run.communicate(), 60))[0].decode() for run in runs]
        assert [run.returncode for run in runs] == [0] * 4, outputs
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            applied = await conn.fetch("SELECT name FROM tortoise_migrations ORDER BY id")
        finally:
            await conn.close()
        names = [row["name"] for row in applied]
        assert names and len(names) == len(set(names)), names


# --- end to end: one API process (ENGINE_ENABLED=false) and two worker processes -------------


async def check_sent_once(api: Api, url: str, delivery_id: str, n: int) -> dict[str, Any]:
    done = await flows.wait_for(api, delivery_id, lambda d: d["status"] == "SENT", timeout=40)
    assert done["kpis"]["toSend"] == done["kpis"]["processed"] == done["kpis"]["sent"] == n
    assert await log_counts(url, delivery_id) == {"SENT": n}
    recount = await api.gql(
        "mutation($d: ID!) { computeStats(deliveryId: $d) { toSend processed sent failed } }",
        {"d": delivery_id},
        as_="starter",
    )
    kpis = done["kpis"]
    assert recount["computeStats"] == {k: kpis[k] for k in recount["computeStats"]}
    return done


async def test_an_api_and_two_workers_send_each_message_once_and_start_a_schedule_once(
    tmp_path: Path,
) -> None:
    n = 2000
    async with cluster(tmp_path, BATCH_SIZE="100") as (api, url, workers):
        now = await check_sent_once(api, url, await ready_delivery(api, n), n)
        at = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
        scheduled = await ready_delivery(api, 50, scheduledAt=at)
        await check_sent_once(api, url, scheduled, 50)
        # Read before the shutdown: when one worker stops first, the other takes the lead.
        leaders = [w.text().count("now runs the scheduler") for w in workers]
    for worker in workers:  # SIGTERM: the batch in flight is finished, then a clean exit
        assert worker.proc is not None and worker.proc.returncode == 0, worker.text()
        assert "worker stopped" in worker.text()
    assert sum(leaders) == 1, leaders  # nobody died: the first leader kept the lock
    print(f"{n} relayed by two workers; scheduler led by worker{leaders.index(1) + 1}", now["kpis"])


async def test_a_killed_worker_leaves_the_rest_of_a_send_to_the_other(tmp_path: Path) -> None:
    """SIGKILL mid-send: the batch the dead worker claimed comes back when its lease ends."""
    n = 20_000
    async with cluster(tmp_path, BATCH_SIZE="500", CLAIM_LEASE_SECONDS="1") as (api, url, workers):
        # 20,000 profiles by SQL: importProfiles (tested on its own) takes seconds for as many.
        delivery_id = await bulk_delivery(api, url, n)
        await flows.prepare(api, delivery_id)
        await flows.confirm(api, delivery_id)
        while (sent := (await log_counts(url, delivery_id)).get("SENT", 0)) < 500:  # noqa: ASYNC110
            await asyncio.sleep(0.01)  # polling another process's database
        assert await workers[0].stop(signal.SIGKILL) == -signal.SIGKILL
        assert sent < n
        await check_sent_once(api, url, delivery_id, n)
    print(f"worker1 killed after {sent} of {n} sent; worker2 finished with none skipped")
