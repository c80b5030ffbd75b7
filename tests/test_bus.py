"""Cross-process event buses (redis://, postgres://) against the real services.

Two bus instances on one backend stand for two server processes. Reconnect tests kill the
listening connection from the server side and poll until events flow again.
"""

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
import redis.asyncio as aioredis

from server.bus import EventBus, make_bus
from server.bus.memory import QUEUE_SIZE
from tests import flows
from tests.client import Api
from tests.conftest import PG_AVAILABLE, PG_URL, api_for

REDIS_URL = "redis://127.0.0.1:6379/0"


def _reachable(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


REDIS_AVAILABLE = _reachable("127.0.0.1", 6379)
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
    listener, publisher = buses(), buses()
    async with listener.subscribe(DELIVERY) as events:
        await publisher.publish(DELIVERY, {"n": -1})
        assert await next_event(events) == {"n": -1}
        assert await kill_listener(listener) == 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        n = 0
        # one pending read at a time: cancelling a read would end the events iterator
        read = asyncio.ensure_future(anext(events))
        while True:  # events published while it reconnects are lost: keep publishing
            n += 1
            await publisher.publish(DELIVERY, {"n": n})
            done, _ = await asyncio.wait({read}, timeout=0.2)
            if done:
                if read.result()["n"] > 0:
                    break
                read = asyncio.ensure_future(anext(events))
            assert loop.time() < deadline, "no event after the connection was killed"


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
