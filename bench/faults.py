"""The fault-injection suite at full size: the figures of docs/reliability.md.

    .venv/bin/python bench/faults.py                         # every fault, full sizes
    .venv/bin/python bench/faults.py --only relay-down,kill  # some of them
    .venv/bin/python bench/faults.py --recipients 200 --outage 3 --kill-recipients 5000

Each fault is a scenario of tests/support/fault_scenarios.py, the same code
tests/runtime/test_faults.py runs
small: real `serve` / `worker` processes, a real SMTP server in its own process that counts every
Message-ID it answered, SQLite files, the shared PostgreSQL (fresh databases only: never
restarted), and a private PostgreSQL cluster and Redis where the fault restarts them. The
baseline, in the same run, is the same send with no fault (`none`), on each storage.

Faults (`--only`): none, relay-down, relay-421-hang, postgres-restart, redis-restart,
sqlite-full-disk, kill. A scenario whose checks fail prints FAILED and why (today, before the
engine's transient-error handling of issue 12 §1, the relay faults fail the delivery and the
kill duplicates up to a batch): the row says what was measured, never a figure not seen.
"""

import argparse
import asyncio
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support import fault_scenarios as scenarios  # noqa: E402
from tests.support.databases import PG_AVAILABLE  # noqa: E402
from tests.support.faults import (  # noqa: E402
    Figures,
    NotSurvived,
    Unavailable,
    private_postgres,
    private_redis,
)
from tests.support.smtp_sink import Mode  # noqa: E402

FAULTS = (
    "none",
    "relay-down",
    "relay-421-hang",
    "postgres-restart",
    "redis-restart",
    "sqlite-full-disk",
    "kill",
)


def storages() -> list[str]:
    return ["sqlite", "postgres"] if PG_AVAILABLE else ["sqlite"]


async def run(name: str, scenario: Callable[[Path], Awaitable[Figures]]) -> None:
    """One scenario in a fresh directory: its row, or why there is none."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as directory:
        try:
            figures = await scenario(Path(directory))
        except Unavailable as why:
            print(f"| {name} | skipped: {why} |", flush=True)
            return
        except NotSurvived as failed:  # measured, but the checks did not hold
            print(failed.figures.line(), flush=True)
            return
        except Exception as error:  # the checks failed: say what was seen
            text = " ".join(str(error).split())[:400]
            print(f"| {name} | FAILED: {type(error).__name__}: {text} |", flush=True)
            if os.environ.get("BENCH_TRACEBACK"):
                traceback.print_exc()
            return
    print(figures.line() + f" <!-- {time.monotonic() - started:.0f} s -->", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(FAULTS), help="comma-separated faults")
    parser.add_argument("--recipients", type=int, default=1000)
    parser.add_argument("--outage", type=float, default=30.0, help="seconds the relay is down")
    parser.add_argument("--rate", type=int, default=100, help="messages/s (paced faults)")
    parser.add_argument("--kill-recipients", type=int, default=100_000)
    args = parser.parse_args()
    only = args.only.split(",")
    unknown = set(only) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults {sorted(unknown)}; known: {', '.join(FAULTS)}")
    n, outage, rate = args.recipients, args.outage, args.rate

    print(f"`{' '.join([Path(sys.executable).name, *sys.argv])}`")
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start\n")
    print(Figures.HEADER, flush=True)

    def on(storage: str, fault: Callable[[Path, str], Awaitable[Figures]]) -> Callable[..., Any]:
        async def scenario(tmp: Path) -> Figures:
            async with scenarios.database(storage, tmp) as url:
                return await fault(tmp, url)

        return scenario

    for storage in storages():
        if "none" in only:
            await run(
                f"no fault ({storage})",
                on(storage, lambda t, u: scenarios.relay_faults(t, u, [], n=n, rate=rate,
                                                               name="no fault (baseline)")),
            )  # fmt: skip
        if "relay-down" in only:
            await run(
                f"relay down ({storage})",
                on(storage, lambda t, u: scenarios.relay_faults(
                    t, u, [(Mode.DOWN, outage)], n=n, rate=rate,
                    name=f"SMTP relay down for {outage:g} s")),
            )  # fmt: skip
        if "relay-421-hang" in only:
            await run(
                f"relay 421 then hang ({storage})",
                on(storage, lambda t, u: scenarios.relay_faults(
                    t, u, [(Mode.REFUSE, outage / 2), (Mode.HANG, outage / 2)], n=n, rate=rate,
                    timeout=5.0, name=f"SMTP relay: 421 on connect for {outage / 2:g} s, then"
                    f" hanging past the 5 s timeout for {outage / 2:g} s")),
            )  # fmt: skip
        if "redis-restart" in only:

            async def redis_fault(tmp: Path, url: str) -> Figures:
                async with private_redis(tmp) as redis:
                    return await scenarios.redis_restart(tmp, url, redis, n=n, rate=rate)

            await run(f"redis restart ({storage})", on(storage, redis_fault))
        if "kill" in only:
            await run(
                f"kill ({storage})",
                on(storage, lambda t, u: scenarios.worker_kill(t, u, n=args.kill_recipients)),
            )
    if "postgres-restart" in only:
        for bus in ("postgres", "redis"):

            async def pg_fault(tmp: Path, bus: str = bus) -> Figures:
                async with private_postgres() as pg:
                    if bus == "postgres":
                        return await scenarios.postgres_restart(tmp, pg, n=n, rate=rate)
                    async with private_redis(tmp) as redis:
                        return await scenarios.postgres_restart(
                            tmp, pg, redis=redis, n=n, rate=rate
                        )

            await run(f"postgres restart ({bus} bus)", pg_fault)
    if "sqlite-full-disk" in only:
        await run("sqlite full disk", lambda t: scenarios.sqlite_full_disk(t, n=n, rate=rate))
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    asyncio.run(main())
