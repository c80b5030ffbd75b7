"""Event bus: how "something changed" travels from the writer to subscribers and the engine.

Events are small JSON-able dicts published after a commit on a topic. Subscribers re-read the
database, so a lost or coalesced event never shows stale data, only later data.
"""

import hashlib
import os
import re
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol
from urllib.parse import urlsplit

DELIVERY_TOPIC = "delivery"  # payload: {"id": delivery id}
ENGINE_TOPIC = "engine"  # payload: {} — wake the engine (a delivery was confirmed)
# Delivered on every topic by a cross-process bus when its listening connection is (re)made:
# events published while it was away are lost, so every subscriber re-reads what it follows.
RESYNC: dict[str, Any] = {"resync": True}


class EventBus(Protocol):
    async def publish(self, topic: str, payload: dict[str, Any]) -> None: ...

    def subscribe(
        self, topic: str
    ) -> AbstractAsyncContextManager[AsyncIterator[dict[str, Any]]]: ...

    async def close(self) -> None: ...


# EVENT_BUS_PREFIX: short enough that a PostgreSQL channel name stays under 63 bytes.
PREFIX_PATTERN = r"^[A-Za-z0-9_-]{1,24}$"


def database_identity(database_url: str) -> str:
    """What names the database, whoever connects to it: for PostgreSQL the host, port and
    database (not the user, password or options); for SQLite the file's absolute path."""
    scheme, _, rest = database_url.partition("://")
    if scheme.lower() == "sqlite":
        path = rest.split("?", 1)[0]
        return "sqlite:" + (path if path in ("", ":memory:") else os.path.abspath(path))
    parts = urlsplit(database_url)
    port = parts.port or 5432
    return f"postgres://{(parts.hostname or '').lower()}:{port}/{parts.path.lstrip('/')}"


def default_prefix(database_url: str) -> str:
    """The channel prefix when EVENT_BUS_PREFIX is not set: a hash of the database's identity,
    the same for every process of a deployment, different for another database (Redis pub/sub
    ignores the database number, so deployments sharing one Redis would hear each other)."""
    digest = hashlib.sha256(database_identity(database_url).encode()).hexdigest()
    return "db" + digest[:12]


def make_bus(url: str, prefix: str | None = None) -> EventBus:
    """The bus named by EVENT_BUS_URL; the cross-process ones connect on first use. Their
    channels carry `prefix`, so that only processes of one deployment hear each other."""
    if prefix is not None and not re.fullmatch(PREFIX_PATTERN, prefix):
        raise ValueError(f"EVENT_BUS_PREFIX {prefix!r} must match {PREFIX_PATTERN}")
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "memory":
        from server.bus.memory import MemoryBus

        return MemoryBus()
    if scheme in ("redis", "rediss"):
        from server.bus.redis import RedisBus

        return RedisBus(url, prefix)
    if scheme in ("postgres", "postgresql"):
        from server.bus.postgres import PostgresBus

        return PostgresBus(url, prefix)
    raise ValueError(
        f"EVENT_BUS_URL {url!r} is not supported: use memory://, redis://, rediss://,"
        " postgres:// or postgresql://"
    )
