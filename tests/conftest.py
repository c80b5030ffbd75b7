"""Fixtures: a real server (uvicorn on a free port) per test, on SQLite and on PostgreSQL.

PostgreSQL tests use TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres)
and a fresh database per test (tests/support/databases.py); when that server is not reachable
they are skipped, and the skip reason says so. The server and its client are in
tests/support/server.py.
"""

import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from models import clock
from server.settings import Settings
from tests.support import databases
from tests.support.client import Api
from tests.support.databases import PG_AVAILABLE, PG_URL, fresh_database
from tests.support.server import SECRET, RunningServer, api_for
from tests.support.smtp_sink import Script, SmtpSink

# bench/test_fixtures.py reads these from here, in this tree and in older ones.
__all__ = ["SECRET", "RunningServer", "api_for", "databases", "fresh_database"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    databases.close()


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` (the README's command) starts one worker more than there are CPUs: about a
    third of the suite's time is spent waiting (servers and workers starting and stopping in
    processes of their own, PostgreSQL and Redis restarts, leases running out), and a third
    worker fills it. On two CPUs: 5 min 54 s with two workers, 5 min 18 s with three (7 Dec
    2026, quiet machine); the tests' deadlines are deadlines, not timings, so they hold on the
    busier machine."""
    return (os.cpu_count() or 1) + 1


# The longest tests (tens of seconds each) start first, so that parallel workers (`-n auto`, the
# README's command) finish together instead of one running the 100,000-recipient send alone at
# the end. `--maxschedchunk 1` (pyproject.toml) has xdist hand out tests one at a time, except
# two to each worker at the start: the second test of the worker that starts the longest is a
# short one, so that nothing long waits behind it.
LONGEST_FIRST = (
    "tests/runtime/test_cluster.py::test_a_killed_worker",
    "tests/api/feedback/test_fuzz_webhook.py",
    "tests/runtime/test_cluster.py",
    "tests/api/input/test_fuzz_graphql.py",
    "tests/runtime/test_faults.py",
    "tests/runtime/test_worker.py",
    "tests/runtime/test_restart.py",
    "tests/rules/test_state_machine.py",
    "tests/browser/",
    # Then the rest of tests/runtime/ (processes: 1 to 10 s each), the API tests that migrate a
    # database step by step (3 to 5 s) and the rules' generated documents (1 to 3 s): in file
    # order they come last, where the one a worker takes last is the run's tail.
    "tests/runtime/test_cli.py",
    "tests/runtime/test_stop_means_stop.py",
    "tests/runtime/test_bus.py",
    "tests/runtime/",
    "tests/api/deliveries/test_approval.py::test_finding_8_deliveries_made_before_the_upgrade",
    "tests/api/tracking/test_tracking.py::test_finding_13",
    "tests/rules/test_validation.py::test_generated_documents",
    "tests/rules/test_validation.py::test_the_walk_of_generated_documents",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        found = (i for i, prefix in enumerate(LONGEST_FIRST) if item.nodeid.startswith(prefix))
        return next(found, len(LONGEST_FIRST))

    items.sort(key=rank)
    short = next((i for i, item in enumerate(items) if rank(item) == len(LONGEST_FIRST)), None)
    if short is not None and short > 1:
        items.insert(1, items.pop(short))


@pytest.fixture(autouse=True)
def real_clock() -> Iterator[None]:
    """Every test starts and ends on the real time, whatever it moved (tests/support/clock.py)."""
    clock.reset()
    yield
    clock.reset()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres" and not PG_AVAILABLE:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL} (set TEST_POSTGRES_URL)")
    return str(request.param)


@pytest.fixture
async def make_server(db_kind: str, tmp_path: Any) -> AsyncIterator[Callable[..., Any]]:
    """Start servers on one fresh database: make_server(mta_url=..., **settings)."""
    servers: list[RunningServer] = []
    async with fresh_database(db_kind, tmp_path, migrated=True) as url:

        async def start(**overrides: Any) -> RunningServer:
            values: dict[str, Any] = {
                "database_url": url,
                "mta_url": "capture://",
                "feedback_secret": SECRET,
                # The default. At 0.05 s an idle test server's scheduler and dispatcher cost
                # 67 ms of CPU a second on SQLite, 112 on PostgreSQL (with its backends), against
                # 16 and 29: with a server in each of three workers on two CPUs, that was CPU
                # the tests themselves lacked. The dispatcher is woken at once by a confirm.
                "engine_tick_seconds": 0.25,
                "progress_interval_seconds": 0.05,
                "batch_size": 100,
                # Every test client is 127.0.0.1: tests that try bad tokens on purpose must not
                # lock the others out. tests/api/access/test_auth_failures.py sets its own limit.
                "auth_failure_limit": 10_000,
            }
            values.update(overrides)
            running = RunningServer(Settings(_env_file=None, **values))  # type: ignore[call-arg]
            if values["database_url"] == url:
                running.operators = databases.template_operators(db_kind)
            await running.start()
            servers.append(running)
            return running

        try:
            yield start
        finally:
            for running in reversed(servers):
                await running.stop()


@pytest.fixture
async def server(make_server: Callable[..., Any]) -> RunningServer:
    """A server with the capture MTA: feedback comes only from the webhook."""
    return await make_server()  # type: ignore[no-any-return]


@pytest.fixture
async def api(server: RunningServer) -> AsyncIterator[Api]:
    """A client with one operator per role: admin, starter, preparer, approver, reader."""
    async for client in api_for(server):
        yield client


@pytest.fixture
async def production(make_server: Callable[..., Any]) -> AsyncIterator[Api]:
    """A client of a server with PRODUCTION=true (no introspection, no GraphiQL)."""
    async for client in api_for(await make_server(production=True)):
        yield client


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    """A real SMTP server (aiosmtpd) in a thread; requested before `make_server`, so it stops
    after the test's servers."""
    with SmtpSink() as running:
        yield running


@pytest.fixture
def make_sink() -> Iterator[Callable[..., SmtpSink]]:
    """Start SMTP sinks; they stop after the test's servers (requested first, torn down last)."""
    sinks: list[SmtpSink] = []

    def start(script: Script | None = None, **options: Any) -> SmtpSink:
        sink = SmtpSink(script, **options).__enter__()
        sinks.append(sink)
        return sink

    yield start
    for sink in sinks:
        sink.__exit__()


@pytest.fixture
async def live_api(make_server: Callable[..., Any]) -> AsyncIterator[Api]:
    """A client of a server with the engine on and the capture MTA, for modules whose `api`
    fixture turns the engine off: messages are relayed, outcomes come from the webhook."""
    async for client in api_for(await make_server()):
        yield client
