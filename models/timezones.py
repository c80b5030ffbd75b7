"""IANA time zones: the one check of a zone's name, and the conversions the schedule needs.

Every input that names a zone (a delivery's `timeZone`, a profile's) goes through `zone()`, so
an unknown or malformed name is always the same BAD_USER_INPUT, and the engine never meets a
name it cannot load. Zones come from the standard library's `zoneinfo` (the system's tz
database, or the `tzdata` package where the system has none).
"""

import re
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from models.errors import BadInput

DEFAULT_ZONE = "UTC"
MAX_ZONE_NAME = 64  # the longest IANA name is 32 characters
# "Area/Location[/More]", "UTC", "EST5EDT"...: letters, digits, _ + - and /, no "..", no
# leading "/" (zoneinfo would otherwise read any file under the tz database's folder).
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*")


@lru_cache(maxsize=1024)
def _load(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def zone(name: str | None, field: str = "timeZone") -> ZoneInfo:
    """The zone an IANA name denotes (None: UTC); BAD_USER_INPUT naming `field` otherwise."""
    if name is None:
        return _load(DEFAULT_ZONE)
    if len(name) > MAX_ZONE_NAME or not _NAME.fullmatch(name):
        raise BadInput(f"{field} must be an IANA time zone name such as Europe/Madrid")
    try:
        return _load(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise BadInput(
            f"{field}: unknown time zone {name!r} (use an IANA name such as Europe/Madrid)"
        ) from None


def check_zone(name: str | None, field: str = "timeZone") -> str | None:
    """The name as given when it is a known zone (None stays None); BAD_USER_INPUT otherwise."""
    if name is not None:
        zone(name, field)
    return name


def localise(value: datetime | None, tz: tzinfo) -> datetime | None:
    """An instant as UTC. A value without an offset is a wall-clock time in `tz`; one with an
    offset is that instant whatever `tz` says."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def in_zone(value: datetime | None, name: str | None) -> datetime | None:
    """An instant shown on the wall clock of zone `name` (with its offset)."""
    if value is None:
        return None
    return value.astimezone(zone(name))
