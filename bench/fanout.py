"""Benchmark of live progress: deploymentProgress latency to 100 and 1,000 subscribers.

    .venv/bin/python bench/fanout.py                                 # 100 and 1,000, 0.25 s and 0
    .venv/bin/python bench/fanout.py --subscribers 100 --intervals 0.25 --duration 5

The busy delivery: the real server (`python -m server serve`, PRODUCTION=true, a fresh SQLite
file, MTA_URL=capture://, FEEDBACK_MODE=EFS) sends one delivery to enough recipients; capture
reports nothing, so every log waits PENDING. Then, while S subscribers watch it, this process
posts signed `delivered` reports to `POST /mta/feedback` at a steady pace (`--rate` batches a
second of `--batch` events, 20 x 5 by default): each batch commits, raises `sent` by `--batch`
and publishes the delivery's bus event, so the delivery changes 20 times a second.

Subscribers: S graphql-transport-ws connections (the `websockets` library), each
authenticated in connection_init and subscribed once to `deploymentProgress` with a dashboard's
selection (status, at, eleven KPI fields, delivery { id label }), spread over client processes
of at most `--per-process` connections (separate processes: their CPU is not the server's).
Each client only stamps and stores a message as it arrives (time.time(), the raw text) and
parses everything after the run, so the stamp is taken as early as a Python client can.

Two latencies, both on the machine's one wall clock (server, clients and driver run here):
- fan-out: arrival at a subscriber - the snapshot's own `at` (the server's clock just after the
  progress watcher read the delivery), over every (snapshot, subscriber): the cost of handing
  one snapshot to S subscribers (strawberry executing the selection for each, JSON, the
  WebSocket write, the client's read);
- end to end: for each feedback batch and each subscriber, arrival of the first snapshot whose
  `sent` includes the batch - the moment the batch's POST was sent: webhook, commit, bus event,
  the coalescing wait (up to PROGRESS_INTERVAL_SECONDS, 0.25 s by default), the read, and the
  fan-out.
Each is measured at the default interval and at 0 (`--intervals`): the difference is the
coalescing's share. Batches are posted on schedule without waiting for the previous answer
(an open loop), so a server busy with its fan-out shows as latency, not as fewer changes; the
POSTs' own round trip is printed too: it is what the fan-out costs the rest of the server.

Baseline, same run: `bare_strawberry:app` (plain strawberry, same uvicorn defaults), whose
`deploymentProgress` hands one shared in-memory snapshot to every subscriber (asyncio
Condition, notify_all) when this process posts `/tick`: the same subscribers and clients,
`--baseline-rate` ticks a second (4: the rate of snapshots at the default 0.25 s interval), so
the fan-out without the database, the bus, the watcher and the real types.

Columns: msgs/sub = snapshots each subscriber received; CPU us/msg = the server's CPU time over
the window divided by the messages it sent (for the real server it includes the feedback work);
queued % = the share of the window the server's event loop spent runnable but waiting for a
CPU (other processes on the machine).
"""

import argparse
import asyncio
import json
import math
import multiprocessing
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
from harness import (
    Client,
    ServerProcess,
    command_line,
    cpu_wait_seconds,
    environment,
    import_profiles,
    machine,
    operator_token,
    percentile,
    raise_open_files_limit,
    running_server,
    running_uvicorn,
    sending_logs,
    ws_connect,
)

from server.http.feedback import sign

SECRET = "bench-fanout-secret"
BODY = '<p>Hello</p><a href="https://example.com/offer">Offer</a>'
KPIS = (
    "toSend processed sent pending failed deliveredRate bouncesAndErrorsRate opens clicks"
    " openRate clickThroughRate"
)
PROGRESS = (
    "subscription($id: ID!) { deploymentProgress(deliveryId: $id) {"
    f" at status kpis {{ {KPIS} }} delivery {{ id label }} }} }}"
)
SETTLE = 3.0  # seconds after the last answer for the last snapshots to arrive
PROBE_EVERY = 0.02  # seconds between two GET /health of the probe


# ---- subscribers (each client process) -------------------------------------------------------


