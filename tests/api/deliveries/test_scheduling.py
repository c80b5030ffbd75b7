"""Issue 17 §1-2: contact dates in a time zone, recurrences as calendar rules (across both DST
changes), aggregation periods. The clock moves by calling the scheduler's work with a given
`now` (dates in 2027, after the real clock, so that the engine's own ticks leave them alone)."""

from datetime import datetime
from typing import Any

from tests.support import flows
from tests.support.client import Api
from tests.support.server import RunningServer

CREATE = """mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) {
  id status timeZone scheduledAt scheduledAtLocal
  recurrence { rule aggregationPeriod description count nextOccurrences(count: 4) } } }"""
FIELDS = """id label status timeZone scheduledAt scheduledAtLocal parentId periodStart periodEnd
  warnings kpis { toSend processed } exclusions { reason count }
  recurrence { rule description occurrencesCreated executions nextOccurrenceAt
               nextOccurrences(count: 2) }"""
ONE = f"query($id: ID!) {{ delivery(id: $id) {{ {FIELDS} }} }}"
ALL = f"{{ deliveries(first: 20) {{ edges {{ node {{ {FIELDS} }} }} }} }}"


def z(text: str) -> str:
    """A UTC instant as the API writes it."""
    return datetime.fromisoformat(text).isoformat()


