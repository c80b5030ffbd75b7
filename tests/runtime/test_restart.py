"""Sending survives a restart: leases (`claimed_until`) make the batch in flight the only thing
that can be relayed twice, and concurrent workers on PostgreSQL claim disjoint batches."""

import asyncio
import json
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import flows
from tests.support.client import Api
from tests.support.server import SECRET, client_of, free_port

BATCH = 50
ROOT = Path(__file__).resolve().parents[2]

# A second worker in its own process (tortoise allows one global ORM context per process). On
# SIGTERM uvicorn drains, and the script writes what its capture MTA relayed to a JSON file.
WORKER = """
import asyncio, json, signal, sys
import uvicorn
from server.app import create_app
from server.settings import Settings

url, port, out, secret, batch = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
app = create_app(Settings(_env_file=None, database_url=url, mta_url="capture://",
                          feedback_secret=secret, batch_size=int(batch), engine_tick_seconds=0.05))
server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
signal.signal(signal.SIGTERM, lambda *_: None)  # uvicorn raises it again after its drain
asyncio.run(server.serve())
with open(out, "w") as f:
    json.dump(dict(app.state.runtime.mta.relayed), f)
"""


async def confirmed_delivery(api: Api, n: int) -> str:
    ids = await flows.import_profiles(api, [f"user{i}@example.com" for i in range(n)])
    created = await flows.create_delivery(api, ids)
    await flows.prepare(api, created["id"])
    await flows.confirm(api, created["id"])
    return str(created["id"])


@asynccontextmanager
async def worker_process(database_url: str, tmp_path: Path) -> AsyncIterator[Counter[str]]:
    """A second server process on the same database; yields its relayed counts once stopped."""
    port, out = free_port(), tmp_path / "worker-relayed.json"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WORKER,
        database_url,
        str(port),
        str(out),
        SECRET,
        str(BATCH),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    relayed: Counter[str] = Counter()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(300):
                assert process.returncode is None, "the worker process exited at start-up"
                try:
                    if (await http.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        yield relayed
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 15)
    assert process.returncode == 0
    relayed.update(json.loads(out.read_text()))


async def test_a_restart_during_a_send_resumes_it_repeating_at_most_the_batch_in_flight(
    make_server: Callable[..., Any],
) -> None:
    """The engine is stopped first (as the lifespan does on shutdown) so that the stop lands
    mid-send: uvicorn's graceful drain alone is long enough to finish 2000 messages. The first
    server serves no request after that: tortoise leaks its SQLite connection lock when a task
    is cancelled inside `in_transaction().__aenter__`, and the process is going away anyway."""
    n = 2000
    # A short lease, so that on PostgreSQL the batch left in flight is claimed again soon.
    first = await make_server(batch_size=BATCH, claim_lease_seconds=0.5)
    async with client_of(first) as api:
        delivery_id = await confirmed_delivery(api, n)
    # Poll the in-process MTA: past one batch, the first batch is recorded (processed > 0).
    while len(first.runtime.mta.relayed) <= BATCH:  # noqa: ASYNC110
        await asyncio.sleep(0.001)
    await first.runtime.engine.stop()
    await first.stop()
    stopped_at = len(first.runtime.mta.relayed)
    assert BATCH < stopped_at < n

    second = await make_server(batch_size=BATCH, claim_lease_seconds=0.5)
    async with client_of(second) as api:
        done = await flows.wait_for(api, delivery_id, lambda d: d["status"] == "SENT")
        logs = await flows.logs(api, delivery_id)

    assert done["kpis"]["processed"] == done["kpis"]["toSend"] == n
    assert [log for log in logs if log["status"] == "TO_SEND"] == []
    counts = first.runtime.mta.relayed + second.runtime.mta.relayed
    assert {log["messageId"] for log in logs} == set(counts)
    duplicates = sum(counts.values()) - len(counts)
    print(f"restart after {stopped_at} of {n} relayed: {duplicates} relayed twice")
    assert duplicates <= BATCH


async def test_two_servers_on_one_postgresql_database_relay_each_message_once(
    db_kind: str, make_server: Callable[..., Any], tmp_path: Path
) -> None:
    if db_kind != "postgres":
        pytest.skip("one process owns a SQLite file: concurrent workers need PostgreSQL leases")
    n = 2000
    one = await make_server(batch_size=BATCH)
    async with worker_process(one.settings.database_url, tmp_path) as two, client_of(one) as api:
        delivery_id = await confirmed_delivery(api, n)
        done = await flows.wait_for(api, delivery_id, lambda d: d["status"] == "SENT")
        logs = await flows.logs(api, delivery_id)
    counts = one.runtime.mta.relayed + two
    assert done["kpis"]["processed"] == n
    assert {log["messageId"] for log in logs} == set(counts)
    assert set(counts.values()) == {1}
    print(f"two servers shared the send: {sum(one.runtime.mta.relayed.values())} + {len(two)}")
