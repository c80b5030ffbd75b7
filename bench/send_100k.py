"""Benchmark of the sending path: confirmSend -> every message relayed, beside a raw baseline.

    .venv/bin/python bench/send_100k.py                       # 100,000 recipients, batch 1000
    .venv/bin/python bench/send_100k.py --batch-size 500,1000,2000
    .venv/bin/python bench/send_100k.py --profile             # where the time goes
    .venv/bin/python bench/send_100k.py --mta-url capture://  # the relay path without feedback

For each batch size, on a fresh SQLite file (or PostgreSQL database):
1. the baseline: stdlib sqlite3 (or asyncpg), a table shaped like sending_log, N rows inserted in
   one transaction, then updated in batches of B (status + message id, one UPDATE ... WHERE id
   IN (...) and one commit per batch), which is the least work the engine could do;
2. the real server (server.app.create_app under uvicorn on a free port, in this process) with the
   simulator MTA at no delay: N profiles imported through importProfiles, a delivery to
   allProfiles created, prepared (timed), confirmed; the time runs from the confirmSend request
   to the first deploymentProgress snapshot with processed == toSend, then to status SENT.

End time: the `at` of the deploymentProgress snapshot (the server's clock when it read the
delivery). The bench sets progress_interval_seconds to 0.02, so the watcher re-reads the
delivery at most 20 ms after a change: the relay end is known to about 20 ms, with one small
read per change (no polling traffic). The SENT time is also read from the delivery's own
`sentAt` (set by the engine in the transaction that moves it to SENT).
"""

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import platform
import pstats
import re
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import harness
import httpx
import uvicorn
import websockets
from harness import command_line, free_port, import_profiles
from tortoise.backends.base.executor import EXECUTOR_CACHE

from models.enums import Role
from models.operator import create_operator
from server.app import create_app
from server.settings import Settings

PG_URL = harness.PG_URL
DEFAULT_MTA = "simulator://?delay=0&seed=1"
BODY = (
    '<p>Hello</p><a href="https://example.com/offer">Offer</a>'
    '<a href="https://example.com/unsubscribe">Unsubscribe</a>'
)
KPIS = "toSend processed sent pending failed"
PROGRESS = (
    "subscription($id: ID!) { deploymentProgress(deliveryId: $id) {"
    f" status at kpis {{ {KPIS} }} }} }}"
)


# ---- the baseline --------------------------------------------------------------------------

SQLITE_DDL = [
    "CREATE TABLE sending_log (id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,"
    " delivery_id INT NOT NULL, profile_id INT, address VARCHAR(320) NOT NULL,"
    " status VARCHAR(8) NOT NULL DEFAULT 'TO_SEND', excluded INT NOT NULL DEFAULT 0,"
    " failure_type VARCHAR(8), failure_reason VARCHAR(32), message_id VARCHAR(128) UNIQUE,"
    " retries INT NOT NULL DEFAULT 0, event_at TIMESTAMP, claimed_until BIGINT)",
    "CREATE INDEX idx_log_delivery_status ON sending_log (delivery_id, status)",
    "CREATE INDEX idx_log_profile ON sending_log (profile_id, id)",
]


@dataclass
class Baseline:
    kind: str
    insert_s: float
    update_s: float
    synchronous: str = ""

    @property
    def total_s(self) -> float:
        return self.insert_s + self.update_s


def _rows(n: int) -> list[tuple[Any, ...]]:
    return [(1, i, f"user{i}@example.com", "TO_SEND", 0, 0) for i in range(1, n + 1)]


