"""PostgreSQL LISTEN/NOTIFY bus: pg_notify per topic, one dedicated LISTEN connection per process.

The listening connection is watched (termination callback plus a periodic `SELECT 1`) and
replaced with backoff when lost, re-LISTENing every subscribed topic, and then every subscriber
is told to re-read (RESYNC). Received events go to this process's bounded queues (MemoryBus).
A publish that fails is logged and dropped: events are hints, subscribers re-read the database.
"""

import asyncio
import contextlib
import json
import logging
import os
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from server.bus.memory import MemoryBus

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "delivery_server_"  # then the deployment's prefix and "_", then the topic
# With a prefix of at most 24 characters, channel names stay under PostgreSQL's 63 bytes.
TOPIC = re.compile(r"[a-z0-9_]{1,20}")
MAX_PAYLOAD_BYTES = 7999  # PostgreSQL refuses NOTIFY payloads of 8000 bytes or more
LISTENER_NAME = "delivery-server-bus-listen"  # application_name: findable in pg_stat_activity
PUBLISHER_NAME = "delivery-server-bus-notify"
PUBLISH_TIMEOUT = 2.0  # a hung database must not hold a mutation's response
LIVENESS_SECONDS = 2.0  # how often the idle listening connection is checked with SELECT 1
FIRST_CONNECT_WAIT = 2.0  # subscribe() waits this long for the listener's first attempt
BACKOFF = (0.1, 1.0)  # first and longest pause between reconnect attempts


def check_topic(topic: str) -> str:
    if not TOPIC.fullmatch(topic):
        raise ValueError(f"event bus topic {topic!r} must match {TOPIC.pattern}")
    return topic


class PostgresBus:
    def __init__(self, url: str, prefix: str | None = None) -> None:
        self._url = url
        self.channel_prefix = CHANNEL_PREFIX + (f"{prefix}_" if prefix else "")
        # A per-instance application_name finds this process's listener in pg_stat_activity.
        self.name = f"{LISTENER_NAME}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._local = MemoryBus()
        self._topics: Counter[str] = Counter()  # subscribed topics -> subscribers in this process
        self._listening: set[str] = set()  # topics LISTENed on the current connection
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()  # one query at a time on the listening connection
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._first_attempt = asyncio.Event()

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        channel = self.channel_of(topic)
        data = json.dumps(payload)
        size = len(data.encode())
        if size > MAX_PAYLOAD_BYTES:
            raise ValueError(
                f"event on {topic!r} is {size} bytes; PostgreSQL NOTIFY takes < 8000 bytes"
            )
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT):
                pool = await self._publisher()
                await pool.execute("SELECT pg_notify($1, $2)", channel, data)
        except Exception as error:  # a lost hint must not fail the caller
            log.warning("event bus: publish on %r dropped (%s)", topic, error)

    async def _publisher(self) -> asyncpg.Pool:
        async with self._pool_lock:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._url,
                    min_size=0,
                    max_size=2,
                    server_settings={"application_name": PUBLISHER_NAME},
                )
            return self._pool

    def channel_of(self, topic: str) -> str:
        return self.channel_prefix + check_topic(topic)

    @asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        check_topic(topic)
        if self._task is None:
            self._task = asyncio.create_task(self._supervise(), name="postgres-bus-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_attempt.wait(), FIRST_CONNECT_WAIT)
        self._topics[topic] += 1
        try:
            await self._sync_listen(topic)
            async with self._local.subscribe(topic) as events:
                yield events
        finally:
            self._topics[topic] -= 1
            if self._topics[topic] <= 0:
                del self._topics[topic]
                await self._sync_listen(topic)

    async def _sync_listen(self, topic: str) -> None:
        """LISTEN or UNLISTEN `topic` on the current connection to match self._topics."""
        async with self._lock:
            conn = self._conn
            if conn is None:
                return  # the supervisor LISTENs to every topic when it connects
            try:
                if topic in self._topics and topic not in self._listening:
                    await conn.add_listener(self.channel_of(topic), self._receive)
                    self._listening.add(topic)
                elif topic not in self._topics and topic in self._listening:
                    self._listening.discard(topic)
                    await conn.remove_listener(self.channel_of(topic), self._receive)
            except Exception as error:  # the liveness check will reconnect
                log.warning("event bus: LISTEN %r failed (%s)", topic, error)

    async def _supervise(self) -> None:
        delay = BACKOFF[0]
        while True:
            try:
                await self._hold_connection()
                delay = BACKOFF[0]
            except asyncio.CancelledError:
                raise
            except Exception as error:  # any failure means "reconnect"
                log.warning("event bus: PostgreSQL listener lost (%s)", error)
            self._first_attempt.set()
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF[1])

    async def _hold_connection(self) -> None:
        """Connect, LISTEN to every subscribed topic, and return once the connection is lost."""
        conn = await asyncpg.connect(self._url, server_settings={"application_name": self.name})
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _: lost.set())
        try:
            async with self._lock:
                self._listening = set()
                for topic in list(self._topics):
                    await conn.add_listener(self.channel_of(topic), self._receive)
                    self._listening.add(topic)
                self._conn = conn
            self._local.resync()  # what was published while it was away is lost: re-read
            self._first_attempt.set()
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), LIVENESS_SECONDS)
                if not lost.is_set():
                    async with self._lock:
                        await conn.fetchval("SELECT 1", timeout=LIVENESS_SECONDS)
            log.warning("event bus: PostgreSQL listening connection was closed")
        finally:
            async with self._lock:
                self._conn = None
                self._listening = set()
            conn.terminate()

    def _receive(self, _conn: object, _pid: int, channel: str, data: str) -> None:
        self._local.deliver_raw(channel.removeprefix(self.channel_prefix), data)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None
        await self._local.close()