async def _subscribe(base_url: str, token: str, delivery_id: str, count: int, deflate: bool) -> Any:
    """A socket with `count` subscriptions (ids 1..count) to the delivery, each past its
    first snapshot."""
    ws = await ws_connect(base_url, token, deflate=deflate)
    for op_id in range(1, count + 1):
        payload = {"query": PROGRESS, "variables": {"id": delivery_id}}
        await ws.send(json.dumps({"id": str(op_id), "type": "subscribe", "payload": payload}))
    for _ in range(count):
        first = json.loads(await asyncio.wait_for(ws.recv(), 120))
        if first.get("type") != "next" or first["payload"].get("errors"):
            raise RuntimeError(f"the subscription failed: {first}")
    return ws


async def _clients(
    pipe: Connection,
    base_url: str,
    token: str,
    delivery_id: str,
    sockets_of: list[int],
    deflate: bool,
) -> None:
    gate = asyncio.Semaphore(50)  # handshakes in flight

    async def one(count: int) -> Any:
        async with gate:
            return await _subscribe(base_url, token, delivery_id, count, deflate)

    sockets = await asyncio.gather(*(one(count) for count in sockets_of))
    received: list[list[tuple[float, str]]] = [[] for _ in sockets]

    async def listen(ws: Any, out: list[tuple[float, str]]) -> None:
        async for message in ws:
            out.append((time.time(), message))

    listeners = [
        asyncio.create_task(listen(ws, out)) for ws, out in zip(sockets, received, strict=True)
    ]
    pipe.send("ready")
    cpu = time.process_time()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, pipe.recv)  # "stop"
    cpu = time.process_time() - cpu
    for task in listeners:
        task.cancel()
    await asyncio.gather(*listeners, return_exceptions=True)
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    pipe.send((cpu, [each for out in received for each in _parse(out)]))


def _parse(messages: list[tuple[float, str]]) -> list[list[tuple[float, float, int]]]:
    """For each subscription of a socket: (arrival, the snapshot's `at`, its `sent`) for each
    of its `next` messages."""
    by_id: dict[str, list[tuple[float, float, int]]] = {}
    for arrival, text in messages:
        message = json.loads(text)
        if message.get("type") != "next":
            continue
        progress = message["payload"]["data"]["deploymentProgress"]
        at = datetime.fromisoformat(progress["at"]).timestamp()
        by_id.setdefault(message["id"], []).append((arrival, at, int(progress["kpis"]["sent"])))
    return list(by_id.values())


def _client_process(
    pipe: Connection,
    base_url: str,
    token: str,
    delivery_id: str,
    sockets_of: list[int],
    deflate: bool,
) -> None:
    raise_open_files_limit(len(sockets_of) + 100)
    try:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_clients(pipe, base_url, token, delivery_id, sockets_of, deflate))
    except BaseException as error:
        pipe.send(f"failed: {error!r}")  # the parent stops waiting and says why
        raise


# ---- the run ---------------------------------------------------------------------------------


@dataclass
class Run:
    server: str
    setting: str  # "interval 0.25 s" or "4 ticks/s"
    subscribers: int
    changes: int  # feedback batches (or ticks) posted
    messages: int  # snapshots received by all subscribers, after the first
    fanout: list[float]
    end_to_end: list[float]
    missing: int  # (batch, subscriber) pairs never seen
    round_trips: list[float]  # of the feedback POSTs (or ticks)
    server_cpu: float
    server_wait: float  # its event loop's time runnable but waiting for a CPU
    client_cpu: float  # all client processes together
    seconds: float
    per_socket: int = 1
    health_connecting: list[float] = field(default_factory=list)  # /health while subscribing
    health_changing: list[float] = field(default_factory=list)  # /health while changes go out
    change_cpu: float = float("nan")  # server CPU seconds for one change alone (fan-out incl.)

    @property
    def snapshots(self) -> float:
        """Snapshots the server published (each subscriber received about this many)."""
        return self.messages / self.subscribers

    @property
    def cpu_per_change_ms(self) -> float:
        """The server's CPU per published snapshot: everything it did in the window (the
        feedback posts too) over the snapshots, so an upper bound of the fan-out's cost."""
        return self.server_cpu * 1000 / max(self.snapshots, 1)


