"""Benchmark of memory per idle WebSocket connection (graphql-transport-ws), server side.

    .venv/bin/python bench/ws_memory.py                     # 1,000 connections
    .venv/bin/python bench/ws_memory.py --connections 2000

For each server, in its own process:
- the real one: `python -m server serve` (PRODUCTION=true, a fresh SQLite file, capture://);
- the baseline: `bare_strawberry:app` (plain strawberry, no authentication, no database) under
  `python -m uvicorn` with the same options (websockets-sansio; permessage-deflate as the
  variant asks: WS_PER_MESSAGE_DEFLATE is set to match the clients);
this process opens N connections with the `websockets` library (which, like browsers, asks for
permessage-deflate), each authenticated in connection_init and idle after its connection_ack,
and reads the server's resident memory (VmRSS in /proc/PID/status) before and after:
1. warm-up: 20 connections opened, subscribed, closed (code paths and caches loaded);
2. `before`, then N connections opened and acknowledged, 2 s of rest, `idle`;
3. each subscribes to deploymentProgress of one delivery (a dashboard left open: a snapshot,
   then nothing, since the delivery does not change), 2 s of rest, `subscribed`;
4. all closed, 2 s of rest, `closed` (what the allocator keeps).
Each variant (with and without permessage-deflate) gets a fresh server process: memory freed by
one would be reused by the next without showing in RSS.
KiB per connection = (idle - before) / N, and (subscribed - before) / N.

RSS counts pages touched, so the figures include the allocator's slack; one run gives a few
KiB of spread. The open-files limit (soft RLIMIT_NOFILE) is raised for this process and the
servers it starts to at least 2N + 200 when the hard limit allows it.
"""

import argparse
import asyncio
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from harness import (
    Client,
    ServerProcess,
    command_line,
    environment,
    import_profiles,
    machine,
    operator_token,
    raise_open_files_limit,
    rss_kib,
    running_server,
    running_uvicorn,
    ws_connect,
)

PROGRESS = (
    "subscription($id: ID!) { deploymentProgress(deliveryId: $id) {"
    " at status kpis { toSend processed sent pending failed deliveredRate } } }"
)


@dataclass
class Memory:
    server: str
    connections: int
    before: int
    idle: int
    subscribed: int
    closed: int

    def per_connection(self, after: int) -> float:
        return (after - self.before) / self.connections


async def subscribe(ws: Any, delivery_id: str) -> None:
    message = {
        "id": "1",
        "type": "subscribe",
        "payload": {"query": PROGRESS, "variables": {"id": delivery_id}},
    }
    await ws.send(json.dumps(message))
    first = json.loads(await asyncio.wait_for(ws.recv(), 60))
    if first.get("type") != "next" or first["payload"].get("errors"):
        raise RuntimeError(f"the subscription failed: {first}")


def with_deflate(env: dict[str, str], deflate: bool) -> dict[str, str]:
    """The servers compress only when WS_PER_MESSAGE_DEFLATE says so (off by default)."""
    return {**env, "WS_PER_MESSAGE_DEFLATE": "true" if deflate else "false"}


