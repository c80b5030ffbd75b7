"""What the benchmarks share: the real server in a subprocess, a GraphQL client, /proc figures.

Each bench runs `python -m server serve` on a fresh database with its settings passed as
environment variables; `environment` starts from this process's environment minus every
server setting, so a variable left in the caller's shell cannot change what is measured.
"""

import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import websockets
import websockets.asyncio.client
from tortoise import Tortoise

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from server.db import apply_migrations, tortoise_config  # noqa: E402
from server.settings import Settings  # noqa: E402

IMPORT_CHUNK = 10_000  # profiles per importProfiles request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def command_line() -> str:
    """The command as typed, for the report (`python bench/x.py --option ...`)."""
    return " ".join([Path(sys.executable).name, *sys.argv])


def machine() -> str:
    return f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()})"


def environment(**values: str) -> dict[str, str]:
    """This process's environment without any server setting, plus `values` (NAME="value");
    the project is first on PYTHONPATH so the server runs from any working directory."""
    settings = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.upper() not in settings}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    env.update(values)
    return env


def operator_token(
    env: dict[str, str], workdir: Path, roles: Sequence[str] = ("ADMINISTRATION",)
) -> str:
    """`python -m server operator create bench --role ...` on the bench's database; its token."""
    made = subprocess.run(
        [sys.executable, "-m", "server", "operator", "create", "bench"]
        + [x for role in roles for x in ("--role", role)],
        cwd=workdir,  # no stray .env file is read
        env=env,
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        raise RuntimeError(f"operator create failed: {made.stderr[-2000:]}")
    return made.stdout.strip().splitlines()[-1]


@dataclass
class ServerProcess:
    process: "subprocess.Popen[bytes]"
    base_url: str
    log_path: Path

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


@contextlib.contextmanager
def running_server(
    env: dict[str, str], workdir: Path, log_name: str = "server.log", start_timeout: float = 60
) -> Iterator[ServerProcess]:
    """`python -m server serve` on a free port, answering /health; stopped on exit by SIGTERM,
    which uvicorn takes as a graceful stop (requests drained, then the lifespan's shutdown, so
    queued writes such as the tracking recorder's are flushed). Any failure prints the end of
    the server's log, which lives in a temporary directory."""
    port = free_port()
    command = [sys.executable, "-m", "server", "serve", "--port", str(port)]
    with _serving(command, port, env, workdir, log_name, start_timeout, 120) as server:
        yield server


@contextlib.contextmanager
def _serving(
    command: list[str],
    port: int,
    env: dict[str, str],
    workdir: Path,
    log_name: str,
    start_timeout: float,
    stop_timeout: float,
) -> Iterator[ServerProcess]:
    """Start `command` (a server on `port`), wait for GET /health, SIGTERM it on exit."""
    log_path = workdir / log_name
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    server = ServerProcess(process, f"http://127.0.0.1:{port}", log_path)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{server.base_url}/health", timeout=1).status_code == 200:
                    break
            if process.poll() is not None:
                raise RuntimeError(f"{command[2:4]} exited at start-up")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer within {start_timeout:g} s")
            time.sleep(0.05)
        yield server
    except BaseException:
        print(f"--- the end of {log_path.name}:\n{server.log_tail()}", file=sys.stderr)
        raise
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(stop_timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            raise RuntimeError(
                f"the server did not stop within {stop_timeout:g} s; its log ends:\n"
                + server.log_tail(20)
            ) from None


class Client:
    """GraphQL over HTTP as one operator (bearer token); an error answer raises."""

    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self.http, self.token = http, token

    async def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(json.dumps(body["errors"])[:2000])
        return body["data"]  # type: ignore[no-any-return]


async def import_profiles(client: Client, profiles: list[dict[str, Any]]) -> None:
    """importProfiles in chunks of IMPORT_CHUNK; each profile must be new."""
    for first in range(0, len(profiles), IMPORT_CHUNK):
        chunk = profiles[first : first + IMPORT_CHUNK]
        data = await client.gql(
            "mutation($p: [ProfileInput!]!) { importProfiles(profiles: $p) { created } }",
            {"p": chunk},
        )
        assert data["importProfiles"]["created"] == len(chunk), data


async def sent_to_all(client: Client, n: int, label: str, body: str) -> str:
    """Import n new profiles, send one EFS email delivery to all of them and wait until every
    message is relayed (SENT); the delivery's id."""
    await import_profiles(client, [{"email": f"u{i}@example.com"} for i in range(n)])
    data = await client.gql(
        "mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) { id } }",
        {
            "i": {
                "label": label,
                "channel": "EMAIL",
                "subject": "Hello",
                "body": body,
                "audience": {"allProfiles": True},
                "feedbackMode": "EFS",
            }
        },
    )
    delivery_id: str = data["createDelivery"]["id"]
    await client.gql("mutation($id: ID!) { prepareDelivery(id: $id) { id } }", {"id": delivery_id})
    await client.gql(
        "mutation($id: ID!) { confirmSend(deliveryId: $id) { id } }", {"id": delivery_id}
    )
    query = "query($id: ID!) { delivery(id: $id) { status } }"
    for _ in range(3000):  # up to 10 minutes
        if (await client.gql(query, {"id": delivery_id}))["delivery"]["status"] == "SENT":
            return delivery_id
        await asyncio.sleep(0.2)
    raise TimeoutError(f"delivery {delivery_id} not SENT within 10 minutes")


async def sending_logs(client: Client, delivery_id: str, fields: str) -> list[dict[str, Any]]:
    """Every sending log of a delivery (`fields` of each node), following the cursor pages."""
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        data = await client.gql(
            "query($d: ID!, $a: String) { sendingLogs(deliveryId: $d, first: 500, after: $a) {"
            f" pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {fields} }} }} }} }}",
            {"d": delivery_id, "a": after},
        )
        page = data["sendingLogs"]
        nodes += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]


PG_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def pg(url: str) -> str:
    """The server's postgres:// URL as asyncpg spells it."""
    return url.replace("postgres://", "postgresql://", 1)


@contextlib.asynccontextmanager
async def pg_database(prefix: str = "bench") -> AsyncIterator[str]:
    """A new database on the server of PG_URL, dropped (even if in use) on exit."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg(PG_URL))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield f"{PG_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


# ---- the bare strawberry baseline, latencies, memory (http_query, fanout, ws_memory) --------


@contextlib.contextmanager
def running_uvicorn(
    target: str, env: dict[str, str], workdir: Path, log_name: str = "bare.log"
) -> Iterator[ServerProcess]:
    """`python -m uvicorn TARGET --log-level info` on a free port, with bench/ on PYTHONPATH:
    the same uvicorn options as `python -m server serve` (httptools, uvloop, websockets,
    access log, permessage-deflate as WS_PER_MESSAGE_DEFLATE says: off unless set), for a
    baseline app such as `bare_strawberry:app`; it must answer GET /health."""
    port = free_port()
    bench_dir = str(Path(__file__).resolve().parent)
    env = {**env, "PYTHONPATH": os.pathsep.join([bench_dir, env.get("PYTHONPATH", "")])}
    deflate = env.get("WS_PER_MESSAGE_DEFLATE", "false").lower() in ("1", "true", "yes", "on")
    command = [sys.executable, "-m", "uvicorn", target, "--port", str(port), "--log-level", "info"]
    command += ["--ws-per-message-deflate", "true" if deflate else "false"]
    with _serving(command, port, env, workdir, log_name, 30, 30) as server:
        yield server


def rss_kib(pid: int) -> int:
    """Resident set size of a process (VmRSS in /proc/PID/status), KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def raise_open_files_limit(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards `wanted` (up to the hard limit), so that
    it and the servers and clients it starts (they inherit it) can hold that many sockets."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return int(soft)


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) by the nearest-rank method; nan when there is no value."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-len(ordered) * p // 100)))
    return ordered[int(rank) - 1]


GRAPHQL_TRANSPORT_WS = "graphql-transport-ws"


async def ws_connect(
    base_url: str, token: str, *, deflate: bool = True
) -> websockets.asyncio.client.ClientConnection:
    """A graphql-transport-ws connection to BASE_URL/graphql, past its connection_ack, with the
    bearer token in connection_init as the contract says (the bare app accepts any token).
    `deflate`: ask for permessage-deflate, as browsers do. The client sends no pings (the
    server's own keep-alive pings still run)."""
    ws = await websockets.asyncio.client.connect(
        base_url.replace("http", "ws", 1) + "/graphql",
        subprotocols=[websockets.Subprotocol(GRAPHQL_TRANSPORT_WS)],
        ping_interval=None,
        open_timeout=60,
        compression="deflate" if deflate else None,
    )
    init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
    await ws.send(json.dumps(init))
    answer = json.loads(await asyncio.wait_for(ws.recv(), 60))
    if answer.get("type") != "connection_ack":
        await ws.close()
        raise RuntimeError(f"no connection_ack: {answer}")
    return ws


def cpu_wait_seconds(pid: int) -> float:
    """How long the process's main thread (a server's event loop) has waited, runnable, for a
    CPU so far (/proc/PID/schedstat, Linux): the share of a window it spent queued behind other
    processes, which is how a busy machine inflates latencies without showing in CPU time."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


@contextlib.asynccontextmanager
async def migrated_sqlite(prefix: str) -> AsyncIterator[None]:
    """The ORM on a fresh, migrated SQLite file, for the benches that run the schema in
    process."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        url = f"sqlite://{tmp}/bench.sqlite3"
        await apply_migrations(url)
        await Tortoise.init(config=tortoise_config(url))
        try:
            yield
        finally:
            await Tortoise.close_connections()
