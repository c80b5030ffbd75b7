"""Fault injection for tests/runtime/test_faults.py and bench/faults.py: private services that a
test
may stop, restart or starve without touching anything another test (or engineer) uses.

- `PrivatePostgres`: a PostgreSQL cluster of its own (`initdb` + `pg_ctl`, run as the `postgres`
  OS user when we are root), on a free port in a temporary directory, trust authentication.
  The shared server at 127.0.0.1:5432 is never restarted.
- `PrivateRedis`: `redis-server --port FREE --save "" --appendonly no`, restartable.
- `small_tmpfs`: a size-limited tmpfs mounted for one test, for the SQLite full-disk test.
- The SMTP relay is tests/support/smtp_sink.py's `CountingSink` (its own process; `set_mode` stops
it,
  makes it answer 421 or hang, and starts it again on the same port; it counts every
  Message-ID it answered).

Each helper raises `Unavailable` with the reason when this machine cannot provide it; the
fixtures turn that into a skip that says why.
"""

import asyncio
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]

from server.db import apply_migrations
from tests.support.server import free_port


class Unavailable(Exception):
    """This machine cannot run the fault (the message says why): the test is skipped."""


async def _run(*args: str, timeout: float = 60) -> str:
    """Run a command, return its output; raise with the output if it fails."""
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}: {text}")
    return text


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False


async def _wait_until(check: object, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen within {timeout} s")
        await asyncio.sleep(0.02)


# ---- PostgreSQL ------------------------------------------------------------------------------


def postgres_bin() -> Path:
    """The newest /usr/lib/postgresql/*/bin that has initdb and pg_ctl."""
    found = sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    for path in reversed(found):
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    raise Unavailable("PostgreSQL binaries (initdb, pg_ctl) not found under /usr/lib/postgresql")


class PrivatePostgres:
    """A throw-away PostgreSQL cluster: `await start()`, `stop()`, `restart()`, `destroy()`.

    PostgreSQL refuses to run as root, so as root every command runs as the `postgres` OS user
    (`runuser -u postgres --`). Durability is traded for speed (fsync off): the data directory
    is deleted at the end, and a clean stop (`-m fast`, the default of `pg_ctlcluster stop`)
    still writes everything out.
    """

    def __init__(self) -> None:
        self.bin = postgres_bin()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            if runuser is None:
                raise Unavailable("running as root without runuser: cannot start PostgreSQL")
            try:
                import pwd

                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise Unavailable("running as root and there is no `postgres` OS user") from None
            self.as_user = [runuser, "-u", "postgres", "--"]
        self.dir = Path(tempfile.mkdtemp(prefix="faults-pg-"))
        if self.as_user:
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        self.data = self.dir / "data"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"
        self.restarts = 0

    async def _pg(self, tool: str, *args: str, timeout: float = 60) -> str:
        return await _run(*self.as_user, str(self.bin / tool), *args, timeout=timeout)

    async def init(self) -> None:
        await self._pg(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
            "--no-sync", "--no-instructions",
        )  # fmt: skip
        settings = {
            "port": self.port,
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.dir}'",
            "max_connections": 100,
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "'32MB'",
        }
        conf = "".join(f"{key} = {value}\n" for key, value in settings.items())
        with (self.data / "postgresql.conf").open("a") as f:
            f.write(conf)

    async def start(self) -> None:
        await self._pg(
            "pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"), "-w", "-t", "60",
            "start",
        )  # fmt: skip

    async def stop(self, mode: str = "fast") -> None:
        """`fast`: sessions are ended, open transactions rolled back (what `pg_ctlcluster
        restart` does); `immediate`: a crash, with recovery at the next start."""
        await self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    async def restart(self, down: float = 0.0, mode: str = "fast") -> float:
        """Stop, stay down `down` seconds, start; returns how long clients could not connect."""
        started = time.monotonic()
        await self.stop(mode)
        await asyncio.sleep(down)
        await self.start()
        self.restarts += 1
        return time.monotonic() - started

    async def new_database(self, *, migrated: bool = True) -> str:
        """A fresh database on this cluster (with the server's migrations applied); its URL."""
        name = f"dfault_{os.urandom(6).hex()}"
        admin = await asyncpg.connect(self.url.replace("postgres://", "postgresql://", 1))
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        url = self.url.rsplit("/", 1)[0] + f"/{name}"
        if migrated:
            await apply_migrations(url)
        return url

    async def destroy(self) -> None:
        with contextlib.suppress(Exception):
            await self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.asynccontextmanager
