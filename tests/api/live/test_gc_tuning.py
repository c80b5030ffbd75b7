"""Issue 11, finding 6: long-lived subscriptions are frozen out of full garbage collections
(server/gc_tuning.py), and memory stays bounded: once enough of the frozen ones have ended,
everything is thawed, collected once, and what is left frozen again.

`serve` turns the tuning on at start-up; here the test turns it on for its server (it freezes
the test process's objects too, and the server's shutdown unfreezes them all)."""

import asyncio
import gc
import json
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from server.gc_tuning import GcTuning
from tests.support import flows
from tests.support.client import Api, event
from tests.support.server import RunningServer, api_for
from tests.support.ws import init, send, socket, ws_url

PROGRESS = "subscription($id: ID!) { deploymentProgress(deliveryId: $id) { kpis { sent } } }"
SOCKETS, PER_SOCKET = 4, 60
OPEN = SOCKETS * (PER_SOCKET + 1)  # sockets and operations


@pytest.fixture
def db_kind() -> str:
    return "sqlite"  # the process's memory, not the database's


@pytest.fixture
async def tuned(make_server: Callable[..., Any]) -> AsyncIterator[tuple[RunningServer, Api]]:
    running = await make_server()
    tuning: GcTuning = running.runtime.gc_tuning
    tuning.delay = 0.05  # freeze soon after the last subscribe (1 s in production)
    tuning.batch = 100  # and every 100 new ones meanwhile
    tuning.thaw_at = OPEN  # thaw once all have ended, not when 200 have (THAW_AT)
    tuning.start()
    async for api in api_for(running):
        yield running, api
    await running.stop()  # (make_server stops it again: a no-op)
    assert not tuning.enabled
    assert gc.get_freeze_count() == 0  # nothing stays frozen after the server


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def next_of(ws: ClientConnection) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if message["type"] != "ping":
            return message  # type: ignore[no-any-return]


async def flood(
    running: RunningServer, api: Api, delivery_id: str, message_id: str, sent: int
) -> int:
    """SOCKETS x PER_SOCKET subscriptions, frozen once established; a change reaches every one
    of them; then they all close. The frozen object count at its highest."""
    tuning: GcTuning = running.runtime.gc_tuning
    freezes = tuning.state.freezes
    async with AsyncExitStack() as stack:
        sockets = []
        for _ in range(SOCKETS):
            ws = await stack.enter_async_context(socket(ws_url(running)))
            await init(ws, api.tokens["reader"])
            sockets.append(ws)
        for ws in sockets:
            for op_id in range(PER_SOCKET):
                payload = {"query": PROGRESS, "variables": {"id": delivery_id}}
                await send(ws, {"id": str(op_id), "type": "subscribe", "payload": payload})
        for ws in sockets:
            for _ in range(PER_SOCKET):
                assert (await next_of(ws))["type"] == "next"
        await until(lambda: tuning.state.fresh == 0, "a freeze after the last subscribe")
        assert tuning.state.freezes > freezes + 1  # a batch or more meanwhile
        assert tuning.state.frozen == OPEN
        peak = gc.get_freeze_count()
        # frozen, they still receive every change
        at = datetime.now(UTC)
        await api.feedback([event(message_id, "delivered", at=at)])
        for ws in sockets:
            seen = {}
            while len(seen) < PER_SOCKET:
                message = await next_of(ws)
                assert message["type"] == "next", message
                seen[message["id"]] = message["payload"]["data"]["deploymentProgress"]
            assert {p["kpis"]["sent"] for p in seen.values()} == {sent}
    return peak


async def test_frozen_subscriptions_are_thawed_and_collected_once_they_end(
    tuned: tuple[RunningServer, Api],
) -> None:
    running, api = tuned
    tuning: GcTuning = running.runtime.gc_tuning
    done, logs = await flows.sent_delivery(
        api, [f"gc{i}@example.com" for i in range(3)], feedbackMode="EFS"
    )
    delivery_id = done["id"]
    gc.collect()
    at_start = gc.get_freeze_count()
    after_rounds = []
    for round_ in range(3):
        thaws = tuning.state.thaws
        assert thaws == round_
        peak = await flood(running, api, delivery_id, logs[round_]["messageId"], round_ + 1)
        assert peak > at_start + SOCKETS * PER_SOCKET * 50  # their objects were frozen
        # all closed: as many frozen ones ended as thaw_at, so one thaw and one full collection
        await until(lambda: tuning.state.thaws == round_ + 1, "a thaw once they closed")  # noqa: B023
        await until(lambda: tuning.state.frozen == 0, "every frozen socket counted as ended")
        assert (tuning.state.fresh, tuning.state.ended_frozen) == (0, 0)
        after = gc.get_freeze_count()
        # the subscriptions' objects went: what is frozen now is about what was before
        assert after - at_start < (peak - at_start) / 4, (at_start, peak, after)
        after_rounds.append(after)
    # three rounds leave no more frozen than one: nothing accumulates
    assert max(after_rounds) - min(after_rounds) < SOCKETS * PER_SOCKET * 10, after_rounds


class _Node:
    """A cycle's member: it goes with a collection that walks it, not with reference counting."""

    def __init__(self) -> None:
        self.itself = self


async def test_a_freeze_leaves_old_garbage_to_the_thaw() -> None:
    """A freeze collects the young generations only (a full pass walked each batch: 5 to 28 ms
    with the loop held, bench/RESULTS.md); a cycle that had grown old before the freeze is
    frozen with the rest, and the thaw's full pass frees it."""
    tuning = GcTuning(delay=0.01, batch=1, thaw_at=1)
    tuning.start()
    gc.disable()  # no automatic pass in between: only the tuning's own
    try:
        node = _Node()
        alive = weakref.ref(node)
        gc.collect(1)  # it outlives a young collection: it is in the old generation now
        del node
        with tuning.tracking():  # a batch of one: frozen on the next turn of the loop
            await until(lambda: tuning.state.freezes == 1, "a freeze")
            assert alive() is not None  # the freeze did not walk the old generation
        await until(lambda: tuning.state.thaws == 1, "a thaw once the frozen one ended")
        assert alive() is None
    finally:
        gc.enable()
        tuning.close()
