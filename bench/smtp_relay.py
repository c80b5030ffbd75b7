"""Benchmark of the SMTP relay: confirmSend -> every message received by a real SMTP server.

    .venv/bin/python bench/smtp_relay.py --messages 5000
    .venv/bin/python bench/smtp_relay.py --messages 5000 --pool 1,4,8 --batch-size 1000

1. A sink: aiosmtpd in a separate process that accepts every message, counts it (a counter
   shared with this process) and discards it.
2. The baseline, measured first: N messages of the same shape, built before the clock starts,
   sent by a plain aiosmtplib loop (`sendmail`, one transaction each) over one connection.
3. The real server for each pool size: `python -m server serve` in a subprocess on a fresh
   SQLite file with MTA_URL=smtp://127.0.0.1:PORT?pool=P; N profiles imported and a delivery
   created, prepared and confirmed through GraphQL. The time runs from the confirmSend request
   until the sink has counted all N messages; the rate is N / that time.

CPU seconds of the server and the sink processes over each window come from /proc.
"""

import argparse
import asyncio
import multiprocessing
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
from harness import (
    Client,
    ServerProcess,
    command_line,
    cpu_seconds,
    environment,
    free_port,
    import_profiles,
    machine,
    operator_token,
    running_server,
)

from models.relay import Claimed
from server.mta.compose import Composer

SUBJECT = "Hello {{firstName}}"
BODY = (
    "<html><body><h1>Hello {{firstName}}</h1>"
    '<p>Our <a href="https://example.com/offer">spring offer</a> is here, and the'
    ' <a href="https://example.com/news">news</a> too.</p>'
    '<p><a href="{{unsubscribeUrl}}">Unsubscribe</a></p></body></html>'
)
MAIL_FROM = "Bench <bench@example.org>"


# ---- the sink, in its own process --------------------------------------------------------------


def run_sink(port: int, counter: "Synchronized[int]", ready: Any, stop: Any) -> None:
    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with counter.get_lock():
                counter.value += 1
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port, server_hostname="sink")
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


@dataclass
class Sink:
    port: int
    counter: "Synchronized[int]"
    process: Any

    async def wait_for(self, count: int) -> float:
        """Poll (every 5 ms) until the sink counted `count` messages; returns that time."""
        deadline = time.perf_counter() + 600
        while self.counter.value < count:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"the sink got {self.counter.value} of {count} messages")
            await asyncio.sleep(0.005)
        return time.perf_counter()


# ---- the baseline ------------------------------------------------------------------------------


def prebuilt(n: int) -> list[tuple[str, bytes]]:
    composer = Composer("http://127.0.0.1:8000", "bench-key", MAIL_FROM)
    email = composer.compiled(1, SUBJECT, BODY)
    out = []
    for i in range(1, n + 1):
        address = f"user{i}@example.com"
        claimed = Claimed(i, address, i, f"d1.{i}@delivery.local")
        values = {"firstName": f"F{i}", "lastName": None, "email": address, "phone": None}
        out.append((address, composer.message(email, 1, claimed, values)))
    return out


async def baseline(sink: Sink, n: int) -> tuple[float, float]:
    """Seconds to send n pre-built messages over one connection, and the sink's CPU seconds."""
    messages = prebuilt(n)
    start_count = sink.counter.value
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port, start_tls=False) as smtp:
        cpu0 = cpu_seconds(sink.process.pid)
        t0 = time.perf_counter()
        for address, data in messages:
            await smtp.sendmail("bench@example.org", [address], data)
        t1 = await sink.wait_for(start_count + n)
        return t1 - t0, cpu_seconds(sink.process.pid) - cpu0


# ---- the real server ---------------------------------------------------------------------------


@dataclass
class ServerRun:
    pool: int
    relay_s: float
    sent_s: float
    server_cpu_s: float
    sink_cpu_s: float
    prepare_s: float


async def server_run(sink: Sink, n: int, pool: int, batch: int, mode: str) -> ServerRun:
    with tempfile.TemporaryDirectory(prefix="bench-smtp-") as tmp_name:
        tmp = Path(tmp_name)
        env = environment(
            DATABASE_URL=f"sqlite://{tmp}/bench.sqlite3",
            MTA_URL=f"smtp://127.0.0.1:{sink.port}?pool={pool}&starttls=off",
            FEEDBACK_SECRET=uuid.uuid4().hex,
            FEEDBACK_MODE=mode,
            BATCH_SIZE=str(batch),
            ENGINE_TICK_SECONDS="0.05",
            MAIL_FROM=MAIL_FROM,
        )
        token = operator_token(env, tmp)
        with running_server(env, tmp) as server:
            return await drive(sink, server, token, n, pool)


