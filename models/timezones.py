"""IANA time zones, as operators give them: checked against the tz database, so that an unknown
or misspelt zone is a clear BAD_USER_INPUT and never a file path or a silent UTC."""

from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from models.errors import BadInput

MAX_ZONE_NAME = 64


@cache
def _known() -> frozenset[str]:
    return frozenset(available_timezones())


def zone(name: str) -> ZoneInfo:
    """The zone named `name` (e.g. "Europe/Madrid"), or BadInput."""
    cleaned = name
    if not cleaned or len(cleaned) > MAX_ZONE_NAME or cleaned not in _known():
        shown = cleaned[:MAX_ZONE_NAME] + ("…" if len(cleaned) > MAX_ZONE_NAME else "")
        raise BadInput(
            f"unknown time zone {shown!r}: give an IANA name such as Europe/Madrid or UTC"
        )
    return ZoneInfo(cleaned)


def zone_name(name: str | None) -> str | None:
    """A zone name checked and trimmed (None stays None): what is stored."""
    return None if name is None else zone(name).key
