"""Scale-out benchmark: one API process and N sending workers on one PostgreSQL database.

    .venv/bin/python bench/cluster.py                               # 100,000 recipients, 1,2,4
    .venv/bin/python bench/cluster.py --workers 1,2 --recipients 50000
    .venv/bin/python bench/cluster.py --mta-url 'simulator://?delay=0&seed=1'

For each worker count, on a fresh PostgreSQL database: `python -m server serve` with
ENGINE_ENABLED=false (the API only) and N `python -m server worker` processes, all with
EVENT_BUS_URL on the same database and BATCH_SIZE 1000 (default). The profiles are inserted by SQL
(not timed: the import is not what scales out); the delivery is created and prepared through
GraphQL, then the time runs from the confirmSend request to status SENT, read from the delivery's
own `sentAt` (the engine's clock, same machine) and checked by polling `delivery` every 50 ms.

Baseline, same run, on its own fresh database with the server's schema (migrations applied):
raw asyncpg doing, for the same number of logs in batches of the same size, what the engine
must do at least per batch: the claim (the engine's own UPDATE ... WHERE id IN (SELECT ...
FOR UPDATE SKIP LOCKED) RETURNING), then in one transaction the delivery row locked, the claimed
logs marked SENT and the delivery's counters added to. One connection, one process, no MTA.
"""

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import harness
import httpx
from harness import Client, command_line, cpu_seconds, environment, operator_token, pg, pg_database

BODY = '<p>Hello {{firstName}}</p><a href="https://example.com/offer">Offer</a>'


# ---- the baseline --------------------------------------------------------------------------

CLAIM = (
    "UPDATE sending_log SET claimed_until = $1,"
    " message_id = COALESCE(message_id, $2 || CAST(id AS TEXT) || $3)"
    " WHERE id IN (SELECT id FROM sending_log WHERE delivery_id = $4 AND status = 'TO_SEND'"
    " AND EXISTS (SELECT 1 FROM delivery WHERE id = $4 AND status = 'IN_PROGRESS')"
    " AND (claimed_until IS NULL OR claimed_until < $5) ORDER BY id LIMIT $6"
    " FOR UPDATE SKIP LOCKED) RETURNING id, address, profile_id, message_id, retries"
)


async def baseline(n: int, batch: int) -> float:
    """Seconds for raw asyncpg to claim and record `n` logs in batches of `batch`."""
    from tortoise import Tortoise

    from models.delivery import Delivery
    from models.enums import Channel, DeliveryStatus, FeedbackMode
    from server.db import apply_migrations, tortoise_config

    async with pg_database("cbench") as url:
        await apply_migrations(url)
        await Tortoise.init(config=tortoise_config(url))
        try:
            delivery = await Delivery.create(
                label="baseline",
                channel=Channel.EMAIL,
                body=BODY,
                feedback_mode=FeedbackMode.LEGACY,
                validity_period=86400,
                status=DeliveryStatus.IN_PROGRESS,
                to_send=n,
            )
        finally:
            await Tortoise.close_connections()
        conn = await asyncpg.connect(pg(url))
        try:
            await conn.execute(
                "INSERT INTO sending_log (delivery_id, address, status, excluded, retries)"
                " SELECT $1, 'user' || g || '@example.com', 'TO_SEND', FALSE, 0"
                " FROM generate_series(1, $2) g",
                delivery.id,
                n,
            )
            await conn.execute("VACUUM ANALYZE sending_log")
            start = time.perf_counter()
            done = 0
            while True:
                now = int(time.time() * 1000)
                rows = await conn.fetch(
                    CLAIM, now + 60_000, f"d{delivery.id}.", "@bench.local", delivery.id, now, batch
                )
                if not rows:
                    break
                ids = [r["id"] for r in rows]
                async with conn.transaction():
                    await conn.execute(
                        "SELECT id FROM delivery WHERE id = $1 FOR UPDATE", delivery.id
                    )
                    count = int(
                        (
                            await conn.execute(
                                "UPDATE sending_log SET status = 'SENT', claimed_until = NULL,"
                                " failure_type = NULL, failure_reason = NULL"
                                " WHERE id = ANY($1::int[]) AND status = 'TO_SEND'",
                                ids,
                            )
                        ).split()[-1]
                    )
                    await conn.execute(
                        "UPDATE delivery SET processed = processed + $1, sent = sent + $1"
                        " WHERE id = $2",
                        count,
                        delivery.id,
                    )
                done += count
            elapsed = time.perf_counter() - start
        finally:
            await conn.close()
    assert done == n, (done, n)
    return elapsed


