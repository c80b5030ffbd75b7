"""`python -m server worker` and the scheduler's leadership: on PostgreSQL every worker relays
(claims are disjoint) but time-driven work runs only on the holder of an advisory lock."""

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from tortoise import Tortoise
from tortoise.backends.base.executor import EXECUTOR_CACHE

from models.operator import create_operator
from server.db import tortoise_config
from server.engine.leader import Leader, asyncpg_dsn
from tests.conftest import PG_AVAILABLE, PG_URL, ROLES, SECRET, free_port, fresh_database
from tests.support import flows
from tests.support.client import Api

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


class Process:
    def __init__(self, name: str, args: list[str], env: dict[str, str], tmp_path: Path) -> None:
        self.name, self.args, self.env = name, args, env
        self.output = tmp_path / f"{name}.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.output.open("ab") as out:  # a restarted process adds to its log
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "server",
                *self.args,
                cwd=self.output.parent,
                env=self.env,
                stdout=out,
                stderr=out,
            )

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    async def wait_for_line(self, needle: str, timeout: float = 20) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while needle not in self.text():
            assert self.proc is not None and self.proc.returncode is None, self.text()
            assert asyncio.get_running_loop().time() < deadline, self.text()
            await asyncio.sleep(0.05)

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        return await asyncio.wait_for(self.proc.wait(), 20)


@asynccontextmanager
async def processes(
    tmp_path: Path, apis: int, **env: str
) -> AsyncIterator[tuple[list[Api], str, list[Process]]]:
    """`apis` API processes (engine off) and two workers on a fresh database, sharing the
    PostgreSQL event bus, with the capture MTA unless `env` says otherwise; yields a client per
    API, the database URL and the workers."""
    async with (
        fresh_database("postgres", tmp_path) as url,
        processes_on(url, tmp_path, apis, **env) as running,
    ):
        yield running.clients, url, running.workers


@dataclass
class Running:
    clients: list[Api]  # one per API process
    apis: list[Process]
    workers: list[Process]


@asynccontextmanager
async def processes_on(
    url: str, tmp_path: Path, apis: int, workers: int = 2, **env: str
) -> AsyncIterator[Running]:
    """`apis` API processes and `workers` workers on the database at `url`. On PostgreSQL the
    event bus is that database unless `env` names another; with no worker (SQLite: one process
    owns the file) the API process runs the engine."""
    async with AsyncExitStack() as stack:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "MTA_"))}
        base.update(
            PYTHONPATH=str(ROOT), DATABASE_URL=url, MTA_URL="capture://", FEEDBACK_SECRET=SECRET,
            EVENT_BUS_URL=url if url.startswith("postgres") else "memory://",
            ENGINE_TICK_SECONDS="0.05", PROGRESS_INTERVAL_SECONDS="0.05",
        )  # fmt: skip
        base.update(env)
        ports = [free_port() for _ in range(apis)]
        started: list[Process] = []

        async def stop_all() -> None:
            for process in reversed(started):
                await process.stop()

        stack.push_async_callback(stop_all)
        api_env = {**base, "ENGINE_ENABLED": "false"} if workers else base
        apis_ = [
            Process(f"api{i}", ["serve", "--port", str(port)], api_env, tmp_path)
            for i, port in enumerate(ports)
        ]
        workers_ = [Process(f"worker{i + 1}", ["worker"], base, tmp_path) for i in range(workers)]
        # All at once on an empty database: they queue on the migration lock.
        for process in [*apis_, *workers_]:
            await process.start()
            started.append(process)
        for api in apis_:
            await api.wait_for_line("Application startup complete", timeout=40)
        for worker in workers_:
            await worker.wait_for_line("worker started", timeout=40)
        EXECUTOR_CACHE.clear()  # a test process may go from SQLite to PostgreSQL (conftest.py)
        await Tortoise.init(config=tortoise_config(url))
        try:
            tokens = {
                name: (await create_operator(f"{name}-{uuid.uuid4().hex[:6]}", roles))[1]
                for name, roles in ROLES.items()
            }
        finally:
            await Tortoise.close_connections()
        clients = []
        for port in ports:
            base_url = f"http://127.0.0.1:{port}"
            http = await stack.enter_async_context(httpx.AsyncClient(base_url=base_url, timeout=30))
            clients.append(Api(base_url, http, SECRET, tokens))
        yield Running(clients, apis_, workers_)


@asynccontextmanager
async def cluster(tmp_path: Path, **env: str) -> AsyncIterator[tuple[Api, str, list[Process]]]:
    """One API process and two workers: yields its client, the database URL, the workers."""
    async with processes(tmp_path, 1, **env) as ((api,), url, workers):
        yield api, url, workers


async def created_delivery(api: Api, n: int, **extra: Any) -> str:
    """Import `n` new profiles in chunks (an import takes at most 10,000) and create a delivery
    to them."""
    tag, ids = uuid.uuid4().hex[:6], []
    for start in range(0, n, 5000):
        emails = [f"u{i}-{tag}@example.com" for i in range(start, min(n, start + 5000))]
        ids += await flows.import_profiles(api, list(emails))
    return str((await flows.create_delivery(api, ids, **extra))["id"])


async def ready_delivery(api: Api, n: int, **extra: Any) -> str:
    delivery_id = await created_delivery(api, n, **extra)
    await flows.prepare(api, delivery_id)
    await flows.confirm(api, delivery_id)
    return delivery_id


async def log_counts(url: str, delivery_id: str) -> dict[str, int]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await conn.fetch(
            "SELECT status, count(*) AS n FROM sending_log WHERE delivery_id = $1 AND NOT excluded"
            " GROUP BY status",
            int(delivery_id),
        )
    finally:
        await conn.close()
    return {row["status"]: row["n"] for row in rows}


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
        delivery_id = await ready_delivery(api, n)
        while (sent := (await log_counts(url, delivery_id)).get("SENT", 0)) < 500:  # noqa: ASYNC110
            await asyncio.sleep(0.01)  # polling another process's database
        assert await workers[0].stop(signal.SIGKILL) == -signal.SIGKILL
        assert sent < n
        await check_sent_once(api, url, delivery_id, n)
    print(f"worker1 killed after {sent} of {n} sent; worker2 finished with none skipped")