Change = tuple[float, int]  # (when this process sent it, the `sent` figure that includes it)


async def post_changes(
    server: ServerProcess, kind: str, args: argparse.Namespace, rate: float, work: Any
) -> tuple[list[Change], list[float]]:
    """Feedback batches (real server) or ticks (bare app) at `rate` a second for --duration,
    each sent on schedule without waiting for the previous answer (an open loop: a saturated
    server shows as latency, not as fewer changes). Also the answers' round trips."""
    count = int(args.duration * rate)
    changes: list[Change | None] = [None] * count
    round_trips: list[float] = []

    async def post(http: httpx.AsyncClient, k: int) -> None:
        sent_at = time.time()
        if kind == "server":
            ids, base, run = work
            chunk = ids[k * args.batch : (k + 1) * args.batch]
            now = datetime.now(UTC).isoformat()
            events = [
                {"eventId": f"{run}-{k}-{i}", "messageId": m, "type": "delivered"}
                | {"timestamp": now}
                for i, m in enumerate(chunk)
            ]
            body = json.dumps({"events": events}).encode()
            answer = await http.post(
                "/mta/feedback", content=body, headers={"X-Feedback-Signature": sign(SECRET, body)}
            )
            if answer.status_code != 200 or answer.json().get("accepted") != len(chunk):
                raise SystemExit(f"feedback batch {k}: {answer.status_code} {answer.text}")
            changes[k] = (sent_at, base + (k + 1) * args.batch)
        else:
            answer = await http.post("/tick", json={"sent": k + 1})
            answer.raise_for_status()
            changes[k] = (sent_at, k + 1)
        round_trips.append(time.time() - sent_at)

    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=120, limits=limits) as http:
        start = time.perf_counter()
        tasks = []
        for k in range(count):
            await asyncio.sleep(max(0.0, start + k / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(post(http, k)))
        await asyncio.gather(*tasks)
    return [c for c in changes if c is not None], round_trips


def measure(
    server: ServerProcess,
    kind: str,
    setting: str,
    n: int,
    token: str,
    delivery_id: str,
    args: argparse.Namespace,
    rate: float,
    work: Any,
) -> Run:
    context = multiprocessing.get_context("spawn")
    per_socket = min(args.per_socket, n)
    sockets = [per_socket] * (n // per_socket) + ([n % per_socket] if n % per_socket else [])
    processes = max(1, math.ceil(n / args.per_process))
    health = HealthProbe(server.base_url)
    pipes, children = [], []
    for part in range(processes):
        mine, theirs = context.Pipe()
        share = sockets[part::processes]
        child = context.Process(
            target=_client_process,
            args=(theirs, server.base_url, token, delivery_id, share, not args.no_deflate),
        )
        child.start()
        theirs.close()  # so that a dead child is an EOFError here, not a wait forever
        pipes.append(mine)
        children.append(child)
    connecting, connect_cpu = time.perf_counter(), server.cpu_seconds()
    for pipe in pipes:
        answer = pipe.recv()
        if answer != "ready":
            for child in children:
                child.terminate()
            raise SystemExit(f"a client process {answer}")
    connected = time.perf_counter() - connecting
    connect_cpu = server.cpu_seconds() - connect_cpu  # and the /health probe's
    health_connecting = health.take()
    time.sleep(0.5)  # the first snapshots are out of the way
    change_cpu = isolated_changes(server, kind, args, work)
    if work is not None:  # the isolated changes raised `sent` (they use the slice's last ids)
        ids, base, run = work
        work = (ids, base + args.isolated * args.batch, run)
    health.take()
    cpu_before, wait_before = server.cpu_seconds(), cpu_wait_seconds(server.process.pid)
    started = time.perf_counter()
    changes, round_trips = asyncio.run(post_changes(server, kind, args, rate, work))
    time.sleep(SETTLE)
    health_changing = health.stop()
    server_cpu = server.cpu_seconds() - cpu_before
    server_wait = cpu_wait_seconds(server.process.pid) - wait_before
    seconds = time.perf_counter() - started
    for pipe in pipes:
        pipe.send("stop")
    received: list[list[tuple[float, float, int]]] = []
    client_cpu = 0.0
    for pipe in pipes:
        cpu, snapshots = pipe.recv()
        client_cpu += cpu
        received += snapshots
    for child in children:
        child.join()
    print(
        f"  ({n} subscribers connected in {connected:.1f} s, server CPU"
        f" {connect_cpu * 1e6 / n:.0f} us per subscription, disconnected and parsed in"
        f" {time.perf_counter() - started - seconds:.1f} s)",
        flush=True,
    )

    first_change = changes[0][0]
    fanout, end_to_end, messages, missing = [], [], 0, 0
    for snapshots in received:
        # only what the changes caused: snapshots read after the first change was sent
        snapshots = [s for s in snapshots if s[1] >= first_change]
        messages += len(snapshots)
        fanout += [arrival - at for arrival, at, _ in snapshots]
        i = 0
        for sent_at, figure in changes:
            while i < len(snapshots) and snapshots[i][2] < figure:
                i += 1
            if i == len(snapshots):
                missing += 1
            else:
                end_to_end.append(snapshots[i][0] - sent_at)
    return Run(
        server=kind,
        setting=setting,
        subscribers=n,
        changes=len(changes),
        messages=messages,
        fanout=fanout,
        end_to_end=end_to_end,
        missing=missing,
        round_trips=round_trips,
        server_cpu=server_cpu,
        server_wait=server_wait,
        client_cpu=client_cpu,
        seconds=seconds,
        per_socket=per_socket,
        health_connecting=health_connecting,
        health_changing=health_changing,
        change_cpu=change_cpu,
    )


def isolated_changes(
    server: ServerProcess, kind: str, args: argparse.Namespace, work: Any
) -> float:
    """The server's CPU for one change, alone: --isolated changes (one feedback batch, or one
    tick), --spacing seconds apart, each read and fanned out on its own; minus the CPU of as
    long a quiet period just before (keep-alive pings, the /health probe)."""
    count, spacing = args.isolated, args.spacing
    if count == 0:
        return float("nan")
    before = server.cpu_seconds()
    time.sleep(count * spacing)
    quiet = server.cpu_seconds() - before
    ids, _, run = work if work is not None else ([], 0, "")
    extra = ids[-count * args.batch :] if ids else []

    async def post_all() -> None:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=120) as http:
            for k in range(count):
                started = time.perf_counter()
                if kind == "server":
                    chunk = extra[k * args.batch : (k + 1) * args.batch]
                    now = datetime.now(UTC).isoformat()
                    events = [
                        {"eventId": f"{run}-i{k}-{i}", "messageId": m, "type": "delivered"}
                        | {"timestamp": now}
                        for i, m in enumerate(chunk)
                    ]
                    body = json.dumps({"events": events}).encode()
                    signature = {"X-Feedback-Signature": sign(SECRET, body)}
                    answer = await http.post("/mta/feedback", content=body, headers=signature)
                else:
                    answer = await http.post("/tick", json={"sent": 0})  # before the busy ticks
                answer.raise_for_status()
                await asyncio.sleep(max(0.0, started + spacing - time.perf_counter()))

    before = server.cpu_seconds()
    asyncio.run(post_all())
    busy = server.cpu_seconds() - before
    return (busy - quiet) / count


class HealthProbe:
    """GET /health in a loop (one at a time, every PROBE_EVERY s) in a thread of this process,
    from the moment it is made: how long the server keeps a cheap request waiting."""

    def __init__(self, base_url: str) -> None:
        self.base_url, self.latencies, self.running = base_url, [], True
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=60) as http:
            while self.running:
                started = time.perf_counter()
                http.get("/health").raise_for_status()
                with self.lock:
                    self.latencies.append(time.perf_counter() - started)
                time.sleep(PROBE_EVERY)

    def take(self) -> list[float]:
        with self.lock:
            taken, self.latencies = self.latencies, []
        return taken

    def stop(self) -> list[float]:
        self.running = False
        self.thread.join()
        return self.take()


