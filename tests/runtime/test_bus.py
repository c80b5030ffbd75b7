"""Cross-process event buses (redis://, postgres://) against the real services.

Two bus instances on one backend stand for two server processes. Reconnect tests kill the
listening connection from the server side and poll until events flow again.
"""

import asyncio
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
import redis.asyncio as aioredis
from pydantic import ValidationError

from server.bus import PREFIX_PATTERN, RESYNC, EventBus, default_prefix, make_bus
from server.bus.memory import QUEUE_SIZE
from server.settings import Settings
from tests.support import ROOT, flows
from tests.support.client import Api
from tests.support.cluster import Process
from tests.support.databases import PG_AVAILABLE, PG_URL, REDIS_AVAILABLE, REDIS_URL
from tests.support.server import SECRET, api_for, free_port

BUS_URLS = {"redis": REDIS_URL, "postgres": PG_URL}
# The buses here are the machine's Redis and the database at PG_URL, which other test runs and
# parallel workers use too: these tests' topics are this test process's own.
RUN = uuid.uuid4().hex[:8]
DELIVERY, ENGINE = f"delivery_{RUN}", f"engine_{RUN}"


@pytest.fixture(params=["redis", pytest.param("postgres", marks=pytest.mark.postgres)])
def bus_url(request: pytest.FixtureRequest) -> str:
    if request.param == "redis" and not REDIS_AVAILABLE:
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    if request.param == "postgres" and not PG_AVAILABLE:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL} (set TEST_POSTGRES_URL)")
    return BUS_URLS[request.param]


@pytest.fixture
async def buses(bus_url: str) -> AsyncIterator[Callable[[], EventBus]]:
    """make() -> a new bus instance on the backend; all are closed at the end."""
    made: list[EventBus] = []

    def make() -> EventBus:
        made.append(make_bus(bus_url))
        return made[-1]

    yield make
    for bus in made:
        await bus.close()


async def next_event(events: AsyncIterator[dict[str, Any]], seconds: float = 5) -> dict[str, Any]:
    return await asyncio.wait_for(anext(events), seconds)


async def test_an_event_reaches_subscribers_of_every_instance(
    buses: Callable[[], EventBus],
) -> None:
    one, two = buses(), buses()
    async with one.subscribe(DELIVERY) as mine, two.subscribe(DELIVERY) as theirs:
        await one.publish(DELIVERY, {"id": 7})
        assert await next_event(mine) == {"id": 7}
        assert await next_event(theirs) == {"id": 7}


async def test_topics_are_separate(buses: Callable[[], EventBus]) -> None:
    one, two = buses(), buses()
    async with two.subscribe(ENGINE) as engine, two.subscribe(DELIVERY) as delivery:
        await one.publish(ENGINE, {"n": 1})
        await one.publish(DELIVERY, {"n": 2})
        assert await next_event(engine) == {"n": 1}
        assert await next_event(delivery) == {"n": 2}
        await one.publish(ENGINE, {"n": 3})
        assert await next_event(engine) == {"n": 3}  # nothing from "delivery" in between


async def test_a_slow_subscribers_queue_keeps_only_the_newest_events(
    buses: Callable[[], EventBus],
) -> None:
    one, two = buses(), buses()
    total = QUEUE_SIZE + 50
    async with two.subscribe(DELIVERY) as slow, two.subscribe(DELIVERY) as fast:
        for n in range(total):  # the fast one reads each event as it comes; the slow one never
            await one.publish(DELIVERY, {"n": n})
            assert await next_event(fast) == {"n": n}
        kept = [(await next_event(slow))["n"] for _ in range(QUEUE_SIZE)]
        assert kept == list(range(total - QUEUE_SIZE, total))


async def kill_listener(bus: Any) -> int:
    """Close the bus's listening connection from the server side; return how many were killed."""
    if isinstance(bus.name, str) and bus.name.startswith("delivery-server-bus-listen"):
        conn = await asyncpg.connect(PG_URL)
        try:
            rows = await conn.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = $1",
                bus.name,
            )
        finally:
            await conn.close()
        return len(rows)
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        killed = 0
        for info in await client.client_list(_type="pubsub"):
            if info.get("name") == bus.name:
                killed += int(await client.client_kill_filter(_id=info["id"]))
        return killed
    finally:
        await client.aclose()