def sqlite_baseline(path: Path, n: int, batch: int) -> Baseline:
    conn = sqlite3.connect(path, isolation_level=None)
    # The server's pragmas (tortoise's SQLite client): WAL, default synchronous.
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA journal_size_limit=16384")
    conn.execute("PRAGMA foreign_keys=ON")
    synchronous = str(conn.execute("PRAGMA synchronous").fetchone()[0])
    for ddl in SQLITE_DDL:
        conn.execute(ddl)
    rows = _rows(n)
    start = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO sending_log (delivery_id, profile_id, address, status, excluded, retries)"
        " VALUES (?,?,?,?,?,?)",
        rows,
    )
    conn.execute("COMMIT")
    inserted = time.perf_counter()
    ids = [r[0] for r in conn.execute("SELECT id FROM sending_log ORDER BY id")]
    start_update = time.perf_counter()
    for i in range(0, len(ids), batch):
        chunk = ids[i : i + batch]
        conn.execute("BEGIN")
        conn.execute(
            "UPDATE sending_log SET status = 'SENT', claimed_until = NULL,"
            " message_id = ? || CAST(id AS TEXT) || ? WHERE id IN ("
            + ",".join("?" * len(chunk))
            + ")",
            ["d1.", "@delivery.local", *chunk],
        )
        conn.execute("COMMIT")
    updated = time.perf_counter()
    left = conn.execute("SELECT COUNT(*) FROM sending_log WHERE status = 'TO_SEND'").fetchone()[0]
    assert left == 0, left
    conn.close()
    return Baseline("sqlite3", inserted - start, updated - start_update, synchronous)


async def postgres_baseline(url: str, n: int, batch: int) -> Baseline:
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute(
            "CREATE TABLE bench_log (id SERIAL PRIMARY KEY, delivery_id INT NOT NULL,"
            " profile_id INT, address VARCHAR(320) NOT NULL, status VARCHAR(8) NOT NULL,"
            " excluded BOOL NOT NULL DEFAULT FALSE, failure_type VARCHAR(8),"
            " failure_reason VARCHAR(32), message_id VARCHAR(128) UNIQUE,"
            " retries INT NOT NULL DEFAULT 0, event_at TIMESTAMPTZ, claimed_until BIGINT);"
            " CREATE INDEX ON bench_log (delivery_id, status);"
            " CREATE INDEX ON bench_log (profile_id, id)"
        )
        rows = [(1, i, f"user{i}@example.com", "TO_SEND", False, 0) for i in range(1, n + 1)]
        start = time.perf_counter()
        async with conn.transaction():
            await conn.executemany(
                "INSERT INTO bench_log (delivery_id, profile_id, address, status, excluded,"
                " retries) VALUES ($1,$2,$3,$4,$5,$6)",
                rows,
            )
        inserted = time.perf_counter()
        ids = [r[0] for r in await conn.fetch("SELECT id FROM bench_log ORDER BY id")]
        start_update = time.perf_counter()
        for i in range(0, len(ids), batch):
            await conn.execute(
                "UPDATE bench_log SET status = 'SENT', claimed_until = NULL,"
                " message_id = $1 || id::text || $2 WHERE id = ANY($3::int[])",
                "d1.",
                "@delivery.local",
                ids[i : i + batch],
            )
        updated = time.perf_counter()
    finally:
        await conn.close()
    return Baseline("asyncpg", inserted - start, updated - start_update)


# ---- where the time goes (--profile) -------------------------------------------------------

_NUMBERS = re.compile(r"\b\d+\b")
_LISTS = re.compile(r"\((?:\s*\?\s*,)+\s*\?\s*\)")
_VALUES = re.compile(r"(\(\?(?:,\?)*\))(?:\s*,\s*\1)+")


def statement_shape(sql: str) -> str:
    shape = _LISTS.sub("(?,...)", sql)
    shape = _VALUES.sub(r"\1,...", shape)
    shape = _NUMBERS.sub("N", shape)
    return " ".join(shape.split())