# ---- the cluster ---------------------------------------------------------------------------


@dataclass
class Run:
    workers: int
    to_send: int
    prepare_s: float
    confirm_request_s: float
    processed_seen_s: float  # confirmSend -> a poll saw processed == toSend
    sent_s: float  # confirmSend -> sentAt (the engine's own timestamp)
    sent_seen_s: float  # confirmSend -> a poll saw SENT
    api_cpu_s: float
    workers_cpu_s: float
    machine_cpu_s: float  # every process on the machine: PostgreSQL, and anything else running

    @property
    def rate(self) -> float:
        return self.to_send / self.sent_s


@contextlib.contextmanager
def workers(
    env: dict[str, str], workdir: Path, count: int
) -> Iterator[list["subprocess.Popen[bytes]"]]:
    """`count` worker processes, returned once each has logged 'worker started'."""
    procs: list[subprocess.Popen[bytes]] = []
    logs = [workdir / f"worker{i}.log" for i in range(count)]
    try:
        for path in logs:
            with path.open("wb") as log:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "server", "worker"],
                        cwd=workdir,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        deadline = time.monotonic() + 60
        while not all("worker started" in p.read_text(errors="replace") for p in logs):
            if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                raise RuntimeError("a worker did not start:\n" + logs[0].read_text()[-2000:])
            time.sleep(0.05)
        yield procs
    finally:
        for p in procs:
            p.terminate()
        for p, path in zip(procs, logs, strict=False):
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
            if p.returncode not in (0, -15):
                print(f"--- {path.name} (exit {p.returncode}):\n{path.read_text()[-2000:]}")


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent so far: PostgreSQL, and any other load (noise)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def epoch(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


async def cluster_run(n: int, count: int, mta_url: str, batch: int) -> Run:
    async with pg_database("cbench") as url:
        with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp_name:
            workdir = Path(tmp_name)
            env = environment(
                DATABASE_URL=url,
                EVENT_BUS_URL=url,
                MTA_URL=mta_url,
                FEEDBACK_SECRET=uuid.uuid4().hex,
                BATCH_SIZE=str(batch),
                ENGINE_TICK_SECONDS="0.05",
                PROGRESS_INTERVAL_SECONDS="0.1",
            )
            token = operator_token(env, workdir)  # also applies the migrations
            conn = await asyncpg.connect(pg(url))
            try:
                await conn.execute(
                    "INSERT INTO profile (email, first_name, created_at, updated_at)"
                    " SELECT 'user' || g || '@example.com', 'F' || g, now(), now()"
                    " FROM generate_series(1, $1) g",
                    n,
                )
                await conn.execute("VACUUM ANALYZE profile")
            finally:
                await conn.close()
            api_env = {**env, "ENGINE_ENABLED": "false"}
            with harness.running_server(api_env, workdir, "api.log") as api:
                async with httpx.AsyncClient(base_url=api.base_url, timeout=600) as http:
                    client = Client(http, token)
                    data = await client.gql(
                        "mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) { id } }",
                        {
                            "i": {
                                "label": f"cluster {n} x {count}",
                                "channel": "EMAIL",
                                "subject": "Hello",
                                "body": BODY,
                                "audience": {"allProfiles": True},
                            }
                        },
                    )
                    delivery_id = data["createDelivery"]["id"]
                    start = time.perf_counter()
                    data = await client.gql(
                        "mutation($id: ID!) { prepareDelivery(id: $id)"
                        " { status kpis { toSend } } }",
                        {"id": delivery_id},
                    )
                    prepare_s = time.perf_counter() - start
                    to_send = data["prepareDelivery"]["kpis"]["toSend"]
                    assert data["prepareDelivery"]["status"] == "READY" and to_send == n, data
                    with workers(env, workdir, count) as procs:
                        cpu0 = [cpu_seconds(p.pid) for p in procs]
                        api_cpu0 = api.cpu_seconds()
                        machine0 = machine_busy_seconds()
                        t0_wall, t0 = time.time(), time.perf_counter()
                        await client.gql(
                            "mutation($id: ID!) { confirmSend(deliveryId: $id) { status } }",
                            {"id": delivery_id},
                        )
                        confirm_request_s = time.perf_counter() - t0
                        processed_seen = None
                        while True:
                            d = (
                                await client.gql(
                                    "query($id: ID!) { delivery(id: $id) { status sentAt"
                                    " kpis { processed toSend } } }",
                                    {"id": delivery_id},
                                )
                            )["delivery"]
                            seen = time.perf_counter() - t0
                            kpis = d["kpis"]
                            if processed_seen is None and kpis["processed"] == kpis["toSend"]:
                                processed_seen = seen
                            if d["status"] == "SENT":
                                break
                            if d["status"] not in ("READY", "IN_PROGRESS"):
                                raise RuntimeError(f"unexpected delivery: {d}")
                            if seen > 1800:
                                raise RuntimeError(f"not SENT after 30 min: {d}")
                            await asyncio.sleep(0.05)
                        workers_cpu = sum(
                            cpu_seconds(p.pid) - c for p, c in zip(procs, cpu0, strict=True)
                        )
                        api_cpu = api.cpu_seconds() - api_cpu0
                        machine_cpu = machine_busy_seconds() - machine0
            assert processed_seen is not None
            return Run(
                workers=count,
                to_send=to_send,
                prepare_s=prepare_s,
                confirm_request_s=confirm_request_s,
                processed_seen_s=processed_seen,
                sent_s=epoch(d["sentAt"]) - t0_wall,
                sent_seen_s=seen,
                api_cpu_s=api_cpu,
                workers_cpu_s=workers_cpu,
                machine_cpu_s=machine_cpu,
            )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--workers", default="1,2,4", help="worker counts, e.g. 1,2,4")
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument(
        "--mta-url", default="capture://", help="capture:// (relay only) or simulator://?..."
    )
    args = parser.parse_args()
    counts = [int(c) for c in args.workers.split(",") if c.strip()]
    n, batch = args.recipients, args.batch_size
    cpus = os.cpu_count() or 1
    print(f"machine: {harness.machine()}; PostgreSQL on the same machine")
    print(f"command: {command_line()}")
    if any(c > cpus for c in counts):
        print(
            f"note: this machine has {cpus} CPUs, shared by the API, the workers and PostgreSQL;"
            f" more workers than CPUs is not expected to scale"
        )
    base_s = await baseline(n, batch)
    print(
        f"baseline: {base_s:.2f} s = {n / base_s:,.0f} logs/s  (raw asyncpg, one connection:"
        f" the engine's claim UPDATE ... RETURNING + lock delivery, mark {batch} logs SENT,"
        " add to counters, per batch)"
    )
    sys.stdout.flush()
    runs = []
    for count in counts:
        run = await cluster_run(n, count, args.mta_url, batch)
        runs.append(run)
        print(
            f"{count} worker(s): confirmSend -> SENT {run.sent_s:.2f} s (sentAt; poll saw it at"
            f" {run.sent_seen_s:.2f} s, processed == toSend at {run.processed_seen_s:.2f} s)"
            f" = {run.rate:,.0f} msgs/s; prepare {run.prepare_s:.2f} s;"
            f" CPU workers {run.workers_cpu_s:.1f} s, API {run.api_cpu_s:.1f} s,"
            f" whole machine {run.machine_cpu_s:.1f} s of {run.sent_seen_s * cpus:.1f} s"
        )
        sys.stdout.flush()
    print(f"\n{n:,} recipients, PostgreSQL, MTA {args.mta_url}, batch {batch}, {cpus} CPUs")
    print(
        "| workers | to SENT s | msgs/s | worker CPU s | API CPU s | machine CPU s"
        " | baseline s | ratio |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        print(
            f"| {run.workers} | {run.sent_s:.2f} | {run.rate:,.0f} | {run.workers_cpu_s:.1f} |"
            f" {run.api_cpu_s:.1f} | {run.machine_cpu_s:.1f} | {base_s:.2f} |"
            f" {run.sent_s / base_s:.1f}x |"
        )


if __name__ == "__main__":
    asyncio.run(main())