async def test_events_flow_again_after_the_listening_connection_is_killed(
    buses: Callable[[], EventBus],
) -> None:
    """...and once it listens again, subscribers are told to re-read (RESYNC): what was
    published meanwhile is lost."""
    listener, publisher = buses(), buses()
    async with listener.subscribe(DELIVERY) as events:
        await publisher.publish(DELIVERY, {"n": -1})
        while (first := await next_event(events)) == RESYNC:  # the first connection's
            pass
        assert first == {"n": -1}
        assert await kill_listener(listener) == 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        n, resynced = 0, False
        # one pending read at a time: cancelling a read would end the events iterator
        read = asyncio.ensure_future(anext(events))
        while True:  # events published while it reconnects are lost: keep publishing
            n += 1
            await publisher.publish(DELIVERY, {"n": n})
            done, _ = await asyncio.wait({read}, timeout=0.2)
            if done:
                event = read.result()
                resynced = resynced or event == RESYNC
                if event.get("n", 0) > 0:
                    break
                read = asyncio.ensure_future(anext(events))
            assert loop.time() < deadline, "no event after the connection was killed"
        assert resynced, "no RESYNC after the reconnect"


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:1/0", "postgres://postgres@127.0.0.1:1/postgres"]
)
async def test_a_publish_while_the_backend_is_down_is_dropped_not_raised(url: str) -> None:
    bus = make_bus(url)
    try:
        await bus.publish("delivery", {"id": 1})
    finally:
        await bus.close()


@pytest.mark.parametrize("url", ["kafka://broker", "", "memory", "http://redis"])
def test_an_unknown_event_bus_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"EVENT_BUS_URL .* is not supported"):
        make_bus(url)


async def test_postgres_refuses_oversized_payloads_and_odd_topics() -> None:
    bus = make_bus("postgres://postgres@127.0.0.1:1/postgres")
    try:
        with pytest.raises(ValueError, match="< 8000 bytes"):
            await bus.publish("delivery", {"x": "a" * 8000})
        with pytest.raises(ValueError, match="topic"):
            await bus.publish("Delivery; DROP", {})
    finally:
        await bus.close()


PROGRESS = """
subscription($id: ID!) {
  deploymentProgress(deliveryId: $id) { status kpis { toSend processed } }
}
"""


async def test_live_progress_works_on_the_bus(make_server: Any, bus_url: str) -> None:
    running = await make_server(event_bus_url=bus_url)
    async for api in api_for(running):
        await progress_flow(api)


async def progress_flow(api: Api) -> None:
    ids = await flows.import_profiles(api, [f"user{i}@example.com" for i in range(3)])
    created = await flows.create_delivery(api, ids)
    ready = await flows.prepare(api, created["id"])
    async with api.subscribe(PROGRESS, {"id": ready["id"]}) as sub:
        first = (await sub.next())["data"]["deploymentProgress"]
        assert first["status"] == "READY"
        await flows.confirm(api, ready["id"])
        done = await sub.until(lambda d: d["deploymentProgress"]["kpis"]["processed"] == 3)
        assert done["deploymentProgress"]["kpis"]["toSend"] == 3


# ---- issue 11, finding 14: deployments sharing one Redis (or one PostgreSQL bus) -------------


async def test_finding_14_buses_hear_their_own_prefix_only(bus_url: str) -> None:
    """Two processes of deployment A (one prefix) and one of deployment B (another) on one
    backend: A's processes hear each other, neither hears B, B hears only B."""
    made = [make_bus(bus_url, "depA"), make_bus(bus_url, "depA"), make_bus(bus_url, "depB")]
    a_one, a_two, b = made
    try:
        async with a_two.subscribe(DELIVERY) as heard_a, b.subscribe(DELIVERY) as heard_b:
            await a_one.publish(DELIVERY, {"from": "A", "n": 1})
            await b.publish(DELIVERY, {"from": "B", "n": 2})
            await a_one.publish(DELIVERY, {"from": "A", "n": 3})
            # Events arrive in the order they were published: B's would come between.
            assert await next_event(heard_a) == {"from": "A", "n": 1}
            assert await next_event(heard_a) == {"from": "A", "n": 3}
            assert await next_event(heard_b) == {"from": "B", "n": 2}
            await b.publish(DELIVERY, {"from": "B", "n": 4})
            assert await next_event(heard_b) == {"from": "B", "n": 4}  # not A's 1 or 3
    finally:
        for bus in made:
            await bus.close()