async def create(api: Api, ids: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    audience = {"profileIds": ids} if ids is not None else {"allProfiles": True}
    payload = {
        "label": "Daily",
        "channel": "EMAIL",
        "subject": "Hello",
        "body": flows.BODY,
        "audience": audience,
        "validityPeriod": 3600,
        **extra,
    }
    return (await api.gql(CREATE, {"i": payload}))["createDelivery"]  # type: ignore[no-any-return]


async def bad(api: Api, **extra: Any) -> str:
    payload = {"label": "x", "channel": "EMAIL", "subject": "s", "body": "b"}
    payload |= {"audience": {"allProfiles": True}, **extra}
    error = await api.error(CREATE, {"i": payload})
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    return str(error["message"])


async def occurrences(api: Api, parent_id: str) -> list[dict[str, Any]]:
    edges = (await api.gql(ALL))["deliveries"]["edges"]
    found = [e["node"] for e in edges if e["node"]["parentId"] == parent_id]
    return sorted(found, key=lambda d: int(d["id"]))


async def one(api: Api, delivery_id: str) -> dict[str, Any]:
    return (await api.gql(ONE, {"id": delivery_id}))["delivery"]  # type: ignore[no-any-return]


async def tick(server: RunningServer, at: str) -> None:
    await server.runtime.engine.scheduler.work(datetime.fromisoformat(at))


async def test_time_zones_rules_and_what_is_refused(api: Api) -> None:
    ids = await flows.import_profiles(api, ["tz1@example.com"])
    local = await create(api, ids, scheduledAt="2027-06-01T09:00:00", timeZone="Europe/Madrid")
    assert local["timeZone"] == "Europe/Madrid"
    assert local["scheduledAt"] == z("2027-06-01T07:00:00+00:00")
    assert local["scheduledAtLocal"] == "2027-06-01T09:00:00+02:00"
    offset = await create(api, ids, scheduledAt="2027-01-01T09:00:00Z", timeZone="Europe/Madrid")
    assert offset["scheduledAt"] == z("2027-01-01T09:00:00+00:00")  # an offset wins
    assert offset["scheduledAtLocal"] == "2027-01-01T10:00:00+01:00"
    plain = await create(api, ids, scheduledAt="2027-01-01T09:00:00")
    assert (plain["timeZone"], plain["scheduledAt"]) == ("UTC", z("2027-01-01T09:00:00+00:00"))

    # "09:00 Madrid" stays 09:00 local across both DST changes of 2027 (Mar 28, Oct 31)
    daily = {"rule": "FREQ=DAILY;BYHOUR=9;BYMINUTE=0"}
    spring = await create(
        api, ids, scheduledAt="2027-03-26T00:00:00", timeZone="Europe/Madrid", recurrence=daily
    )
    assert spring["recurrence"]["description"] == "every day at 09:00 (Europe/Madrid)"
    assert spring["recurrence"]["aggregationPeriod"] == "NONE"
    assert spring["recurrence"]["nextOccurrences"] == [
        z("2027-03-26T08:00:00+00:00"),
        z("2027-03-27T08:00:00+00:00"),
        z("2027-03-28T07:00:00+00:00"),
        z("2027-03-29T07:00:00+00:00"),
    ]
    autumn = await create(
        api, ids, scheduledAt="2027-10-29T00:00:00", timeZone="Europe/Madrid", recurrence=daily
    )
    assert autumn["recurrence"]["nextOccurrences"] == [
        z("2027-10-29T07:00:00+00:00"),
        z("2027-10-30T07:00:00+00:00"),
        z("2027-10-31T08:00:00+00:00"),
        z("2027-11-01T08:00:00+00:00"),
    ]
    weekdays = await create(
        api,
        ids,
        scheduledAt="2027-01-01T00:00:00",  # a Friday
        timeZone="America/New_York",
        recurrence={"rule": "RRULE:freq=weekly;byday=MO,TU,WE,TH,FR;byhour=8;byminute=30"},
    )
    assert weekdays["recurrence"]["rule"] == "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=8;BYMINUTE=30"
    assert weekdays["recurrence"]["description"] == (
        "every week on weekdays at 08:30 (America/New_York)"
    )
    assert weekdays["recurrence"]["nextOccurrences"][:2] == [
        z("2027-01-01T13:30:00+00:00"),
        z("2027-01-04T13:30:00+00:00"),  # Monday: the weekend is skipped
    ]
    monthly = await create(
        api, ids, recurrence={"rule": "FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=10", "count": 2},
        scheduledAt="2027-02-15T00:00:00Z",
    )  # fmt: skip
    assert monthly["recurrence"]["nextOccurrences"] == [
        z("2027-03-01T10:00:00+00:00"),
        z("2027-04-01T10:00:00+00:00"),  # count: 2, however many are asked for
    ]

    # An edit that leaves them out keeps the zone, the rule and the aggregation period.
    patched = await api.gql(
        'mutation($id: ID!) { updateDelivery(id: $id, patch: {label: "Daily 2"}) {'
        " timeZone scheduledAtLocal recurrence { rule aggregationPeriod } } }",
        {"id": spring["id"]},
    )
    assert patched["updateDelivery"] == {
        "timeZone": "Europe/Madrid",
        "scheduledAtLocal": "2027-03-26T00:00:00+01:00",
        "recurrence": {"rule": "FREQ=DAILY;BYHOUR=9;BYMINUTE=0", "aggregationPeriod": "NONE"},
    }
    error = await api.error(
        'mutation($id: ID!) { updateDelivery(id: $id, patch: {timeZone: "Nowhere/Land"}) { id } }',
        {"id": spring["id"]},
    )
    assert error["extensions"]["code"] == "BAD_USER_INPUT"

    assert "unknown time zone" in await bad(api, timeZone="Mars/Olympus_Mons")
    assert "IANA" in await bad(api, timeZone="../../etc/passwd")
    assert "IANA" in await bad(api, timeZone="x" * 10_000)
    assert "valid RRULE" in await bad(api, recurrence={"rule": "FREQ=DAILY;BYHOUR=25"})
    assert "FREQ" in await bad(api, recurrence={"rule": "FREQ=SECONDLY"})
    assert "15 minutes" in await bad(api, recurrence={"rule": "FREQ=MINUTELY;INTERVAL=5"})
    assert "15 minutes" in await bad(api, recurrence={"rule": "FREQ=HOURLY;BYMINUTE=0,10"})
    assert "BYMONTHDAY" in await bad(api, recurrence={"rule": "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"})
    assert "not supported" in await bad(api, recurrence={"rule": "FREQ=YEARLY;BYSETPOS=1"})
    assert "INTERVAL" in await bad(api, recurrence={"rule": "FREQ=DAILY;INTERVAL=0"})
    assert "RRULE" in await bad(api, recurrence={"rule": "FREQ=DAILY\nDTSTART:20270101T000000"})
    assert "not both" in await bad(api, recurrence={"rule": "FREQ=DAILY", "intervalSeconds": 60})
    assert "needs a rule" in await bad(api, recurrence={"count": 2})
    both = {"rule": "FREQ=DAILY", "aggregationPeriod": "DAY", "confirmEachOccurrence": True}
    message = await bad(api, recurrence=both)
    assert "only without an aggregation period" in message
    error = await api.error(
        "query($id: ID!) { delivery(id: $id) { recurrence { nextOccurrences(count: 51) } } }",
        {"id": spring["id"]},
    )
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_daily_rule_keeps_local_time_across_dst_with_the_clock_moved(
    api: Api, server: RunningServer
) -> None:
    ids = await flows.import_profiles(api, ["dst1@example.com", "dst2@example.com"])
    parent = await create(
        api,
        ids,
        scheduledAt="2027-03-27T00:00:00",
        timeZone="Europe/Madrid",
        recurrence={"rule": "FREQ=DAILY;BYHOUR=9;BYMINUTE=0", "count": 3},
    )
    await flows.prepare(api, parent["id"])
    confirmed = await flows.confirm(api, parent["id"])
    assert confirmed["status"] == "SCHEDULED"
    assert (await one(api, parent["id"]))["recurrence"]["nextOccurrenceAt"] == z(
        "2027-03-27T08:00:00+00:00"
    )
    await tick(server, "2027-03-27T07:59:59+00:00")  # not yet
    assert await occurrences(api, parent["id"]) == []
    local_times = []
    for at in ("2027-03-27T08:00:00", "2027-03-28T07:00:00", "2027-03-29T07:00:00"):
        await tick(server, at + "+00:00")
        found = await occurrences(api, parent["id"])
        await flows.wait_for(api, found[-1]["id"], lambda d: d["status"] == "SENT")
        local_times.append(found[-1]["scheduledAtLocal"])
    assert local_times == [
        "2027-03-27T09:00:00+01:00",
        "2027-03-28T09:00:00+02:00",  # the day the clocks go forward
        "2027-03-29T09:00:00+02:00",
    ]
    done = await one(api, parent["id"])
    assert done["status"] == "FINISHED"  # count: 3
    assert done["recurrence"]["nextOccurrences"] == []
    assert done["recurrence"]["executions"] == done["recurrence"]["occurrencesCreated"] == 3

    autumn = await create(
        api,
        ids,
        scheduledAt="2027-10-30T00:00:00",
        timeZone="Europe/Madrid",
        recurrence={"rule": "FREQ=DAILY;BYHOUR=9;BYMINUTE=0"},
    )
    await flows.prepare(api, autumn["id"])
    await flows.confirm(api, autumn["id"])
    for at in ("2027-10-30T07:00:00", "2027-10-31T08:00:00"):
        await tick(server, at + "+00:00")
    found = await occurrences(api, autumn["id"])
    assert [o["scheduledAtLocal"] for o in found] == [
        "2027-10-30T09:00:00+02:00",
        "2027-10-31T09:00:00+01:00",  # the day the clocks go back
    ]
    # The engine was down for three days: the missed occurrences are not sent late.
    await tick(server, "2027-11-04T12:00:00+00:00")
    assert len(await occurrences(api, autumn["id"])) == 3
    assert (await one(api, autumn["id"]))["recurrence"]["nextOccurrenceAt"] == z(
        "2027-11-05T08:00:00+00:00"
    )


async def test_an_aggregation_period_gathers_its_executions_in_one_occurrence(
    api: Api, server: RunningServer
) -> None:
    await flows.import_profiles(api, ["ag1@example.com", "ag2@example.com"])
    parent = await create(
        api,
        scheduledAt="2027-06-01T00:00:00",
        timeZone="Europe/Madrid",
        recurrence={"rule": "FREQ=HOURLY;INTERVAL=12;BYMINUTE=0", "aggregationPeriod": "DAY"},
    )
    assert parent["recurrence"]["aggregationPeriod"] == "DAY"
    await flows.prepare(api, parent["id"])
    await flows.confirm(api, parent["id"])

    await tick(server, "2027-05-31T22:00:00+00:00")  # 00:00 in Madrid: the day's first
    [first] = await occurrences(api, parent["id"])
    await flows.wait_for(api, first["id"], lambda d: d["status"] == "SENT")
    assert (first["periodStart"], first["periodEnd"]) == (
        z("2027-05-31T22:00:00+00:00"),
        z("2027-06-01T22:00:00+00:00"),
    )
    await flows.import_profiles(api, ["ag3@example.com"])  # joins the audience (allProfiles)
    await tick(server, "2027-06-01T10:00:00+00:00")  # 12:00 in Madrid: the same day
    [same] = await occurrences(api, parent["id"])
    assert same["id"] == first["id"]
    await flows.wait_for(api, same["id"], lambda d: d["status"] == "SENT")
    same = await one(api, same["id"])
    assert same["kpis"] == {"toSend": 3, "processed": 3}  # accumulated: 2, then the new one
    assert same["exclusions"] == [{"reason": "DUPLICATE", "count": 2}]  # already sent to today
    assert any("DUPLICATE" in w for w in same["warnings"])
    assert len(server.runtime.mta.relayed) == 3  # each recipient once in the day

    await tick(server, "2027-06-01T22:00:00+00:00")  # midnight: a new day, a new occurrence
    found = await occurrences(api, parent["id"])
    assert len(found) == 2
    second = await flows.wait_for(api, found[1]["id"], lambda d: d["status"] == "SENT")
    assert second["kpis"]["toSend"] == 3
    assert found[1]["periodStart"] == z("2027-06-01T22:00:00+00:00")
    recurrence = (await one(api, parent["id"]))["recurrence"]
    assert (recurrence["executions"], recurrence["occurrencesCreated"]) == (3, 2)