async def busy_delivery(base_url: str, token: str, recipients: int) -> tuple[str, list[str], int]:
    """A delivery sent to `recipients` (EFS, capture: every log PENDING); its id, the message
    ids and its `sent` figure."""
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as http:
        api = Client(http, token)
        await import_profiles(api, [{"email": f"fan{i}@example.com"} for i in range(recipients)])
        created = await api.gql(
            "mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) { id } }",
            {
                "i": {
                    "label": "fan-out bench",
                    "channel": "EMAIL",
                    "subject": "Hello",
                    "body": BODY,
                    "audience": {"allProfiles": True},
                    "feedbackMode": "EFS",
                }
            },
        )
        delivery_id = created["createDelivery"]["id"]
        for mutation in ("prepareDelivery(id: $id)", "confirmSend(deliveryId: $id)"):
            await api.gql(f"mutation($id: ID!) {{ {mutation} {{ id }} }}", {"id": delivery_id})
        deadline = time.monotonic() + 120
        while True:
            data = await api.gql(
                "query($id: ID!) { delivery(id: $id) { status kpis { sent } } }",
                {"id": delivery_id},
            )
            if data["delivery"]["status"] == "SENT":
                break
            if time.monotonic() > deadline:
                raise SystemExit("the delivery was not relayed within 120 s")
            await asyncio.sleep(0.2)
        logs = await sending_logs(api, delivery_id, "messageId")
        return delivery_id, [log["messageId"] for log in logs], data["delivery"]["kpis"]["sent"]


