"""Benchmark of GraphQL over HTTP: requests/s and latency of a simple query and a 50-delivery page.

    .venv/bin/python bench/http_query.py                          # 32 connections, 6 s a load
    .venv/bin/python bench/http_query.py --connections 8,32 --duration 5

Servers, each in its own process and served the way a user gets it:
- the real one: `python -m server serve` (uvicorn's defaults: httptools, uvloop, access log on)
  with PRODUCTION=true and the query limits at their defaults, a fresh SQLite file, capture://;
- the baselines: `bare_strawberry:app` (strawberry.asgi.GraphQL on a plain schema of the same
  shapes, no extension, no authentication, no database: every request parsed and validated)
  and `bare_strawberry:cached_app` (the same with strawberry's ParserCache and ValidationCache,
  as the real server caches validation), under `python -m uvicorn` with the same defaults.

Queries, the same text on every server, all sent with a token (the real server refuses a
request without one before parsing it, issue 11):
- typename: `{ __typename }`: what HTTP, the middleware, the token cache and strawberry cost
  before any database work (a diagnostic row);
- simple: `{ me { id } }` (the real server authenticates the bearer token: one indexed SELECT
  per TOKEN_CACHE_SECONDS);
- me: `{ me { name } }`, the baseline of the next two (issue 11, finding 3);
- worst: the costliest valid document within the default limits (MAX_QUERY_TOKENS = 1,000):
  `query Q0 { me { id } } query Q1 { me { id } } ...` up to the token limit, run with
  `operationName: "Q0"`. It is longer than 2,048 characters, so it is parsed and validated on
  every request (the caches keep shorter ones);
- refused: the costliest refused one found, `query($v0: Int, $v1: Int, ...) { me { id } }` up
  to the token limit (graphql-core reports 100 unused variables, then stops);
- page: `deliveries(first: 50)` with id, label, status, totalCount, pageInfo and the eleven KPI
  fields of each delivery (the real server reads 60 prepared deliveries: a COUNT and a SELECT);
- logs: the sending-logs page, `sendingLogs(deliveryId: "1", first: 50)` with seven fields of
  each log (the delivery has 60; as an administrator);
- history: a profile's history, `profile(id: "1") { history(first: 50) { ... } }` (60
  messages).

Load generator: a separate process (so that its CPU is not the server's), asyncio on uvloop
with raw HTTP/1.1 keep-alive sockets and prebuilt requests (as little client CPU per request
as Python allows, on CPUs the server shares). C connections each send a request, read the
whole answer, and send the next (a closed loop: the server is kept busy, latency includes
queueing behind the other C-1 connections). A request counts when its answer arrives inside
the window after a 1 s warm-up; every answer must be 200 without `errors` (with `errors`, for
`refused`). The client's own CPU
use is printed: on 2 CPUs it competes with the server, and a client near 100 % of a core would
be the bottleneck.

Columns: server CPU per request (all its threads, over the window), and "queued": the share of
the window the server's event loop spent runnable but waiting for a CPU (other processes on
the machine), which lowers req/s and raises latency without being the server's cost.
"""

import argparse
import asyncio
import json
import multiprocessing
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
from graphql.language import Lexer, Source, TokenKind
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
    running_server,
    running_uvicorn,
)

KPIS = (
    "toSend processed sent pending failed deliveredRate bouncesAndErrorsRate opens clicks"
    " openRate clickThroughRate"
)
MAX_TOKENS = 1000  # the server's default MAX_QUERY_TOKENS


def tokens(document: str) -> int:
    lexer, count = Lexer(Source(document)), 0
    while lexer.advance().kind != TokenKind.EOF:
        count += 1
    return count


def filled(part: Any, head: str = "", tail: str = "") -> str:
    """head + part(0) + part(1) + ... + tail, as many parts as MAX_TOKENS allows."""
    document, i = head + tail, 0
    while tokens(head + "".join(part(k) for k in range(i + 1)) + tail) <= MAX_TOKENS:
        i += 1
        document = head + "".join(part(k) for k in range(i)) + tail
    return document


