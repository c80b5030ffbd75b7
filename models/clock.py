"""The time the rules read: `utcnow()`.

Every operation that depends on the time (a contact date, a recipient's send time, a wave, the
end of a validity period) takes a `now`; the server and the engine get it from here. Tests
move this clock forward (`advance`) instead of sleeping through real hours; nothing else
calls `advance`. Leases (`models/relay.py: now_ms`) keep the real time: they guard against a
dead worker, not a schedule.
"""

from datetime import UTC, datetime, timedelta

_offset = timedelta(0)


def utcnow() -> datetime:
    return datetime.now(UTC) + _offset


def advance(delta: timedelta) -> None:
    """Move the clock forward (tests only): the engine's next tick sees the new time."""
    global _offset
    if delta < timedelta(0):
        raise ValueError("the clock only moves forward")
    _offset += delta


def reset() -> None:
    global _offset
    _offset = timedelta(0)
