"""Redis pub/sub bus: PUBLISH per topic, one pattern-subscribed PubSub per process, local fan-out.

Every process receives every topic (one PSUBSCRIBE, no per-topic bookkeeping on a shared
connection) and hands events to its own bounded queues (MemoryBus); each time it (re)subscribes,
every subscriber is told to re-read (RESYNC). A publish that fails is logged and dropped: events
are hints, subscribers re-read the database.
"""

import asyncio
import contextlib
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from server.bus.memory import MemoryBus

log = logging.getLogger(__name__)

PREFIX = "delivery-server:"  # then the deployment's prefix and ":", then the topic
PUBLISH_TIMEOUT = 2.0  # a hung Redis must not hold a mutation's response
HEALTH_CHECK_SECONDS = 5  # the PubSub PINGs an idle connection this often (finds dead peers)
FIRST_CONNECT_WAIT = 2.0  # subscribe() waits this long for the listener's first attempt
BACKOFF = (0.1, 1.0)  # first and longest pause between reconnect attempts


class RedisBus:
    def __init__(self, url: str, prefix: str | None = None) -> None:
        self.channel_prefix = PREFIX + (f"{prefix}:" if prefix else "")
        # A per-instance client name finds this process's connections in CLIENT LIST.
        self.name = f"delivery-server-bus-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._client = aioredis.Redis.from_url(
            url,
            health_check_interval=HEALTH_CHECK_SECONDS,
            client_name=self.name,
            # One immediate retry (a pooled connection that a Redis restart closed), no
            # back-off: while Redis is down a publish fails in milliseconds, not seconds.
            retry=Retry(NoBackoff(), 1),
        )
        self._local = MemoryBus()
        self._task: asyncio.Task[None] | None = None
        self._first_attempt = asyncio.Event()

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        data = json.dumps(payload)
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT):
                await self._client.publish(self.channel_prefix + topic, data)
        except Exception as error:  # a lost hint must not fail the caller
            log.warning("event bus: publish on %r dropped (%s)", topic, error)

    @asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="redis-bus-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_attempt.wait(), FIRST_CONNECT_WAIT)
        async with self._local.subscribe(topic) as events:
            yield events

    async def _listen(self) -> None:
        """Keep one PubSub subscribed; on any connection error start over with a new one."""
        delay = BACKOFF[0]
        while True:
            pubsub = self._client.pubsub()
            try:
                # The pattern's special characters cannot occur in a prefix (PREFIX_PATTERN).
                await pubsub.psubscribe(self.channel_prefix + "*")
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message["type"] == "psubscribe":
                        delay = BACKOFF[0]
                        self._local.resync()  # what was published while away is lost: re-read
                        self._first_attempt.set()
                    elif message["type"] == "pmessage":
                        self._receive(message["channel"], message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as error:  # any failure means "reconnect"
                log.warning(
                    "event bus: Redis listener lost (%s); reconnecting in %.1fs", error, delay
                )
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]
            self._first_attempt.set()
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF[1])

    def _receive(self, channel: bytes | str, data: bytes | str) -> None:
        name = channel.decode() if isinstance(channel, bytes) else channel
        self._local.deliver_raw(name.removeprefix(self.channel_prefix), data)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._client.aclose()
        await self._local.close()
