"""Scale-out (issue 5): several API processes and workers on one PostgreSQL database, with the
PostgreSQL event bus between them. Live progress crosses processes; a killed worker costs at most
one batch of duplicates and never a skipped recipient."""

import asyncio
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from tortoise import Tortoise

from models.operator import create_operator
from server.db import tortoise_config
from server.engine.leader import asyncpg_dsn
from tests import flows
from tests.client import Api
from tests.conftest import PG_AVAILABLE, PG_URL, ROLES, SECRET, free_port, fresh_database
from tests.smtp_sink import SmtpSink
from tests.test_subscriptions import KPI_FIELDS, PROGRESS
from tests.test_worker import ROOT, Process, log_counts

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_AVAILABLE, reason=f"PostgreSQL not reachable at {PG_URL}"),
]


@asynccontextmanager
async def cluster(
    tmp_path: Path, apis: int, **env: str
) -> AsyncIterator[tuple[list[Api], str, list[Process]]]:
    """`apis` API processes (engine off) and two workers on a fresh database, sharing the
    PostgreSQL event bus; yields a client per API, the database URL and the workers."""
    async with fresh_database("postgres", tmp_path) as url, AsyncExitStack() as stack:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "MTA_"))}
        base.update(
            PYTHONPATH=str(ROOT), DATABASE_URL=url, EVENT_BUS_URL=url, FEEDBACK_SECRET=SECRET,
            ENGINE_TICK_SECONDS="0.05", PROGRESS_INTERVAL_SECONDS="0.05",
        )  # fmt: skip
        base.update(env)
        ports = [free_port() for _ in range(apis)]
        started: list[Process] = []

        async def stop_all() -> None:
            for process in reversed(started):
                await process.stop()

        stack.push_async_callback(stop_all)
        for i, port in enumerate(ports):
            api = Process(
                f"api{i}", ["serve", "--port", str(port)], {**base, "ENGINE_ENABLED": "false"},
                tmp_path,
            )  # fmt: skip
            await api.start()
            started.append(api)
            # The first API applies the migrations: processes started together would race on them.
            await api.wait_for_line("Application startup complete")
        workers = [Process(f"worker{i}", ["worker"], base, tmp_path) for i in (1, 2)]
        for worker in workers:
            await worker.start()
            started.append(worker)
        for worker in workers:
            await worker.wait_for_line("worker started")
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
        yield clients, url, workers


async def created_delivery(api: Api, n: int) -> str:
    """Import `n` new profiles in chunks (an import takes at most 10,000) and create a delivery
    to them."""
    tag, ids = uuid.uuid4().hex[:6], []
    for start in range(0, n, 5000):
        emails = [f"u{i}-{tag}@example.com" for i in range(start, min(n, start + 5000))]
        ids += await flows.import_profiles(api, list(emails))
    return str((await flows.create_delivery(api, ids))["id"])


async def poll(read: Callable[[], Any], done: Callable[[Any], bool], timeout: float) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not done(value := await read()):
        assert asyncio.get_running_loop().time() < deadline, f"timed out; last {value}"
        await asyncio.sleep(0.02)
    return value


async def test_progress_of_a_send_driven_through_one_api_is_live_on_another(
    tmp_path: Path, record_property: Any
) -> None:
    n = 20_000
    started = time.monotonic()
    async with cluster(tmp_path, apis=2, MTA_URL="capture://", BATCH_SIZE="1000") as (
        (api_a, api_b),
        _url,
        _workers,
    ):
        delivery_id = await created_delivery(api_b, n)
        async with api_a.subscribe(PROGRESS, {"id": delivery_id}) as subscription:
            updates = [(await subscription.next())["data"]["deploymentProgress"]]
            assert updates[0]["status"] == "DRAFT"
            await flows.prepare(api_b, delivery_id)
            await flows.confirm(api_b, delivery_id)
            while updates[-1]["status"] != "SENT":  # SENT is not final: feedback may follow
                updates.append((await subscription.next(30))["data"]["deploymentProgress"])
        last = updates[-1]
        assert last["status"] == "SENT"
        assert last["kpis"]["processed"] == last["kpis"]["toSend"] == n
        recount = await api_b.gql(
            "mutation($d: ID!) { computeStats(deliveryId: $d) {" + " ".join(KPI_FIELDS) + "} }",
            {"d": delivery_id},
            as_="starter",
        )
        assert recount["computeStats"] == last["kpis"]
        sending = [u for u in updates if 0 < u["kpis"]["processed"] < n]
        assert len(updates) > 1 and sending, updates  # live progress, not just the end state
    record_property("updates", len(updates))
    print(
        f"\n{n} sent via API B, watched on API A: {len(updates)} updates"
        f" ({len(sending)} mid-send), {time.monotonic() - started:.1f} s"
    )


async def test_a_killed_worker_duplicates_at_most_one_batch_and_skips_no_one(
    tmp_path: Path, record_property: Any
) -> None:
    n, batch = 5000, 200
    started = time.monotonic()
    with SmtpSink() as sink:
        env = {
            "MTA_URL": sink.url(pool=2),
            "PUBLIC_URL": "http://127.0.0.1:1",
            "BATCH_SIZE": str(batch),
            # Long enough that a live worker's batch (about 1 s here) never outlives its lease,
            # short enough that the killed worker's batch is claimed again soon.
            "CLAIM_LEASE_SECONDS": "6",
        }
        async with cluster(tmp_path, apis=1, **env) as ((api,), url, workers):
            delivery_id = await created_delivery(api, n)
            await flows.prepare(api, delivery_id)
            await flows.confirm(api, delivery_id)
            await sink.wait_for(n * 3 // 10, timeout=30)
            assert await workers[0].stop(signal.SIGKILL) == -signal.SIGKILL
            at_kill = len(sink.messages())
            assert at_kill < n
            await poll(lambda: log_counts(url, delivery_id), lambda c: c == {"SENT": n}, timeout=40)
            conn = await asyncpg.connect(asyncpg_dsn(url))
            try:
                rows = await conn.fetch(
                    "SELECT message_id FROM sending_log WHERE delivery_id = $1 AND NOT excluded",
                    int(delivery_id),
                )
            finally:
                await conn.close()
        seen = Counter(m.message_id for m in sink.messages())
    expected = {row["message_id"] for row in rows}
    assert len(expected) == n
    assert expected - set(seen) == set()  # none skipped
    assert set(seen) <= expected
    duplicates = sum(count - 1 for count in seen.values())
    record_property("duplicates", duplicates)
    print(
        f"\nworker1 killed at {at_kill}/{n} in the sink; {duplicates} duplicate relays"
        f" (bound {batch}); {time.monotonic() - started:.1f} s"
    )
    assert duplicates <= batch
