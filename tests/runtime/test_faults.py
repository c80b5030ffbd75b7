"""Faults survived (issue 12 §2, docs/reliability.md): each fault injected into real processes
(`serve` and `worker` subprocesses, a real SMTP server that counts every Message-ID, real
databases, a private PostgreSQL and Redis that may be restarted) with what must hold after it.

The sizes here are small so that the suite stays fast; bench/faults.py runs the same scenarios
(tests/support/fault_scenarios.py) at full size and prints the figures of docs/reliability.md. Set
FAULTS_SCALE (default 1) to multiply the recipients and outages of this file.
"""

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support import fault_scenarios as scenarios
from tests.support.databases import PG_AVAILABLE, PG_URL
from tests.support.faults import (
    PrivatePostgres,
    PrivateRedis,
    Unavailable,
    private_postgres,
    private_redis,
)
from tests.support.smtp_sink import Mode

SCALE = float(os.environ.get("FAULTS_SCALE", "1"))
RECIPIENTS = int(200 * SCALE)
OUTAGE_SECONDS = 3.0 * SCALE


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, migrated database: a SQLite file, or one on the shared PostgreSQL (which
    these tests never restart)."""
    if request.param == "postgres" and not PG_AVAILABLE:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL} (set TEST_POSTGRES_URL)")
    async with scenarios.database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
async def private_pg() -> AsyncIterator[PrivatePostgres]:
    try:
        async with private_postgres() as pg:
            yield pg
    except Unavailable as why:
        pytest.skip(str(why))


@pytest.fixture
async def redis(tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    try:
        async with private_redis(tmp_path) as started:
            yield started
    except Unavailable as why:
        pytest.skip(str(why))


# ---- what already holds -----------------------------------------------------------------------


@pytest.mark.postgres
async def test_a_postgresql_restart_mid_send_relays_each_recipient_once_and_progress_resumes(
    tmp_path: Path, private_pg: PrivatePostgres
) -> None:
    """The event bus on the same PostgreSQL: its listeners reconnect by themselves."""
    await scenarios.postgres_restart(tmp_path, private_pg, n=int(300 * SCALE), workers=1)


@pytest.mark.postgres
async def test_live_progress_waits_for_a_postgresql_that_is_down_instead_of_ending(
    tmp_path: Path, private_pg: PrivatePostgres, redis: PrivateRedis
) -> None:
    """The bus (Redis) stays up and brings a change while the database is down."""
    await scenarios.postgres_restart(
        tmp_path, private_pg, redis=redis, n=int(300 * SCALE), workers=1
    )


async def test_a_redis_restart_mid_send_lets_subscriptions_catch_up_when_it_returns(
    tmp_path: Path, storage_url: str, redis: PrivateRedis
) -> None:
    await scenarios.redis_restart(tmp_path, storage_url, redis, n=RECIPIENTS)


async def test_sqlite_on_a_full_disk_refuses_the_write_keeps_the_file_and_resumes(
    tmp_path: Path,
) -> None:
    try:
        await scenarios.sqlite_full_disk(tmp_path, n=RECIPIENTS)
    except Unavailable as why:
        pytest.skip(str(why))


# ---- what needs the engine's transient-error handling (issue 12 §1) ---------------------------


async def test_the_relay_down_mid_send_pauses_the_send_and_it_resumes_with_each_recipient_once(
    tmp_path: Path, storage_url: str
) -> None:
    await scenarios.relay_faults(
        tmp_path,
        storage_url,
        [(Mode.DOWN, OUTAGE_SECONDS)],
        n=RECIPIENTS,
        name=f"SMTP relay down for {OUTAGE_SECONDS:g} s",
    )


async def test_the_relay_answering_421_then_hanging_then_fine_relays_each_recipient_once(
    tmp_path: Path, storage_url: str
) -> None:
    await scenarios.relay_faults(
        tmp_path,
        storage_url,
        [(Mode.REFUSE, OUTAGE_SECONDS / 2), (Mode.HANG, OUTAGE_SECONDS / 2)],
        n=RECIPIENTS,
        timeout=1.0,
        name="SMTP relay: 421 on connect, then hanging past the 1 s timeout",
    )


async def test_a_worker_killed_at_full_speed_duplicates_only_what_was_not_yet_recorded(
    tmp_path: Path, storage_url: str
) -> None:
    """Batches of 1,000 as in the issue, and two of them so that each worker holds one."""
    await scenarios.worker_kill(tmp_path, storage_url, n=int(2000 * SCALE), batch=1000)
