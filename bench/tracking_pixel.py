"""Benchmark of the open pixel: `GET /t/o/{id}` under load, batched writes vs one write per open.

    .venv/bin/python bench/tracking_pixel.py                        # 2,000 recipients, 10 s loads
    .venv/bin/python bench/tracking_pixel.py --duration 5 --connections 32 --threads 1

What it does, on a fresh SQLite file, with the real server as a subprocess
(`python -m server serve`, capture:// MTA, so nothing leaves the machine):
1. creates an operator (`python -m server operator create`), imports N profiles, sends a
   delivery to them through the GraphQL API and reads the sending logs' ids;
2. writes the N pixel paths (`/t/o/<signed id>`, one per recipient, signed with the server's key)
   to a file that a wrk Lua script cycles through (each wrk thread from its own offset);
3. server A (TRACKING_BATCH_SIZE=500, the default): loads `GET /health` (a `SELECT 1` per
   request: the HTTP + one-read baseline), the pixel with ids that fail the signature check
   (nothing recorded: the HTTP-only ceiling), then the pixel with valid ids; stops it (SIGTERM: a
   graceful stop flushes the recorder's queue) and counts the opens stored (the rows' hits);
4. server B, same database, TRACKING_BATCH_SIZE=1 (a write per open): loads the valid pixel, stops,
   counts the opens stored.
Every open the server answered must have landed: rows >= requests wrk counted, and at most
`connections` more (requests the server answered after wrk stopped counting).

wrk is the load generator (a separate process in C, so the client is not the bottleneck); if it
is missing the script says how to install it and exits.
"""

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from harness import Client, ServerProcess, environment, operator_token, running_server, sending_logs

from models.tracking import Token, TokenKind, tracking_url

SECRET = "bench-tracking-secret"
BODY = '<p>Hello {{firstName}}</p><a href="https://example.com/offer">Offer</a>'
ALL_ROLES = ["ADMINISTRATION", "PREPARE_DELIVERIES", "APPROVE_DELIVERIES", "START_DELIVERIES"]