async def drive(sink: Sink, server: ServerProcess, token: str, n: int, pool: int) -> ServerRun:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=600) as http:
        client = Client(http, token)
        await import_profiles(
            client, [{"email": f"user{i}@example.com", "firstName": f"F{i}"} for i in range(n)]
        )
        data = await client.gql(
            "mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) { id } }",
            {
                "i": {
                    "label": f"smtp bench {n}",
                    "channel": "EMAIL",
                    "subject": SUBJECT,
                    "body": BODY,
                    "audience": {"allProfiles": True},
                }
            },
        )
        delivery_id = data["createDelivery"]["id"]
        t = time.perf_counter()
        data = await client.gql(
            "mutation($id: ID!) { prepareDelivery(id: $id) { status kpis { toSend } } }",
            {"id": delivery_id},
        )
        prepare_s = time.perf_counter() - t
        assert data["prepareDelivery"]["kpis"]["toSend"] == n, data

        start_count = sink.counter.value
        server_cpu0, sink_cpu0 = server.cpu_seconds(), cpu_seconds(sink.process.pid)
        t0 = time.perf_counter()
        await client.gql(
            "mutation($id: ID!) { confirmSend(deliveryId: $id) { status } }", {"id": delivery_id}
        )
        t1 = await sink.wait_for(start_count + n)
        server_cpu, sink_cpu = server.cpu_seconds(), cpu_seconds(sink.process.pid)
        while True:
            data = await client.gql(
                "query($id: ID!) { delivery(id: $id) { status kpis { processed } } }",
                {"id": delivery_id},
            )
            if data["delivery"]["status"] == "SENT":
                break
            if data["delivery"]["status"] not in ("IN_PROGRESS",):
                raise RuntimeError(f"unexpected: {data}")
            await asyncio.sleep(0.01)
        t2 = time.perf_counter()
        assert data["delivery"]["kpis"]["processed"] == n, data
        await asyncio.sleep(0.2)
        if sink.counter.value != start_count + n:
            raise RuntimeError(f"the sink got {sink.counter.value - start_count} of {n}")
        return ServerRun(
            pool, t1 - t0, t2 - t0, server_cpu - server_cpu0, sink_cpu - sink_cpu0, prepare_s
        )


# ---- the command -------------------------------------------------------------------------------


def start_sink() -> tuple[Sink, Callable[[], None]]:
    context = multiprocessing.get_context("spawn")
    counter = context.Value("q", 0)
    ready, stop = context.Event(), context.Event()
    port = free_port()
    process = context.Process(target=run_sink, args=(port, counter, ready, stop), daemon=True)
    process.start()
    if not ready.wait(30):
        raise RuntimeError("the sink did not start")

    def close() -> None:
        stop.set()
        process.join(10)

    return Sink(port, counter, process), close


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--pool", default="4", help="one pool size, or several: 1,4,8")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--feedback-mode", choices=["LEGACY", "EFS"], default="LEGACY")
    args = parser.parse_args()
    n = args.messages
    print(
        f"machine: {machine()}, Python {platform.python_version()},"
        f" aiosmtplib {aiosmtplib.__version__}"
    )
    print(f"command: {command_line()}")
    sink, close = start_sink()
    try:
        base_s, base_sink_cpu = await baseline(sink, n)
        print(
            f"baseline: {n} pre-built messages, aiosmtplib sendmail loop, 1 connection:"
            f" {base_s:.2f} s = {n / base_s:,.0f} msgs/s (sink CPU {base_sink_cpu:.2f} s)"
        )
        for pool in [int(p) for p in str(args.pool).split(",") if p.strip()]:
            run = await server_run(sink, n, pool, args.batch_size, args.feedback_mode)
            rate = n / run.relay_s
            print(
                f"server:   pool={pool}, batch {args.batch_size}, {args.feedback_mode}:"
                f" confirmSend -> sink has all {n} in {run.relay_s:.2f} s = {rate:,.0f} msgs/s"
                f" (status SENT at {run.sent_s:.2f} s; CPU: server {run.server_cpu_s:.2f} s,"
                f" sink {run.sink_cpu_s:.2f} s; prepare {run.prepare_s:.2f} s)"
            )
            print(
                f"ratio:    server / baseline = {rate / (n / base_s):.2f}"
                f" (target: >= 500 msgs/s through the server: {'met' if rate >= 500 else 'MISSED'})"
            )
            sys.stdout.flush()
    finally:
        close()


if __name__ == "__main__":
    asyncio.run(main())