@dataclass
class SqlTimer:
    """Time spent in sqlite3 calls, measured in aiosqlite's worker thread, by statement shape."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lock: threading.Lock = field(default_factory=threading.Lock)
    active: bool = False

    def install(self) -> Callable[[], None]:
        import aiosqlite.core

        original: Any = aiosqlite.core.Connection._execute
        timer = self

        async def _execute(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
            if not timer.active:
                return await original(self, fn, *args, **kwargs)
            name = getattr(fn, "__name__", "?")
            label = statement_shape(args[0]) if args and isinstance(args[0], str) else ""
            key = f"{name}: {label}" if label else name

            def timed(*a: Any, **k: Any) -> Any:
                start = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    elapsed = time.perf_counter() - start
                    with timer.lock:
                        timer.seconds[key] += elapsed
                        timer.calls[key] += 1

            return await original(self, timed, *args, **kwargs)

        aiosqlite.core.Connection._execute = _execute  # type: ignore[method-assign]

        def restore() -> None:
            aiosqlite.core.Connection._execute = original  # type: ignore[method-assign]

        return restore

    def report(self, wall: float, top: int = 14) -> str:
        total = sum(self.seconds.values())
        lines = [
            f"sqlite3 calls in aiosqlite's thread: {sum(self.calls.values())} calls, "
            f"{total:.2f} s busy of {wall:.2f} s wall ({100 * total / wall:.0f} %)",
            f"{'seconds':>8} {'%wall':>6} {'calls':>7} {'ms/call':>8}  statement",
        ]
        for key, secs in sorted(self.seconds.items(), key=lambda kv: -kv[1])[:top]:
            calls = self.calls[key]
            text = key if len(key) <= 150 else key[:147] + "..."
            per_call = 1000 * secs / calls
            lines.append(f"{secs:8.2f} {100 * secs / wall:6.1f} {calls:7d} {per_call:8.2f}  {text}")
        return "\n".join(lines)


PACKAGES = [
    ("models/", "project models/"),
    ("server/", "project server/"),
    ("graphql_schema/", "project graphql_schema/"),
    ("tortoise", "tortoise-orm"),
    ("pypika", "pypika-tortoise"),
    ("aiosqlite", "aiosqlite (event-loop side)"),
    ("strawberry", "strawberry"),
    ("graphql", "graphql-core"),
    ("websockets", "websockets"),
    ("uvicorn", "uvicorn"),
    ("starlette", "starlette"),
    ("asyncio", "asyncio (event loop)"),
    ("selectors", "asyncio (event loop)"),
    ("pydantic", "pydantic"),
]


def group_of(filename: str, funcname: str) -> str:
    if filename == "~":
        if "select" in funcname or "poll" in funcname:
            return "waiting in select/epoll (idle loop)"
        return "C builtins (other)"
    path = filename.replace("\\", "/")
    if "/bench/" in path:
        return "bench client"
    for needle, name in PACKAGES:
        if f"/{needle}" in path or f"site-packages/{needle}" in path:
            return name
    if "/lib/python3" in path:
        return "stdlib (other)"
    return "other"


def profile_report(profile: cProfile.Profile, wall: float, top: int = 25) -> str:
    stats = pstats.Stats(profile)
    groups: dict[str, float] = defaultdict(float)
    rows = []
    for (filename, line, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        groups[group_of(filename, func)] += tottime
        rows.append((tottime, cumtime, ncalls, filename, line, func))
    out = [f"main thread (event loop), tottime by package, {wall:.2f} s wall:"]
    for name, secs in sorted(groups.items(), key=lambda kv: -kv[1]):
        if secs >= 0.005 * wall:
            out.append(f"  {secs:7.2f} s {100 * secs / wall:5.1f} %  {name}")
    out.append(f"top {top} functions by own time:")
    out.append(f"  {'tottime':>7} {'cumtime':>7} {'calls':>8}  function")
    for tottime, cumtime, ncalls, filename, line, func in sorted(rows, reverse=True)[:top]:
        where = filename
        for marker in ("site-packages/", "/work/main/", "/lib/python3.11/"):
            if marker in where:
                where = where.split(marker, 1)[1]
        out.append(f"  {tottime:7.2f} {cumtime:7.2f} {ncalls:8d}  {where}:{line}({func})")
    s = io.StringIO()
    pstats.Stats(profile, stream=s).sort_stats("cumulative").print_stats(
        r"/work/main/(models|server)/", 20
    )
    out.append("project functions by cumulative time (includes awaited time only while on CPU):")
    out += ["  " + ln for ln in s.getvalue().splitlines() if re.search(r"\d+\.\d+ ", ln)]
    return "\n".join(out)


# ---- the real server -------------------------------------------------------------------------


class RunningServer:
    """The app under uvicorn in this process (as tests/support/server.py's RunningServer)."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            ws="websockets-sansio",
        )
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> "RunningServer":
        EXECUTOR_CACHE.clear()
        self.task = asyncio.create_task(self.server.serve())
        for _ in range(1000):
            if self.server.started:
                return self
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)
        raise RuntimeError("server did not start")

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await asyncio.wait_for(self.task, 60)


