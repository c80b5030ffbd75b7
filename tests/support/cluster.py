"""Real processes for the cluster tests: `python -m server serve` and `worker` on one database,
the clients of the API processes, and what the tests read straight from PostgreSQL."""

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from tortoise import Tortoise
from tortoise.backends.base.executor import EXECUTOR_CACHE

from models.operator import create_operator
from server.db import tortoise_config
from server.engine.leader import asyncpg_dsn
from tests.support import ROOT, flows
from tests.support.client import Api
from tests.support.databases import ROLES, fresh_database
from tests.support.server import SECRET, free_port


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


async def poll(read: Callable[[], Any], done: Callable[[Any], bool], timeout: float) -> Any:
    """Read until done: every 0.2 s, as a count of 100,000 logs costs the database 10-40 ms
    that the workers' own updates need on two CPUs."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not done(value := await read()):
        assert asyncio.get_running_loop().time() < deadline, f"timed out; last {value}"
        await asyncio.sleep(0.2)
    return value


async def bulk_delivery(api: Api, url: str, n: int) -> str:
    """A delivery to every profile, after `n` new ones are inserted by SQL on a database that
    has none: importProfiles (tested on its own) would take 10 s or more for 100,000."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(
            "INSERT INTO profile (email, first_name, created_at, updated_at)"
            " SELECT 'u' || i || '@example.com', 'F' || i, now(), now()"
            " FROM generate_series(1, $1) AS i",
            n,
        )
    finally:
        await conn.close()
    created = await flows.create_delivery(api, [], audience={"allProfiles": True})
    return str(created["id"])


async def sent_message_ids(url: str, delivery_id: str) -> set[str]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await conn.fetch(
            "SELECT message_id FROM sending_log WHERE delivery_id = $1 AND NOT excluded",
            int(delivery_id),
        )
    finally:
        await conn.close()
    return {row["message_id"] for row in rows}