QUERIES = {
    "typename": "{ __typename }",
    "simple": "{ me { id } }",
    "me": "{ me { name } }",
    "worst": filled(lambda i: f"query Q{i} {{ me {{ id }} }} "),
    "refused": filled(lambda i: f"$v{i}: Int ", "query(", ") { me { id } }"),
    "page": "{ deliveries(first: 50) { totalCount pageInfo { hasNextPage endCursor }"
    f" edges {{ node {{ id label status kpis {{ {KPIS} }} }} }} }} }}",
    "logs": '{ sendingLogs(deliveryId: "1", first: 50) { totalCount pageInfo { hasNextPage'
    " endCursor } edges { node { id address status retries eventAt excluded failureReason } } } }",
    "history": '{ profile(id: "1") { id email history(first: 50) { id address status retries'
    " eventAt excluded } } }",
}
OPERATION_NAMES = {"worst": "Q0"}
# the pages, and where their rows are in an answer
PAGES = {
    "page": lambda data: data["deliveries"]["edges"],
    "logs": lambda data: data["sendingLogs"]["edges"],
    "history": lambda data: data["profile"]["history"],
}
REFUSED = {"refused"}  # answers with `errors`, on purpose
BODY = '<p>Hello</p><a href="https://example.com/offer">Offer</a>'
WARM_UP = 1.0
BASELINES = [("bare", "bare_strawberry:app"), ("bare+cache", "bare_strawberry:cached_app")]
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


# ---- the load generator (runs in a child process) ------------------------------------------