@contextlib.asynccontextmanager
async def fresh_database(kind: str, tmp: Path) -> AsyncIterator[str]:
    if kind == "sqlite":
        yield f"sqlite://{tmp}/bench.sqlite3"
        return
    async with harness.pg_database("dbench") as url:
        yield url


class Client(harness.Client):
    """The shared GraphQL client, plus the deploymentProgress subscription over WebSocket."""

    @contextlib.asynccontextmanager
    async def progress(self, delivery_id: str) -> AsyncIterator[Any]:
        url = str(self.http.base_url.join("/graphql")).replace("http://", "ws://", 1)
        async with websockets.connect(
            url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")], max_size=None
        ) as ws:
            init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {self.token}"}}
            await ws.send(json.dumps(init))
            ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert ack["type"] == "connection_ack", ack
            await ws.send(
                json.dumps(
                    {
                        "id": "1",
                        "type": "subscribe",
                        "payload": {"query": PROGRESS, "variables": {"id": delivery_id}},
                    }
                )
            )

            async def snapshots() -> AsyncIterator[tuple[float, dict[str, Any]]]:
                while True:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 600))
                    if message["type"] == "ping":
                        await ws.send(json.dumps({"type": "pong"}))
                        continue
                    if message["type"] != "next":
                        raise RuntimeError(f"subscription ended: {message}")
                    if message["payload"].get("errors"):
                        raise RuntimeError(json.dumps(message["payload"]["errors"]))
                    yield time.time(), message["payload"]["data"]["deploymentProgress"]

            yield snapshots()