def ms(values: list[float], p: float) -> str:
    return f"{percentile(values, p) * 1000:.1f}"


def health(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{ms(values, 50)}/{ms(values, 99)}/{max(values) * 1000:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--subscribers", default="100,1000", help="comma-separated counts")
    parser.add_argument(
        "--intervals", default="0.25,0", help="PROGRESS_INTERVAL_SECONDS values, comma-separated"
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of changes per run")
    parser.add_argument("--rate", type=float, default=20.0, help="feedback batches a second")
    parser.add_argument("--batch", type=int, default=5, help="delivered events per batch")
    parser.add_argument("--per-process", type=int, default=500, help="subscribers per client")
    parser.add_argument(
        "--per-socket",
        type=int,
        default=1,
        help="subscriptions per WebSocket (the issue's flood: 100, with --subscribers 6000)",
    )
    parser.add_argument(
        "--baseline-rate", type=float, default=4.0, help="the bare app's snapshots a second"
    )
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--isolated", type=int, default=10, help="single changes timed alone before the load"
    )
    parser.add_argument("--spacing", type=float, default=1.0, help="seconds between those")
    parser.add_argument(
        "--no-deflate",
        action="store_true",
        help="clients do not offer permessage-deflate (browsers do)",
    )
    parser.add_argument(
        "--server-deflate",
        action="store_true",
        help="WS_PER_MESSAGE_DEFLATE=true on both servers (off by default, as `serve` is)",
    )
    args = parser.parse_args()
    counts = [int(x) for x in args.subscribers.split(",")]
    intervals = [float(x) for x in args.intervals.split(",")]
    raise_open_files_limit(2 * max(counts) + 200)

    runs_needed = len(counts) * len(intervals)
    per_run = (int(args.duration * args.rate) + args.isolated) * args.batch
    recipients = per_run * runs_needed + 100
    print(f"{command_line()}\nmachine: {machine()}; {recipients} recipients")
    results: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="fanout-bench-") as tmp:
        workdir = Path(tmp)
        base_env = environment(
            DATABASE_URL=f"sqlite://{workdir / 'bench.sqlite3'}",
            MTA_URL="capture://",
            FEEDBACK_MODE="EFS",
            FEEDBACK_SECRET=SECRET,
            PRODUCTION="true",
            # One operator on one address opens every socket: let them all in (the limits'
            # own refusals are in the tests).
            WS_MAX_SOCKETS_PER_OPERATOR="100000",
            WS_MAX_SOCKETS_PER_CLIENT="100000",
            # both servers (harness.running_uvicorn too) compress only when asked
            WS_PER_MESSAGE_DEFLATE="true" if args.server_deflate else "false",
        )
        token = operator_token(base_env, workdir)
        delivery_id, sent = "", 0
        ids: list[str] = []
        used = 0
        for interval in intervals:
            env = {**base_env, "PROGRESS_INTERVAL_SECONDS": str(interval)}
            with running_server(env, workdir, f"server-{interval:g}.log") as server:
                if not delivery_id:
                    delivery_id, ids, sent = asyncio.run(
                        busy_delivery(server.base_url, token, recipients)
                    )
                for n in counts:
                    work = (ids[used : used + per_run], sent, f"r{used}")
                    setting = f"interval {interval:g} s"
                    run = measure(
                        server, "server", setting, n, token, delivery_id, args, args.rate, work
                    )
                    used, sent = used + per_run, sent + per_run
                    report(run)
                    results.append(run)
        if not args.no_baseline:
            with running_uvicorn("bare_strawberry:app", base_env, workdir) as bare:
                rate = args.baseline_rate
                for n in counts:
                    setting = f"{rate:g} ticks/s"
                    run = measure(bare, "bare", setting, n, token, "1", args, rate, None)
                    report(run)
                    results.append(run)

    print()
    print(
        f"{'server':<25} {'subs':>5} {'/sock':>5} {'msgs/sub':>8} {'fan-out p50':>11}"
        f" {'p99 ms':>7} {'end-to-end p50':>14} {'p99 ms':>7} {'POST p50':>8} {'p99 ms':>7}"
        f" {'missing':>7} {'srv CPU %':>9} {'queued %':>8} {'CPU us/msg':>10}"
        f" {'CPU ms/change':>13} {'alone':>6} {'health p50/p99/max ms subscribing':>33}"
        f" {'changing':>16}"
    )
    for r in results:
        print(
            f"{r.server + ', ' + r.setting:<25} {r.subscribers:>5} {r.per_socket:>5}"
            f" {r.snapshots:>8.1f} {ms(r.fanout, 50):>11} {ms(r.fanout, 99):>7}"
            f" {ms(r.end_to_end, 50):>14} {ms(r.end_to_end, 99):>7}"
            f" {ms(r.round_trips, 50):>8} {ms(r.round_trips, 99):>7} {r.missing:>7}"
            f" {100 * r.server_cpu / r.seconds:>9.0f} {100 * r.server_wait / r.seconds:>8.0f}"
            f" {r.server_cpu * 1e6 / max(r.messages, 1):>10.0f} {r.cpu_per_change_ms:>13.1f}"
            f" {r.change_cpu * 1000:>6.1f}"
            f" {health(r.health_connecting):>33} {health(r.health_changing):>16}"
        )
    print()
    targets = {100: 0.050, 1000: 0.500}
    for r in results:
        if r.server == "server" and r.setting == "interval 0.25 s" and r.subscribers in targets:
            limit = targets[r.subscribers]
            p99 = percentile(r.fanout, 99)
            verdict = "met" if p99 < limit else "MISSED"
            print(
                f"target: fan-out p99 under {limit * 1000:g} ms at {r.subscribers} subscribers"
                f" (default interval): {verdict} ({p99 * 1000:.1f} ms)"
            )
    return 0


def report(r: Run) -> None:
    print(
        f"  {r.server}, {r.setting}, {r.subscribers} subscribers: fan-out p50"
        f" {ms(r.fanout, 50)} p99 {ms(r.fanout, 99)} ms, end to end p50 {ms(r.end_to_end, 50)}"
        f" p99 {ms(r.end_to_end, 99)} ms, {r.messages / r.subscribers:.1f} snapshots each,"
        f" CPU: server {100 * r.server_cpu / r.seconds:.0f} %,"
        f" clients {100 * r.client_cpu / r.seconds:.0f} %; server waited for a CPU"
        f" {100 * r.server_wait / r.seconds:.0f} % of the time; POST round trip p50"
        f" {ms(r.round_trips, 50)} p99 {ms(r.round_trips, 99)} ms; CPU per change"
        f" {r.cpu_per_change_ms:.1f} ms under load, {r.change_cpu * 1000:.1f} ms alone;"
        f" /health p50/p99/max {health(r.health_connecting)} ms while subscribing,"
        f" {health(r.health_changing)} ms while changing",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
