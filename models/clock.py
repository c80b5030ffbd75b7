"""The time the rules read: `utcnow()`.

Every operation that depends on the time (a contact date, a recipient's send time, a wave, the
end of a validity period) takes a `now`; the server and the engine get it from here. Tests
move this clock forward (`advance`) instead of sleeping through real hours; nothing else
calls `advance`. Leases (`models/relay.py: now_ms`) keep the real time: they guard against a
dead worker, not a schedule.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta

_offset = timedelta(0)


class Watch:
    """Whether the work run under `watching()` read the clock: a query answer that did can
    change with no write to the database, so the result cache (graphql_schema/results.py)
    does not keep it."""

    __slots__ = ("read",)

    def __init__(self) -> None:
        self.read = False


_watch: ContextVar[Watch | None] = ContextVar("clock_watch", default=None)


def utcnow() -> datetime:
    watch = _watch.get()
    if watch is not None:
        watch.read = True
    return datetime.now(UTC) + _offset


@contextmanager
def watching() -> Iterator[Watch]:
    """Note clock reads of the code run inside, including the tasks it starts (they copy the
    context, and with it this Watch)."""
    watch = Watch()
    token = _watch.set(watch)
    try:
        yield watch
    finally:
        _watch.reset(token)


def advance(delta: timedelta) -> None:
    """Move the clock forward (tests only): the engine's next tick sees the new time."""
    global _offset
    if delta < timedelta(0):
        raise ValueError("the clock only moves forward")
    _offset += delta


def reset() -> None:
    global _offset
    _offset = timedelta(0)
