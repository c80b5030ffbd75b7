"""models/recurrence.py and models/timezones.py without a server: rules on a zone's wall clock,
aggregation periods' bounds across DST changes, the rule in words, and what is refused."""

from datetime import UTC, datetime, timedelta

import pytest

from models.errors import BadInput
from models.recurrence import AggregationPeriod, Schedule, describe, parse_rule, period_bounds
from models.timezones import check_zone, localise, zone

MADRID = zone("Europe/Madrid")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_zones_are_checked_and_naive_times_are_read_in_them() -> None:
    assert check_zone(None) is None
    assert check_zone("America/Argentina/Buenos_Aires") == "America/Argentina/Buenos_Aires"
    for name in ("Mars/Base", "", "/etc/passwd", "Europe/../UTC", "a" * 65, "Europe/Madrid\n"):
        with pytest.raises(BadInput):
            zone(name)
    assert localise(datetime(2027, 7, 1, 9), MADRID) == utc("2027-07-01T07:00:00")
    assert localise(utc("2027-07-01T09:00:00"), MADRID) == utc("2027-07-01T09:00:00")


def test_aggregation_periods_follow_the_local_calendar() -> None:
    moment = utc("2027-03-28T12:00:00")  # a Sunday, the day Madrid goes to summer time
    day = period_bounds(moment, AggregationPeriod.DAY, MADRID)
    assert day == (utc("2027-03-27T23:00:00"), utc("2027-03-28T22:00:00"))
    assert day[1] - day[0] == timedelta(hours=23)
    week = period_bounds(moment, AggregationPeriod.WEEK, MADRID)
    assert week == (utc("2027-03-21T23:00:00"), utc("2027-03-28T22:00:00"))  # Monday to Monday
    month = period_bounds(utc("2027-10-31T23:30:00"), AggregationPeriod.MONTH, MADRID)
    assert month == (utc("2027-10-31T23:00:00"), utc("2027-11-30T23:00:00"))  # already November
    autumn = period_bounds(utc("2027-10-31T12:00:00"), AggregationPeriod.DAY, MADRID)
    assert autumn[1] - autumn[0] == timedelta(hours=25)


def test_hourly_rules_give_each_instant_once_across_the_autumn_change() -> None:
    start = utc("2027-10-30T22:00:00")  # midnight in Madrid
    schedule = Schedule(parse_rule("FREQ=HOURLY", start, MADRID), None, "Europe/Madrid", start)
    found = schedule.upcoming(start, 6)
    assert found == sorted(set(found))  # strictly increasing: 02:00 repeated gives one instant
    assert found[0] == start
    assert schedule.first(found[2], inclusive=False) == found[3]
    legacy = Schedule(None, 3600, "UTC", start)
    assert legacy.upcoming(start + timedelta(minutes=30), 2) == [
        start + timedelta(hours=1),
        start + timedelta(hours=2),
    ]


def test_rules_in_words() -> None:
    assert describe("FREQ=DAILY;BYHOUR=9;BYMINUTE=0", None, "Europe/Madrid", None) == (
        "every day at 09:00 (Europe/Madrid)"
    )
    assert describe("FREQ=HOURLY;INTERVAL=6", None, "UTC", None) == "every 6 hours (UTC)"
    assert describe("FREQ=MONTHLY;BYMONTHDAY=1,15;BYHOUR=10;COUNT=12", None, "UTC", None) == (
        "every month on the 1st and the 15th at 10:00 12 times (UTC)"
    )
    assert describe("FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=18", None, "UTC", 3) == (
        "every month on the last Friday at 18:00 at most 3 occurrences (UTC)"
    )
    assert describe(None, 86400, "UTC", 2) == "every day, 2 times"


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "none of its BYMONTHDAY"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", "fewer than 5 times"),
        ("FREQ=HOURLY;BYMINUTE=0,5", "15 minutes"),
        ("FREQ=DAILY;UNTIL=20300101T000000", "UTC time ending in Z"),
        ("FREQ=MONTHLY;BYDAY=1MO;BYMONTHDAY=15", "numbered BYDAY"),
        ("FREQ=DAILY;COUNT=0", "COUNT"),
        ("FREQ=DAILY;FREQ=WEEKLY", "twice"),
        ("FREQ=DAILY;BYWEEKNO=53", "not supported"),
    ],
)
def test_rules_that_are_refused_say_why(rule: str, says: str) -> None:
    with pytest.raises(BadInput, match=says):
        parse_rule(rule, utc("2027-01-01T00:00:00"), MADRID)