def raw_request(
    host: str, port: int, token: str | None, query: str, operation: str | None = None
) -> bytes:
    payload = {"query": query} | ({"operationName": operation} if operation else {})
    body = json.dumps(payload).encode()
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    head = (
        f"POST /graphql HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}"
        f"Content-Type: application/json\r\nAccept: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _connection(
    host: str,
    port: int,
    request: bytes,
    start: float,
    end: float,
    out: dict[str, Any],
    refused: bool,
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    latencies: list[float] = out["latencies"]
    try:
        while True:
            sent = time.perf_counter()
            if sent >= end:
                return
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            match = CONTENT_LENGTH.search(head)
            if match is None:
                raise RuntimeError(f"an answer without Content-Length: {head[:200]!r}")
            body = await reader.readexactly(int(match.group(1)))
            done = time.perf_counter()
            if start <= done < end:
                latencies.append(done - sent)
                if not head.startswith(b"HTTP/1.1 200") or (b'"errors"' in body) != refused:
                    out["errors"] += 1
                    if out["errors"] == 1:
                        out["first_error"] = (head + body)[:500].decode(errors="replace")
    finally:
        writer.close()


async def _load(
    host: str, port: int, request: bytes, connections: int, duration: float, refused: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {"latencies": [], "errors": 0, "first_error": None}
    start = time.perf_counter() + WARM_UP
    end = start + duration
    cpu = 0.0

    async def measure_cpu() -> None:
        nonlocal cpu
        await asyncio.sleep(max(0.0, start - time.perf_counter()))
        before = time.process_time()
        await asyncio.sleep(max(0.0, end - time.perf_counter()))
        cpu = time.process_time() - before

    await asyncio.gather(
        measure_cpu(),
        *(_connection(host, port, request, start, end, out, refused) for _ in range(connections)),
    )
    out["client_cpu"] = cpu
    out["window"] = duration
    return out


def _load_process(
    pipe: Connection,
    host: str,
    port: int,
    request: bytes,
    connections: int,
    duration: float,
    refused: bool,
) -> None:
    load = _load(host, port, request, connections, duration, refused)
    try:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            result = runner.run(load)
    except ImportError:
        result = asyncio.run(load)
    pipe.send(result)
    pipe.close()


# ---- the bench -------------------------------------------------------------------------------


@dataclass
class Load:
    server: str
    query: str
    connections: int
    requests: int
    window: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_cpu: float
    server_wait: float
    client_cpu: float

    @property
    def rate(self) -> float:
        return self.requests / self.window

    @property
    def cpu_us(self) -> float:
        return self.server_cpu * 1e6 / max(self.requests, 1)


def run_load(
    server: ServerProcess,
    name: str,
    query: str,
    token: str | None,
    connections: int,
    duration: float,
) -> Load:
    host, port = server.base_url.removeprefix("http://").split(":")
    kind = next(k for k, v in QUERIES.items() if v == query)
    request = raw_request(host, int(port), token, query, OPERATION_NAMES.get(kind))
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_load_process,
        args=(sender, host, int(port), request, connections, duration, kind in REFUSED),
    )
    child.start()
    time.sleep(WARM_UP)  # the server's CPU is counted over the same window as the requests
    cpu_before, wait_before = server.cpu_seconds(), cpu_wait_seconds(server.process.pid)
    time.sleep(duration)
    server_cpu = server.cpu_seconds() - cpu_before
    server_wait = cpu_wait_seconds(server.process.pid) - wait_before
    result = receiver.recv()
    child.join()
    latencies = result["latencies"]
    if result["errors"]:
        print(f"  {name}: {result['errors']} bad answers, first: {result['first_error']}")
    return Load(
        name,
        query,
        connections,
        len(latencies),
        result["window"],
        percentile(latencies, 50) * 1000,
        percentile(latencies, 99) * 1000,
        result["errors"],
        server_cpu,
        server_wait,
        result["client_cpu"],
    )


def check_answer(base_url: str, token: str | None, name: str, edges: int | None) -> None:
    """One request through httpx first: the query must work (and the page hold 50 nodes), or
    be refused when it should."""
    operation = OPERATION_NAMES.get(name)
    answer = httpx.post(
        f"{base_url}/graphql",
        json={"query": QUERIES[name]} | ({"operationName": operation} if operation else {}),
        headers={"Authorization": f"Bearer {token}"} if token else {},
        timeout=30,
    ).json()
    if bool(answer.get("errors")) != (name in REFUSED):
        raise SystemExit(f"{base_url}, {name}: {str(answer)[:500]}")
    if edges is not None and len(PAGES[name](answer["data"])) != edges:
        raise SystemExit(f"{base_url}: the {name} page does not hold {edges} rows")


async def make_deliveries(base_url: str, token: str, n: int) -> None:
    """n prepared deliveries to 60 profiles each (their KPIs: toSend 60, the rest 0): each
    delivery has 60 sending logs, each profile a history of n messages."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        api = Client(http, token)
        await import_profiles(api, [{"email": f"reader{i}@example.com"} for i in range(60)])
        for i in range(n):
            created = await api.gql(
                "mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) { id } }",
                {
                    "i": {
                        "label": f"page bench {i}",
                        "channel": "EMAIL",
                        "subject": "Hello",
                        "body": BODY,
                        "audience": {"allProfiles": True},
                    }
                },
            )
            await api.gql(
                "mutation($id: ID!) { prepareDelivery(id: $id) { id } }",
                {"id": created["createDelivery"]["id"]},
            )


def measure(server: ServerProcess, label: str, token: str, args: argparse.Namespace) -> list[Load]:
    out = []
    for name in args.queries:
        check_answer(server.base_url, token, name, 50 if name in PAGES else None)
        for c in args.connections:
            load = run_load(server, label, QUERIES[name], token, c, args.duration)
            print(
                f"  {label:<10} {name:<8} c={c:<3} {load.rate:>7.0f} req/s  p50 {load.p50_ms:6.1f}"
                f" ms  p99 {load.p99_ms:6.1f} ms  errors {load.errors}",
                flush=True,
            )
            load.query = name
            out.append(load)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per load")
    parser.add_argument(
        "--connections",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[32],
        help="concurrent keep-alive connections, comma-separated for several loads",
    )
    parser.add_argument(
        "--queries",
        type=lambda s: s.split(","),
        default=["typename", "simple", "page"],
        help="typename, simple, me, worst, refused, page, logs, history",
    )
    args = parser.parse_args()

    print(f"{command_line()}\nmachine: {machine()}; load generator in its own process")
    results: list[Load] = []
    with tempfile.TemporaryDirectory(prefix="http-bench-") as tmp:
        workdir = Path(tmp)
        env = environment(
            DATABASE_URL=f"sqlite://{workdir / 'bench.sqlite3'}",
            MTA_URL="capture://",
            FEEDBACK_SECRET="bench-http-secret",
            PRODUCTION="true",
        )
        token = operator_token(env, workdir)
        with running_server(env, workdir) as server:
            asyncio.run(make_deliveries(server.base_url, token, 60))
            results += measure(server, "server", token, args)
        for label, target in BASELINES:
            with running_uvicorn(target, env, workdir, f"{label}.log") as bare:
                results += measure(bare, label, token, args)

    print()
    print(
        f"{'server':<11} {'query':<8} {'conns':>5} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7}"
        f" {'srv CPU us/req':>14} {'queued %':>8} {'client CPU %':>12} {'vs bare+cache':>13}"
    )
    cached = {(r.query, r.connections): r.rate for r in results if r.server == "bare+cache"}
    for r in results:
        ratio = r.rate / cached[(r.query, r.connections)]
        print(
            f"{r.server:<11} {r.query:<8} {r.connections:>5} {r.rate:>7.0f} {r.p50_ms:>7.1f}"
            f" {r.p99_ms:>7.1f} {r.cpu_us:>14.0f} {100 * r.server_wait / r.window:>8.0f}"
            f" {100 * r.client_cpu / r.window:>12.0f} {ratio:>12.2f}x"
        )
    simple = [r for r in results if r.server == "server" and r.query == "simple"]
    if simple:
        best = max(r.rate for r in simple)
        verdict = "met" if best >= 2000 else "MISSED"
        print(f"\ntarget: simple query >= 2,000 req/s with the limits on: {verdict} ({best:.0f})")
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