async def open_many(base_url: str, token: str, n: int, deflate: bool) -> list[Any]:
    gate = asyncio.Semaphore(50)  # handshakes in flight

    async def one() -> Any:
        async with gate:
            return await ws_connect(base_url, token, deflate=deflate)

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def measure(
    server: ServerProcess, label: str, token: str, n: int, delivery: str, deflate: bool
) -> Memory:
    label = f"{label}, {'deflate' if deflate else 'no compression'}"
    pid = server.process.pid
    warm = await open_many(server.base_url, token, 20, deflate)
    await asyncio.gather(*(subscribe(ws, delivery) for ws in warm))
    await asyncio.gather(*(ws.close() for ws in warm))
    await asyncio.sleep(1)
    before = rss_kib(pid)
    sockets = await open_many(server.base_url, token, n, deflate)
    await asyncio.sleep(2)
    idle = rss_kib(pid)
    gate = asyncio.Semaphore(50)

    async def sub(ws: Any) -> None:
        async with gate:
            await subscribe(ws, delivery)

    await asyncio.gather(*(sub(ws) for ws in sockets))
    await asyncio.sleep(2)
    subscribed = rss_kib(pid)
    await asyncio.gather(*(ws.close() for ws in sockets))
    await asyncio.sleep(2)
    memory = Memory(label, n, before, idle, subscribed, rss_kib(pid))
    print(
        f"  {label}: {n} connections, RSS {before} -> {idle} KiB idle"
        f" ({memory.per_connection(idle):.1f} KiB each) -> {subscribed} KiB subscribed"
        f" ({memory.per_connection(subscribed):.1f} KiB each) -> {memory.closed} KiB closed",
        flush=True,
    )
    return memory


def open_files_limit(pid: int) -> str:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return line.split()[3]
    return "?"


async def one_delivery(base_url: str, token: str) -> str:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        api = Client(http, token)
        await import_profiles(api, [{"email": f"mem{i}@example.com"} for i in range(10)])
        created = await api.gql(
            "mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) { id } }",
            {
                "i": {
                    "label": "memory bench",
                    "channel": "EMAIL",
                    "subject": "Hello",
                    "body": "<p>Hello</p>",
                    "audience": {"allProfiles": True},
                }
            },
        )
        return str(created["createDelivery"]["id"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument(
        "--deflate",
        choices=["on", "off", "both"],
        default="both",
        help="ask for permessage-deflate (browsers do), or not, or measure both",
    )
    args = parser.parse_args()
    args.deflate = {"on": [True], "off": [False], "both": [True, False]}[args.deflate]
    n = args.connections
    limit = raise_open_files_limit(2 * n + 200)
    if limit < n + 100:
        raise SystemExit(f"the open-files limit ({limit}) is too low for {n} connections")

    print(f"{command_line()}\nmachine: {machine()}")
    results = []
    with tempfile.TemporaryDirectory(prefix="ws-memory-bench-") as tmp:
        workdir = Path(tmp)
        env = environment(
            DATABASE_URL=f"sqlite://{workdir / 'bench.sqlite3'}",
            MTA_URL="capture://",
            FEEDBACK_SECRET="bench-memory-secret",
            PRODUCTION="true",
        )
        token = operator_token(env, workdir)
        delivery = ""
        for deflate in args.deflate:  # a fresh process each: freed memory is not given back
            with running_server(with_deflate(env, deflate), workdir) as server:
                print(f"  server open-files limit: {open_files_limit(server.process.pid)}")
                delivery = delivery or asyncio.run(one_delivery(server.base_url, token))
                results.append(asyncio.run(measure(server, "server", token, n, delivery, deflate)))
        for deflate in args.deflate:
            with running_uvicorn(
                "bare_strawberry:app", with_deflate(env, deflate), workdir
            ) as bare:
                results.append(asyncio.run(measure(bare, "bare", token, n, "1", deflate)))

    print()
    print(
        f"{'server':<26} {'conns':>5} {'RSS before':>10} {'idle':>7} {'KiB/conn':>8}"
        f" {'subscribed':>10} {'KiB/conn':>8} {'closed':>7}"
    )
    for m in results:
        print(
            f"{m.server:<26} {m.connections:>5} {m.before:>10} {m.idle:>7}"
            f" {m.per_connection(m.idle):>8.1f} {m.subscribed:>10}"
            f" {m.per_connection(m.subscribed):>8.1f} {m.closed:>7}"
        )
    idle = max(m.per_connection(m.idle) for m in results if m.server.startswith("server"))
    verdict = "met" if idle < 100 else "MISSED"
    print(f"\ntarget: under 100 KiB per idle connection: {verdict} ({idle:.1f} KiB at most)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