# Cycles over the paths file; each thread starts at its own offset. done() prints the summary
# as one JSON line for this script to read.
LUA = r"""
local paths = {}
for line in io.lines(os.getenv("PIXEL_PATHS")) do paths[#paths + 1] = line end
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("offset", counter * 7919)
end
local i = 0
function init(args)
  i = (offset or 0) % #paths
end
function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK-JSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d,'
    .. ' "status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class Load:
    label: str
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    cpu_seconds: float  # the server process's CPU time (all its threads), load + drain
    drain_seconds: float = 0.0  # after the load, until every answered open was stored
    rows: int = 0  # opens this load stored (hits: one row per recipient counts them)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_seconds * 1e6 / max(self.requests, 1)


async def send_delivery(base_url: str, token: str, n: int) -> tuple[int, list[int]]:
    """Import n profiles, send them a delivery (capture MTA), return its id and log ids."""
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as http:
        api = Client(http, token)
        profiles = [{"email": f"reader{i}@example.com", "firstName": f"R{i}"} for i in range(n)]
        ids = (
            await api.gql(
                "mutation($p: [ProfileInput!]!) { importProfiles(profiles: $p)"
                " { profiles { id } } }",
                {"p": profiles},
            )
        )["importProfiles"]["profiles"]
        created = (
            await api.gql(
                "mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) { id } }",
                {
                    "i": {
                        "label": "pixel bench",
                        "channel": "EMAIL",
                        "subject": "Hello",
                        "body": BODY,
                        "audience": {"profileIds": [p["id"] for p in ids]},
                    }
                },
            )
        )["createDelivery"]["id"]
        await api.gql("mutation($id: ID!) { prepareDelivery(id: $id) { id } }", {"id": created})
        await api.gql("mutation($id: ID!) { confirmSend(deliveryId: $id) { id } }", {"id": created})
        deadline = time.monotonic() + 120
        while (await api.gql("query($id: ID!) { delivery(id: $id) { status } }", {"id": created}))[
            "delivery"
        ]["status"] != "SENT":
            if time.monotonic() > deadline:
                raise SystemExit("the delivery was not sent within 120 s")
            await asyncio.sleep(0.1)
        logs = await sending_logs(api, created, "id excluded")
        return int(created), [int(log["id"]) for log in logs if not log["excluded"]]


def wrk(
    label: str,
    server: ServerProcess,
    paths: Path,
    lua: Path,
    args: argparse.Namespace,
    seconds: int,
) -> Load:
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(lua),
        server.base_url,
    ]
    cpu_before = server.cpu_seconds()
    result = subprocess.run(
        command, env={**os.environ, "PIXEL_PATHS": str(paths)}, capture_output=True, text=True
    )
    cpu = server.cpu_seconds() - cpu_before
    line = next((x for x in result.stdout.splitlines() if x.startswith("WRK-JSON ")), None)
    if result.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed: {result.stdout}\n{result.stderr}")
    data = json.loads(line[len("WRK-JSON ") :])
    socket_errors = sum(data[k] for k in ("connect", "read", "write", "timeout"))
    return Load(
        label,
        data["requests"],
        data["duration_us"] / 1e6,
        data["status"],
        socket_errors,
        data["p50_us"] / 1000,
        data["p99_us"] / 1000,
        cpu,
    )


def count_rows(db: Path, delivery_id: int) -> int:
    """Opens stored: one row per recipient, each with its count of hits."""
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        row = conn.execute(
            "SELECT COALESCE(SUM(hits), 0) FROM tracking_log WHERE delivery_id = ?"
            " AND kind = 'OPEN'",
            [delivery_id],
        ).fetchone()
    return int(row[0])


def recording_load(
    label: str, server: ServerProcess, paths: Path, lua: Path, args: argparse.Namespace, where: Any
) -> Load:
    """A wrk load of valid ids, then wait until every open it got answers for is stored (a
    recorder that falls behind shows as drain time and CPU, not as a better req/s)."""
    db, delivery_id = where
    before = count_rows(db, delivery_id)
    cpu_before = server.cpu_seconds()
    load = wrk(label, server, paths, lua, args, args.duration)
    ended = time.perf_counter()
    deadline = ended + 300
    while (rows := count_rows(db, delivery_id) - before) < load.requests:
        if time.perf_counter() > deadline:
            raise SystemExit(f"{label}: {rows} of {load.requests} opens stored after 300 s")
        time.sleep(0.02)
    load.drain_seconds = time.perf_counter() - ended
    load.cpu_seconds = server.cpu_seconds() - cpu_before
    return load


def check_landed(loads: list[Load], rows: int, connections: int) -> str:
    """Rows counted after a graceful stop, against the opens wrk saw answered: at most one more
    per connection (answered while wrk was stopping, so not counted by it)."""
    answered = sum(load.requests for load in loads)
    ok = answered <= rows <= answered + connections * len(loads)
    return f"{rows} stored for {answered} answered opens: {'all landed' if ok else 'MISMATCH'}"


def http_stack(env: dict[str, str]) -> str:
    probe = (
        "import importlib.util as u;"
        "print('httptools' if u.find_spec('httptools') else 'h11',"
        " 'uvloop' if u.find_spec('uvloop') else 'asyncio')"
    )
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    return out.stdout.strip().replace(" ", " parser, ") + " loop"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--recipients", type=int, default=2000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per load")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 1

    with tempfile.TemporaryDirectory(prefix="pixel-bench-") as tmp:
        workdir = Path(tmp)
        db = workdir / "bench.sqlite3"
        # The project comes first on PYTHONPATH; an extra one (say, with httptools) is kept after.
        env = environment(
            DATABASE_URL=f"sqlite://{db}",
            MTA_URL="capture://",
            FEEDBACK_SECRET=SECRET,
            ENGINE_TICK_SECONDS="0.05",
        )
        token = operator_token(env, workdir, ALL_ROLES)
        lua = workdir / "pixel.lua"
        lua.write_text(LUA)
        valid_paths, invalid_paths = workdir / "valid.txt", workdir / "invalid.txt"
        health_paths = workdir / "health.txt"
        health_paths.write_text("/health\n")

        print(
            f"open pixel: {args.recipients} recipients, wrk -t{args.threads}"
            f" -c{args.connections} -d{args.duration:g}s, SQLite, server {http_stack(env)},"
            f" Python {platform.python_version()}, {os.cpu_count()} CPUs"
        )
        with running_server(env, workdir, "server-batched.log") as server:
            started = time.perf_counter()
            delivery_id, log_ids = asyncio.run(
                send_delivery(server.base_url, token, args.recipients)
            )
            print(f"delivery {delivery_id} sent to {len(log_ids)} in", end=" ")
            print(f"{time.perf_counter() - started:.1f} s")
            urls = [
                tracking_url("", SECRET, Token(TokenKind.OPEN, delivery_id, log_id))
                for log_id in log_ids
            ]
            valid_paths.write_text("\n".join(urls) + "\n")
            # The same ids with the signature's first character changed: they fail the check.
            invalid_paths.write_text(
                "\n".join(u[:-22] + ("B" if u[-22] == "A" else "A") + u[-21:] for u in urls) + "\n"
            )
            where = (db, delivery_id)
            wrk("warm-up", server, health_paths, lua, args, 2)
            health = wrk("GET /health", server, health_paths, lua, args, args.duration)
            invalid = wrk("pixel, bad ids", server, invalid_paths, lua, args, args.duration)
            batched = recording_load("pixel, batched", server, valid_paths, lua, args, where)
        rows_batched = count_rows(db, delivery_id)
        dropped_a = server.log_text().count("dropped")

        env_one = {**env, "TRACKING_BATCH_SIZE": "1"}
        with running_server(env_one, workdir, "server-one-per-open.log") as server:
            wrk("warm-up", server, health_paths, lua, args, 2)
            single = recording_load("pixel, 1 write each", server, valid_paths, lua, args, where)
        rows_single = count_rows(db, delivery_id) - rows_batched
        dropped_b = server.log_text().count("dropped")

    print()
    print(
        f"{'load':<52} {'req/s':>6} {'p50 ms':>6} {'p99 ms':>6} {'drain s':>7}"
        f" {'CPU us/req':>10}  errors"
    )
    table = [
        (health, "GET /health (a SELECT 1 each)"),
        (invalid, "GET /t/o/<bad id> (nothing to record)"),
        (batched, "GET /t/o/<id> batched (TRACKING_BATCH_SIZE=500)"),
        (single, "GET /t/o/<id> one write each (TRACKING_BATCH_SIZE=1)"),
    ]
    for load, label in table:
        drain = f"{load.drain_seconds:.1f}" if load in (batched, single) else "-"
        print(
            f"{label:<52} {load.rate:>6.0f} {load.p50_ms:>6.1f} {load.p99_ms:>6.1f} {drain:>7}"
            f" {load.cpu_us_per_request:>10.0f}  {load.non_2xx} non-2xx,"
            f" {load.socket_errors} socket"
        )
    print()
    print(f"batched, after stop:        {check_landed([batched], rows_batched, args.connections)}")
    print(f"  'dropped' in its log: {dropped_a}")
    print(f"one write each, after stop: {check_landed([single], rows_single, args.connections)}")
    print(f"  'dropped' in its log: {dropped_b}")
    print(
        f"batched vs one write each: {batched.rate / single.rate:.2f}x the requests/s,"
        f" {single.cpu_us_per_request / batched.cpu_us_per_request:.2f}x less server CPU per"
        " open (load + drain)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