async def private_postgres() -> AsyncIterator[PrivatePostgres]:
    """A started private cluster, destroyed at the end; Unavailable when it cannot start."""
    pg = PrivatePostgres()
    try:
        try:
            await pg.init()
            await pg.start()
        except (RuntimeError, OSError, TimeoutError) as error:
            raise Unavailable(f"cannot start a private PostgreSQL: {error}") from error
        yield pg
    finally:
        await pg.destroy()


# ---- Redis -----------------------------------------------------------------------------------


class PrivateRedis:
    """`redis-server` on a free port, no persistence: `await start()`, `stop()`, `restart()`.
    A restart loses nothing the server relies on: the bus only carries hints."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise Unavailable("redis-server is not installed")
        self.binary, self.dir = binary, directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with (self.dir / f"redis-{self.port}.log").open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.dir),
                stdout=out, stderr=out,
            )  # fmt: skip
        await _wait_until(lambda: self._pong(), f"redis-server on port {self.port}", 10)

    def _pong(self) -> bool:
        assert self.proc is not None
        if self.proc.returncode is not None:
            raise RuntimeError(f"redis-server exited {self.proc.returncode}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s,
        ):
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
        return False

    async def stop(self) -> None:
        """SIGTERM, as a service manager stops it: connections close, the port is released."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await asyncio.wait_for(self.proc.wait(), 10)
        await _wait_until(lambda: not _listening(self.port), "redis-server stop", 10)

    async def restart(self, down: float = 0.0) -> None:
        await self.stop()
        await asyncio.sleep(down)
        await self.start()


@contextlib.asynccontextmanager
async def private_redis(directory: Path) -> AsyncIterator[PrivateRedis]:
    redis = PrivateRedis(directory)
    try:
        try:
            await redis.start()
        except (RuntimeError, OSError) as error:
            raise Unavailable(f"cannot start a private redis-server: {error}") from error
        yield redis
    finally:
        with contextlib.suppress(Exception):
            await redis.stop()


# ---- a small disk ----------------------------------------------------------------------------


@contextlib.contextmanager
def small_tmpfs(size_bytes: int) -> Iterator[Path]:
    """A tmpfs of `size_bytes`, mounted on a fresh directory for the duration: a disk that
    fills up. Needs the right to mount (root, or CAP_SYS_ADMIN)."""
    if shutil.which("mount") is None:
        raise Unavailable("no mount command")
    where = Path(tempfile.mkdtemp(prefix="faults-tmpfs-"))
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_bytes},mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        where.rmdir()
        reason = (done.stderr or done.stdout).strip()
        raise Unavailable(f"cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): {reason}")
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)
        with contextlib.suppress(OSError):
            where.rmdir()


def fill(directory: Path, leave: int = 0) -> Path:
    """Write a filler file in `directory` until the file system is full (less `leave` bytes);
    deleting it frees the space again."""
    filler = directory / "filler"
    chunk = b"\0" * 65536
    with filler.open("wb") as f:
        while True:
            free = shutil.disk_usage(directory).free - leave
            if free <= 0:
                break
            try:
                f.write(chunk[: min(len(chunk), free)])
                f.flush()
            except OSError:  # ENOSPC: full
                break
    return filler


# ---- measuring -------------------------------------------------------------------------------


@dataclass
class Figures:
    """One row of docs/reliability.md's table."""

    fault: str
    storage: str
    recipients: int
    relayed: int  # messages the SMTP server answered 250 (duplicates included)
    duplicates: int  # answers beyond the first for the same Message-ID
    missing: int  # recipients the SMTP server never got
    recovery_seconds: float | None  # from the fault's end to the first sign of recovery
    send_seconds: float | None  # from confirmSend to SENT, the fault included
    note: str = ""

    HEADER = (
        "| fault | storage | recipients | relayed | duplicates | missing | recovery |"
        " confirm → SENT | how measured |\n|---|---|--:|--:|--:|--:|--:|--:|---|"
    )

    def line(self) -> str:
        recovery = "-" if self.recovery_seconds is None else f"{self.recovery_seconds:.2f} s"
        sent = "-" if self.send_seconds is None else f"{self.send_seconds:.1f} s"
        return (
            f"| {self.fault} | {self.storage} | {self.recipients:,} | {self.relayed:,} |"
            f" {self.duplicates:,} | {self.missing:,} | {recovery} | {sent} | {self.note} |"
        )


class NotSurvived(AssertionError):
    """A fault the server did not survive as it should; `figures` says what was measured."""

    def __init__(self, figures: Figures) -> None:
        super().__init__(figures.note)
        self.figures = figures
