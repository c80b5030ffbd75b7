"""A recurrence as a calendar rule (RFC 5545 RRULE) in a time zone, and its aggregation periods.

The rule is read by python-dateutil's `rrule` on the wall clock of the delivery's zone, with
DTSTART the delivery's start (its contact date, or the confirmation): `FREQ=DAILY;BYHOUR=9`
in Europe/Madrid is 09:00 Madrid time in winter and in summer, i.e. 08:00 then 07:00 UTC.
A rule costs a delivery and a preparation per occurrence, so `parse_rule` refuses rules whose
occurrences come closer than `MIN_GAP` (or that never occur), as BAD_USER_INPUT.

The older recurrence by a number of seconds (`intervalSeconds`) is still read here: it has no
rule, no zone and no calendar, and its next occurrence is the last one plus the interval.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum

from dateutil.rrule import rrule, rrulestr

from models.errors import BadInput
from models.timezones import zone

MAX_RULE = 500  # characters
# Occurrences closer than this are refused: each one prepares and sends a whole delivery.
MIN_GAP = timedelta(minutes=15)
# The rule is checked over its first occurrences within this horizon (bounds the check's work).
CHECK_OCCURRENCES = 200
CHECK_HORIZON = timedelta(days=5 * 366)
MIN_OCCURRENCES = 5  # in CHECK_HORIZON, unless the rule ends before (COUNT, UNTIL)
MAX_NEXT_OCCURRENCES = 50  # Recurrence.nextOccurrences(count)
_RULE = re.compile(r"[A-Z0-9=;,+\-]+")
_FREQUENCIES = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY")
# The parts a rule may use. BYSETPOS, BYYEARDAY, BYWEEKNO and BYSECOND are left out: with them
# a rule can be one that never occurs, which the library only finds out by walking to year 9999.
PARTS = frozenset(
    {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYMONTH", "BYMONTHDAY", "BYDAY", "BYHOUR", "BYMINUTE",
     "WKST"}
)  # fmt: skip
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class AggregationPeriod(StrEnum):
    """Within one period (in the delivery's zone) every execution of a recurring delivery adds
    its recipients to one occurrence; NONE: each execution is an occurrence of its own."""

    NONE = "NONE"
    DAY = "DAY"
    WEEK = "WEEK"  # ISO weeks: Monday 00:00 to Monday 00:00
    MONTH = "MONTH"


def normalise_rule(text: str) -> str:
    """The rule as stored: upper case, without an `RRULE:` prefix or blanks."""
    rule = "".join(text.split()).upper()
    return rule.removeprefix("RRULE:")


def _parts(rule: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for item in rule.split(";"):
        name, _, value = item.partition("=")
        if not name or not value or name in parts:
            raise BadInput(f"rule: {item!r} is not NAME=VALUE, or names a part twice")
        parts[name] = value
    return parts


def _rrule(rule: str, start: datetime) -> rrule:
    try:
        parsed = rrulestr(rule, dtstart=start)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as error:
        detail = str(error) or type(error).__name__
        if "UNTIL" in detail:
            detail = "UNTIL must be a UTC time ending in Z, e.g. UNTIL=20271231T230000Z"
        raise BadInput(f"rule is not a valid RRULE ({detail})") from None
    if not isinstance(parsed, rrule):
        raise BadInput("rule must be one RRULE")
    return parsed


def parse_rule(text: str, start: datetime, tz: tzinfo) -> str:
    """Check a rule given at the API (normalised form returned), or BAD_USER_INPUT saying why:
    malformed, a frequency finer than minutes, occurrences closer than MIN_GAP, none at all."""
    rule = normalise_rule(text)
    if not rule or len(rule) > MAX_RULE or not _RULE.fullmatch(rule):
        raise BadInput(
            "rule must be an RFC 5545 RRULE such as FREQ=DAILY;BYHOUR=9;BYMINUTE=0"
            f" (at most {MAX_RULE} characters)"
        )
    parts = _parts(rule)
    if parts.get("FREQ") not in _FREQUENCIES:
        raise BadInput(f"rule: FREQ must be one of {', '.join(_FREQUENCIES)}")
    if "DTSTART" in parts:
        raise BadInput("rule: give the start as scheduledAt, not DTSTART")
    unknown = sorted(set(parts) - PARTS)
    if unknown:
        raise BadInput(f"rule: {', '.join(unknown)} not supported (use {', '.join(sorted(PARTS))})")
    _check_feasible(parts)
    rr = _rrule(rule, _wall(start, tz))
    horizon = start + CHECK_HORIZON
    previous: datetime | None = None
    found, ended = 0, True
    for moment in _instants(rr, start, tz):
        if moment > horizon or found >= CHECK_OCCURRENCES:
            ended = False
            break
        if previous is not None and moment - previous < MIN_GAP:
            raise BadInput(
                f"rule: occurrences {previous:%Y-%m-%d %H:%M} and {moment:%Y-%m-%d %H:%M} UTC are"
                f" less than {int(MIN_GAP.total_seconds() // 60)} minutes apart; each occurrence"
                " is a whole delivery, so a recurrence may not be that frequent"
            )
        previous, found = moment, found + 1
    if found == 0:
        raise BadInput("rule: it has no occurrence in the five years after its start")
    if found < MIN_OCCURRENCES and not ended:
        # Rarer rules (every 29th of February...) make each next occurrence a long search.
        raise BadInput(
            f"rule: it occurs fewer than {MIN_OCCURRENCES} times in its first five years;"
            " schedule such rare sends one by one"
        )
    return rule


def _numbers(parts: dict[str, str], name: str) -> list[int]:
    try:
        return [int(v) for v in parts[name].split(",")] if name in parts else []
    except ValueError:
        raise BadInput(f"rule: {name} must be a list of numbers") from None


def _check_feasible(parts: dict[str, str]) -> None:
    """Refuse a rule that can never occur (the 30th of February...) before the library walks
    the calendar to find out. What is left always occurs within 28 years."""
    for name, top in (("INTERVAL", 1000), ("COUNT", 100_000)):
        if name in parts and not all(1 <= n <= top for n in _numbers(parts, name)):
            raise BadInput(f"rule: {name} must be between 1 and {top}")
    months = _numbers(parts, "BYMONTH") or list(range(1, 13))
    days = _numbers(parts, "BYMONTHDAY")
    if any(not 1 <= m <= 12 for m in months):
        raise BadInput("rule: BYMONTH must be between 1 and 12")
    if any(d == 0 or not -31 <= d <= 31 for d in days):
        raise BadInput("rule: BYMONTHDAY must be between 1 and 31 (or -31 and -1)")
    if days and not any(abs(d) <= _MONTH_DAYS[m - 1] for m in months for d in days):
        raise BadInput("rule: none of its BYMONTHDAY days exist in its months")
    for token in parts.get("BYDAY", "").split(",") if "BYDAY" in parts else []:
        match = re.fullmatch(r"([+-]?\d+)?(MO|TU|WE|TH|FR|SA|SU)", token)
        if not match:
            raise BadInput(f"rule: BYDAY {token!r} is not a day such as MO or -1FR")
        if match.group(1):
            n = int(match.group(1))
            if parts.get("FREQ") != "MONTHLY" or n == 0 or not -5 <= n <= 5 or days:
                raise BadInput(
                    "rule: a numbered BYDAY (such as 1MO or -1FR) is for FREQ=MONTHLY, from -5"
                    " to 5, without BYMONTHDAY"
                )


def _wall(moment: datetime, tz: tzinfo) -> datetime:
    """The instant on the zone's wall clock, to the minute (DTSTART gives the seconds)."""
    return moment.astimezone(tz).replace(second=0, microsecond=0)


def _instants(rr: rrule, after: datetime, tz: tzinfo, inclusive: bool = True) -> Iterator[datetime]:
    """The rule's occurrences from `after` on, as UTC instants, strictly increasing (a wall
    time that a DST change repeats or skips gives one instant)."""
    previous = after if not inclusive else after - timedelta(microseconds=1)
    # Start a little before, on the wall clock: `xafter` compares wall times.
    for local in rr.xafter(_wall(after, tz) - timedelta(days=1), inc=True):
        moment = local.astimezone(UTC)
        if moment > previous:
            previous = moment
            yield moment


@dataclass(frozen=True)
class Schedule:
    """What the engine needs of a recurring delivery to find its occurrences."""

    rule: str | None
    interval_seconds: int | None
    time_zone: str
    start: datetime  # the first possible occurrence (UTC): the contact date or the confirmation

    def occurrences(self, after: datetime, inclusive: bool = True) -> Iterator[datetime]:
        """Occurrences at or after (inclusive) or strictly after `after`, UTC."""
        after = max(after, self.start) if inclusive else after
        if self.rule is None:
            step = timedelta(seconds=self.interval_seconds or 1)
            moment = self.start
            if after > moment:
                moment += step * -(-(after - moment) // step)  # ceiling: the next step
            if not inclusive and moment <= after:
                moment += step
            while True:
                yield moment
                moment += step
        tz = zone(self.time_zone)
        rr = _rrule(self.rule, _wall(self.start, tz))
        for moment in _instants(rr, after, tz, inclusive):
            if moment >= self.start:
                yield moment

    def first(self, after: datetime, inclusive: bool = True) -> datetime | None:
        return next(self.occurrences(after, inclusive), None)

    def upcoming(self, after: datetime, count: int) -> list[datetime]:
        found: list[datetime] = []
        for moment in self.occurrences(after):
            if len(found) >= count:
                break
            found.append(moment)
        return found


def period_bounds(
    moment: datetime, period: AggregationPeriod, tz: tzinfo
) -> tuple[datetime, datetime]:
    """The aggregation period holding `moment`, as UTC instants [start, end): the local day,
    ISO week or month in zone `tz` (a day of a DST change is 23 or 25 hours long)."""
    local = moment.astimezone(tz)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    if period is AggregationPeriod.DAY:
        begin, end = day, day + timedelta(days=1)
    elif period is AggregationPeriod.WEEK:
        begin = day - timedelta(days=day.weekday())
        end = begin + timedelta(days=7)
    elif period is AggregationPeriod.MONTH:
        begin = day.replace(day=1)
        end = (begin + timedelta(days=32)).replace(day=1)
    else:
        raise ValueError("no aggregation period")
    return begin.replace(tzinfo=tz).astimezone(UTC), end.replace(tzinfo=tz).astimezone(UTC)


# ---- the rule in words -------------------------------------------------------------------------

_UNITS = {
    "YEARLY": "year",
    "MONTHLY": "month",
    "WEEKLY": "week",
    "DAILY": "day",
    "HOURLY": "hour",
    "MINUTELY": "minute",
}
_DAYS = {
    "MO": "Monday",
    "TU": "Tuesday",
    "WE": "Wednesday",
    "TH": "Thursday",
    "FR": "Friday",
    "SA": "Saturday",
    "SU": "Sunday",
}
_MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
]  # fmt: skip
_ORDINALS = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", -1: "last"}


def _list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _weekday(token: str) -> str:
    match = re.fullmatch(r"([+-]?\d+)?([A-Z]{2})", token)
    if not match or match.group(2) not in _DAYS:
        return token
    name = _DAYS[match.group(2)]
    if match.group(1):
        n = int(match.group(1))
        return f"the {_ORDINALS.get(n, f'{n}th')} {name}"
    return name


def _nth(n: int) -> str:
    if n < 0:
        return "the last day" if n == -1 else f"the {-n}th last day"
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"the {n}{suffix}"


def describe(
    rule: str | None, interval_seconds: int | None, time_zone: str, count: int | None
) -> str:
    """The recurrence in plain English, e.g. "every day at 09:00 (Europe/Madrid)"."""
    if rule is None:
        seconds = interval_seconds or 0
        for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
            if seconds % size == 0:
                n = seconds // size
                words = f"every {unit}" if n == 1 else f"every {n} {unit}s"
                break
        else:
            words = f"every {seconds} seconds"
        return words + (f", {count} times" if count is not None else "")
    try:
        parts = _parts(rule)
    except BadInput:
        return rule
    unit = _UNITS.get(parts.pop("FREQ", ""), "time")
    n = int(parts.pop("INTERVAL", "1") or 1)
    text = [f"every {unit}" if n == 1 else f"every {n} {unit}s"]
    if "BYMONTH" in parts:
        months = [_MONTHS[int(m) - 1] for m in parts.pop("BYMONTH").split(",") if m.isdigit()]
        text.append("in " + _list(months))
    if "BYMONTHDAY" in parts:
        days = [_nth(int(d)) for d in parts.pop("BYMONTHDAY").split(",")]
        text.append("on " + _list(days))
    if "BYDAY" in parts:
        names = parts.pop("BYDAY").split(",")
        if sorted(names) == sorted(["MO", "TU", "WE", "TH", "FR"]):
            text.append("on weekdays")
        else:
            text.append("on " + _list([_weekday(d) for d in names]))
    hours = parts.pop("BYHOUR", None)
    minutes = parts.pop("BYMINUTE", None)
    if hours is not None:
        mins = (minutes or "0").split(",")
        times = [f"{int(h):02d}:{int(m):02d}" for h in hours.split(",") for m in mins]
        text.append("at " + _list(times))
    elif minutes is not None:
        text.append("at minute " + _list(minutes.split(",")) + " of the hour")
    parts.pop("BYSECOND", None)
    if "COUNT" in parts:
        text.append(f"{parts.pop('COUNT')} times")
    if "UNTIL" in parts:
        until = parts.pop("UNTIL")
        try:
            stamp = datetime.strptime(until.rstrip("Z"), "%Y%m%dT%H%M%S")
            until = f"{stamp:%Y-%m-%d %H:%M} UTC"
        except ValueError:
            pass
        text.append(f"until {until}")
    if count is not None:
        text.append(f"at most {count} occurrences")
    text += [f"{name}={value}" for name, value in parts.items()]  # parts without words
    return " ".join(text[:1]) + "".join(f" {t}" for t in text[1:]) + f" ({time_zone})"
