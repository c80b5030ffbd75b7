"""What the test fixtures cost each test: a fresh database, a server started, a client with its
operators, the server stopped and the database dropped (tests/conftest.py, tests/support/server.py,
tests/support/databases.py).

    git worktree add /tmp/before <commit>     # the tree to compare with (its tests/ are used)
    .venv/bin/python bench/test_fixtures.py /tmp/before . --servers 9 --rounds 2

Each tree's fixtures run in a process of their own (python bench/test_fixtures.py --one TREE
KIND N), alternating trees and database kinds round by round, so that a change of load on a
shared machine shows in both. The first server of each process is left out: it also builds the
templates. Reported: seconds per test for each step, averaged over the other servers.
"""

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

STEPS = ("database", "app", "start", "operators", "stop", "drop", "total")


async def one_test(conftest: Any, kind: str, folder: Path) -> dict[str, float]:
    from server.settings import Settings

    times: dict[str, float] = {}
    started = mark = time.perf_counter()

    def step(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        times[name] = now - mark
        mark = now

    async with conftest.fresh_database(kind, folder, migrated=True) as url:
        step("database")
        values = {
            "database_url": url,
            "mta_url": "capture://",
            "feedback_secret": conftest.SECRET,
            "engine_tick_seconds": 0.05,
            "progress_interval_seconds": 0.05,
            "batch_size": 100,
            "auth_failure_limit": 10_000,
        }
        running = conftest.RunningServer(Settings(_env_file=None, **values))
        databases = getattr(conftest, "databases", None)
        if databases is not None:  # what make_server does since the templates hold operators
            running.operators = databases.template_operators(kind)
        step("app")
        await running.start()
        step("start")
        async for api in conftest.api_for(running):
            step("operators")
            await api.gql("{ me { name } }")
            mark = time.perf_counter()
        await running.stop()
        step("stop")
    step("drop")
    times["total"] = time.perf_counter() - started
    return times


async def run_one(conftest: Any, kind: str, servers: int) -> None:
    totals = dict.fromkeys(STEPS, 0.0)
    for i in range(servers):
        with tempfile.TemporaryDirectory() as folder:
            times = await one_test(conftest, kind, Path(folder))
        if i:
            for name in STEPS:
                totals[name] += times[name]
    print(" ".join(f"{totals[name] / (servers - 1):.3f}" for name in STEPS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="*")
    parser.add_argument("--servers", type=int, default=9)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--kinds", default="sqlite,postgres")
    parser.add_argument("--one", nargs=3, metavar=("TREE", "KIND", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        tree, kind, servers = args.one
        sys.path.insert(0, str(Path(tree).resolve()))
        from tests import conftest

        try:
            asyncio.run(run_one(conftest, kind, int(servers)))
        finally:  # drops the templates (outside the event loop)
            conftest.pytest_sessionfinish(None, 0)  # type: ignore[arg-type]
        return
    print(" ".join([Path(sys.executable).name, *sys.argv]))
    print(f"seconds per test ({args.servers - 1} servers each); columns: {' '.join(STEPS)}")
    for round_ in range(1, args.rounds + 1):
        for kind in args.kinds.split(","):
            for tree in args.trees:
                done = subprocess.run(
                    [sys.executable, __file__, "--one", tree, kind, str(args.servers)],
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=tree,
                )
                load = Path("/proc/loadavg").read_text().split()[0]
                figures = done.stdout.strip().splitlines()[-1]
                print(f"round {round_} {kind:8s} {tree:24s} load {load:>5s}  {figures}")


if __name__ == "__main__":
    main()