def test_finding_14_the_default_prefix_names_the_database_not_the_url(tmp_path: Path) -> None:
    same = [
        "postgres://app:secret@DB.example:5432/app?minsize=1",
        "postgresql://reader@db.example/app",
    ]
    assert len({default_prefix(url) for url in same}) == 1
    others = [
        "postgres://db.example/app2",
        "postgres://db2.example/app",
        "postgres://db.example:6432/app",
    ]
    assert len({default_prefix(url) for url in [same[0], *others]}) == 4
    assert default_prefix(f"sqlite://{tmp_path}/a.sqlite3") != default_prefix(
        f"sqlite://{tmp_path}/b.sqlite3"
    )
    assert default_prefix(f"sqlite://{tmp_path}/a.sqlite3?busy_timeout=5") == default_prefix(
        f"sqlite://{tmp_path}/a.sqlite3"
    )
    for url in [*same, *others]:  # a valid EVENT_BUS_PREFIX, and no secret in it
        prefix = default_prefix(url)
        assert re.fullmatch(PREFIX_PATTERN, prefix) and "secret" not in prefix
    with pytest.raises(ValueError, match="EVENT_BUS_PREFIX"):
        make_bus(REDIS_URL, "two words")
    with pytest.raises(ValidationError, match="event_bus_prefix"):
        Settings(_env_file=None, event_bus_prefix="x" * 25)


async def operator_token(env: dict[str, str], tmp_path: Path) -> str:
    """`python -m server operator create` on the database of `env`; the token it prints."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "operator", "create", "admin", "--role", "ADMINISTRATION",
        "--role", "PREPARE_DELIVERIES", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, out.decode()
    return out.decode().strip().splitlines()[-1]


@pytest.mark.parametrize("db_kind", ["sqlite"])  # the databases only tell the deployments apart
async def test_finding_14_two_servers_on_two_databases_sharing_a_bus_do_not_hear_each_other(
    make_server: Any, bus_url: str, tmp_path: Path
) -> None:
    """Server A (this process) and server A2 (another process, same database) are deployment
    A; server B (another process, another database) is deployment B; all three on one Redis
    (or one PostgreSQL bus database). A hears what A2 publishes, and nothing of B's."""
    server_a = await make_server(event_bus_url=bus_url, engine_enabled=False)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "EVENT_BUS"))}
    base.update(
        PYTHONPATH=str(ROOT), EVENT_BUS_URL=bus_url, MTA_URL="capture://",
        FEEDBACK_SECRET=SECRET, ENGINE_ENABLED="false",
    )  # fmt: skip
    env_a2 = {**base, "DATABASE_URL": server_a.settings.database_url}
    env_b = {**base, "DATABASE_URL": f"sqlite://{tmp_path}/b.sqlite3"}
    token_b = await operator_token(env_b, tmp_path)
    ports = {"a2": free_port(), "b": free_port()}
    started = [
        Process(name, ["serve", "--port", str(ports[name])], env, tmp_path)
        for name, env in (("a2", env_a2), ("b", env_b))
    ]
    try:
        for process in started:
            await process.start()
        for process in started:
            await process.wait_for_line("Application startup complete", timeout=60)
        async for api_a in api_for(server_a):
            async with (
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['a2']}") as http_a2,
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['b']}") as http_b,
                server_a.runtime.bus.subscribe("delivery") as heard,
            ):
                api_b = Api(str(http_b.base_url), http_b, SECRET, {"admin": token_b})
                api_a2 = Api(str(http_a2.base_url), http_a2, SECRET, api_a.tokens)
                ids_b = await flows.import_profiles(api_b, ["b@example.com"])
                for _ in range(3):  # deliveries 1 to 3 in B's database; 1 only in A's
                    created_b = await flows.create_delivery(api_b, ids_b)
                await flows.prepare(api_b, created_b["id"])  # B publishes {"id": 3}
                ids_a = await flows.import_profiles(api_a2, ["a@example.com"])
                created_a = await flows.create_delivery(api_a2, ids_a)
                await flows.prepare(api_a2, created_a["id"])  # A2 publishes {"id": 1}
                # B's events were published first: had A heard them, they would come first.
                assert await next_event(heard, 15) == {"id": int(created_a["id"])}
                assert created_a["id"] != created_b["id"]
    finally:
        for process in reversed(started):
            await process.stop()