def epoch(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@dataclass
class EngineRun:
    recipients: int
    batch: int
    mode: str
    mta_url: str
    import_s: float
    create_s: float
    prepare_s: float
    to_send: int
    confirm_request_s: float
    relayed_s: float  # confirmSend sent -> snapshot with processed == toSend (server's `at`)
    relayed_seen_s: float  # ... as the client received it
    sent_s: float  # confirmSend sent -> status SENT (sentAt, the server's own timestamp)
    sent_seen_s: float
    snapshots: int
    cpu_s: float  # CPU time of this process (all threads) from confirmSend to SENT seen
    load: tuple[float, float]  # 1-minute load average before and after the engine run
    feedback_events: int | None = None
    profile_text: str = ""

    @property
    def rate(self) -> float:
        return self.to_send / self.relayed_s


async def engine_run(
    kind: str, tmp: Path, n: int, batch: int, mode: str, mta_url: str, profile: bool
) -> EngineRun:
    async with fresh_database(kind, tmp) as url:
        settings = Settings(
            _env_file=None,
            database_url=url,
            mta_url=mta_url,
            feedback_secret=uuid.uuid4().hex,  # the simulator reports in-process, not by webhook
            feedback_mode=mode,
            engine_tick_seconds=0.05,
            progress_interval_seconds=0.02,
            batch_size=batch,
        )
        async with (
            RunningServer(settings) as running,
            httpx.AsyncClient(base_url=running.base_url, timeout=600) as http,
        ):
            _, token = await create_operator(f"bench-{uuid.uuid4().hex[:6]}", [Role.ADMINISTRATION])
            client = Client(http, token)

            start = time.perf_counter()
            await import_profiles(
                client, [{"email": f"user{i}@example.com", "firstName": f"F{i}"} for i in range(n)]
            )
            import_s = time.perf_counter() - start

            start = time.perf_counter()
            data = await client.gql(
                "mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) { id } }",
                {
                    "i": {
                        "label": f"bench {n} x {batch}",
                        "channel": "EMAIL",
                        "subject": "Hello",
                        "body": BODY,
                        "audience": {"allProfiles": True},
                        "feedbackMode": mode,
                    }
                },
            )
            delivery_id = data["createDelivery"]["id"]
            create_s = time.perf_counter() - start

            start = time.perf_counter()
            data = await client.gql(
                f"mutation($id: ID!) {{ prepareDelivery(id: $id) {{ status kpis {{ {KPIS} }} }} }}",
                {"id": delivery_id},
            )
            prepare_s = time.perf_counter() - start
            to_send = data["prepareDelivery"]["kpis"]["toSend"]
            assert data["prepareDelivery"]["status"] == "READY" and to_send == n, data

            timer = SqlTimer()
            restore = timer.install() if profile and kind == "sqlite" else None
            profiler = cProfile.Profile() if profile else None
            try:
                async with client.progress(delivery_id) as snapshots:
                    first_snap = await anext(snapshots)
                    assert first_snap[1]["status"] == "READY", first_snap
                    timer.active = True
                    if profiler is not None:
                        profiler.enable()
                    load_before = os.getloadavg()[0]
                    cpu0 = time.process_time()
                    t0_wall, t0 = time.time(), time.perf_counter()
                    data = await client.gql(
                        "mutation($id: ID!) { confirmSend(deliveryId: $id) { status } }",
                        {"id": delivery_id},
                    )
                    confirm_request_s = time.perf_counter() - t0
                    relayed_at = relayed_seen = sent_seen = None
                    count = 0
                    async for seen, snap in snapshots:
                        count += 1
                        kpis = snap["kpis"]
                        if relayed_at is None and kpis["processed"] == kpis["toSend"]:
                            relayed_at, relayed_seen = epoch(snap["at"]), seen
                        if snap["status"] == "SENT":
                            sent_seen = seen
                            break
                        if snap["status"] not in ("IN_PROGRESS", "READY"):
                            raise RuntimeError(f"unexpected status: {snap}")
                    wall = time.perf_counter() - t0
                    cpu_s = time.process_time() - cpu0
                    load = (load_before, os.getloadavg()[0])
                    if profiler is not None:
                        profiler.disable()
                    timer.active = False
            finally:
                if restore is not None:
                    restore()
            assert relayed_at is not None and relayed_seen is not None and sent_seen is not None

            data = await client.gql(
                "query($id: ID!) { delivery(id: $id) { status sentAt kpis { processed toSend }"
                " sendingLogs(status: TO_SEND, first: 1) { totalCount } } }",
                {"id": delivery_id},
            )
            d = data["delivery"]
            assert d["sendingLogs"]["totalCount"] == 0, d
            assert d["kpis"]["processed"] == d["kpis"]["toSend"] == n, d
            profile_text = ""
            if profiler is not None:
                profile_text = profile_report(profiler, wall)
                if restore is not None:
                    profile_text = timer.report(wall) + "\n\n" + profile_text
            feedback_events = None
            if kind == "sqlite":
                path = url[len("sqlite://") :]
                with contextlib.closing(sqlite3.connect(path)) as conn:
                    feedback_events = conn.execute(
                        "SELECT COUNT(*) FROM feedback_event"
                    ).fetchone()[0]
            return EngineRun(
                recipients=n,
                batch=batch,
                mode=mode,
                mta_url=mta_url,
                import_s=import_s,
                create_s=create_s,
                prepare_s=prepare_s,
                to_send=to_send,
                confirm_request_s=confirm_request_s,
                relayed_s=relayed_at - t0_wall,
                relayed_seen_s=relayed_seen - t0_wall,
                sent_s=epoch(d["sentAt"]) - t0_wall,
                sent_seen_s=sent_seen - t0_wall,
                snapshots=count,
                cpu_s=cpu_s,
                load=load,
                feedback_events=feedback_events,
                profile_text=profile_text,
            )


# ---- the command -----------------------------------------------------------------------------


def machine() -> str:
    return (
        f"{harness.machine()}, Python {platform.python_version()},"
        f" SQLite {sqlite3.sqlite_version}, {platform.system()}"
    )


async def one(args: argparse.Namespace, batch: int, profile: bool) -> tuple[Baseline, EngineRun]:
    with tempfile.TemporaryDirectory(prefix="bench-send-") as tmp_name:
        tmp = Path(tmp_name)
        if args.db == "sqlite":
            baseline = sqlite_baseline(tmp / "baseline.sqlite3", args.recipients, batch)
        else:
            async with fresh_database("postgres", tmp) as url:
                baseline = await postgres_baseline(url, args.recipients, batch)
        run = await engine_run(
            args.db, tmp, args.recipients, batch, args.feedback_mode, args.mta_url, profile
        )
    return baseline, run


def print_run(baseline: Baseline, run: EngineRun) -> None:
    ratio = run.relayed_s / baseline.total_s
    print(
        f"--- batch {run.batch}, {run.recipients} recipients, {run.mode},"
        f" db {sys_db(baseline)}, MTA {run.mta_url}"
    )
    print(
        f"setup: import {run.import_s:.2f} s ({run.recipients / run.import_s:,.0f} profiles/s),"
        f" create {run.create_s * 1000:.0f} ms"
    )
    print(f"prepare:  {run.prepare_s:6.2f} s  ({run.to_send / run.prepare_s:,.0f} logs/s)")
    print(
        f"engine:   {run.relayed_s:6.2f} s  confirmSend -> processed == toSend"
        f"  = {run.rate:,.0f} msgs/s"
        f"  (client saw it at {run.relayed_seen_s:.2f} s; confirmSend answered in"
        f" {run.confirm_request_s * 1000:.0f} ms; {run.snapshots} snapshots)"
    )
    print(
        f"          {run.sent_s:6.2f} s  confirmSend -> status SENT (sentAt)"
        f"  (client saw it at {run.sent_seen_s:.2f} s)"
    )
    print(
        f"          {run.cpu_s:6.2f} s  CPU time of this process meanwhile (both threads);"
        f" load average {run.load[0]:.2f} before, {run.load[1]:.2f} after"
    )
    if run.feedback_events is not None:
        print(f"          {run.feedback_events} feedback events recorded by the end")
    print(
        f"baseline: {baseline.total_s:6.2f} s  {baseline.kind}: insert {baseline.insert_s:.2f} s"
        f" + update in batches of {run.batch} {baseline.update_s:.2f} s"
        f"  = {run.recipients / baseline.total_s:,.0f} msgs/s"
        + (f"  (synchronous={baseline.synchronous})" if baseline.synchronous else "")
    )
    print(f"ratio:    {ratio:6.2f} x  (engine relay time / baseline total)")
    if run.profile_text:
        print("\n" + run.profile_text)
    sys.stdout.flush()


def sys_db(baseline: Baseline) -> str:
    return "sqlite" if baseline.kind == "sqlite3" else "postgres"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per batch size; the table keeps the fastest"
    )
    parser.add_argument("--batch-size", default="1000", help="one size, or several: 500,1000,2000")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--feedback-mode", choices=["LEGACY", "EFS"], default="LEGACY")
    parser.add_argument(
        "--mta-url",
        default=DEFAULT_MTA,
        help="to split the cost: capture:// (relay only, no feedback),"
        " simulator://?delay=0&seed=1&soft=0 (feedback without soft-bounce retries)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile the confirm -> SENT window (cProfile of the event loop + sqlite3 time by"
        " statement in aiosqlite's thread); a profiled run is slower than a plain one",
    )
    args = parser.parse_args()
    batches = [int(b) for b in str(args.batch_size).split(",") if b.strip()]
    print(f"machine: {machine()}")
    print(f"command: {command_line()}")
    if args.profile:
        print("=== profiled run: its figures are slower than real because of the profiler ===")
    results = []
    for batch in batches:
        runs = []
        for _ in range(args.repeat):
            baseline, run = await one(args, batch, profile=args.profile)
            print_run(baseline, run)
            runs.append((baseline, run))
        results.append(min(runs, key=lambda r: r[1].relayed_s))
    best = f" (fastest of {args.repeat} runs)" if args.repeat > 1 else ""
    print(f"\n{args.recipients:,} recipients, {args.db}, {args.feedback_mode}, MTA {args.mta_url}")
    print(f"| batch{best} | prepare s | relay s | msgs/s | to SENT s | CPU s |", end="")
    print(" baseline s (ins + upd) | ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for baseline, run in results:
        print(
            f"| {run.batch} | {run.prepare_s:.2f} | {run.relayed_s:.2f} | {run.rate:,.0f} |"
            f" {run.sent_s:.2f} | {run.cpu_s:.2f} | {baseline.total_s:.2f}"
            f" ({baseline.insert_s:.2f} + {baseline.update_s:.2f}) |"
            f" {run.relayed_s / baseline.total_s:.1f}x |"
        )


if __name__ == "__main__":
    asyncio.run(main())
