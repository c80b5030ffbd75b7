"""Issue 17, sections 3 and 4: per-recipient send time and waves, over the API, on SQLite and
PostgreSQL. The clock moves (models/clock.py: advance) instead of the tests sleeping through
real hours: the engine's next tick sees the new time."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from models import clock, send_time, timezones
from models.enums import Channel
from models.errors import BadInput
from models.relay import Claimed
from models.waves import WavePlan
from server.engine.dispatcher import _valid_until
from server.mta.base import Content
from tests.support import flows
from tests.support.client import Api
from tests.support.server import RunningServer

WAITING = """query($id: ID!) { delivery(id: $id) { status validUntil sendInRecipientTimeZone
  kpis { toSend processed }
  waitingForSendTime { messages nextAt }
  waves { firstSize size intervalMinutes count currentWave nextWaveAt waiting } } }"""
IMPORT = (
    "mutation($p: [ProfileInput!]!) { importProfiles(profiles: $p) { created"
    " profiles { id email timeZone } } }"
)
CREATE = "mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) { id } }"
PROGRESS = """subscription($id: ID!) { deploymentProgress(deliveryId: $id) {
  status waves { currentWave nextWaveAt waiting } waitingForSendTime { messages nextAt } } }"""


@pytest.fixture(autouse=True)
def moved_clock() -> Iterator[None]:
    clock.reset()
    yield
    clock.reset()


def at(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def advance_to(moment: datetime) -> None:
    clock.advance(max(moment - clock.utcnow(), timedelta(0)))


async def state(api: Api, delivery_id: str) -> dict[str, Any]:
    return (await api.gql(WAITING, {"id": delivery_id}))["delivery"]  # type: ignore[no-any-return]


async def statuses(api: Api, delivery_id: str) -> dict[str, str]:
    return {log["address"]: log["status"] for log in await flows.logs(api, delivery_id)}


async def processed(api: Api, delivery_id: str, count: int) -> dict[str, Any]:
    return await flows.wait_for(api, delivery_id, lambda d: d["kpis"]["processed"] >= count)


async def test_each_recipient_gets_the_message_at_the_contact_dates_local_time(
    api: Api, server: RunningServer
) -> None:
    # An unknown zone is refused, and nothing of the import is written.
    error = await api.error(
        IMPORT, {"p": [{"email": "ok@example.com"}, {"email": "z@x.com", "timeZone": "Mars/Base"}]}
    )
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "Mars/Base" in error["message"] and "profile 2" in error["message"]
    rows = [
        {"email": "tokyo@example.com", "timeZone": "Asia/Tokyo"},
        {"email": "ny@example.com", "timeZone": "America/New_York"},
        {"email": "plain@example.com"},  # no zone: the delivery's (UTC here)
        {"email": "ok@example.com"},
    ]
    imported = (await api.gql(IMPORT, {"p": rows}))["importProfiles"]
    assert imported["created"] == 4  # the refused import wrote nothing
    ids = {p["email"]: p["id"] for p in imported["profiles"]}
    assert [p["timeZone"] for p in imported["profiles"]] == [
        "Asia/Tokyo",
        "America/New_York",
        None,
        None,
    ]

    # The contact date's wall time, two hours from now in UTC: already past in Tokyo (sent at
    # the confirmation), due in two hours for the profile without a zone, later in New York.
    contact = (clock.utcnow() + timedelta(hours=2)).replace(second=0, microsecond=0)
    ny_due = contact.replace(tzinfo=None).replace(tzinfo=ZoneInfo("America/New_York"))
    ny_due = ny_due.astimezone(UTC)
    assert ny_due > contact
    audience = [ids["tokyo@example.com"], ids["ny@example.com"], ids["plain@example.com"]]

    no_date = await api.error(
        CREATE,
        {
            "i": {
                "label": "x",
                "channel": "EMAIL",
                "subject": "s",
                "body": flows.BODY,
                "audience": {"profileIds": audience},
                "sendInRecipientTimeZone": True,
            }
        },
    )
    assert no_date["extensions"]["code"] == "BAD_USER_INPUT"
    assert "scheduledAt" in no_date["message"]

    created = await flows.create_delivery(
        api,
        audience,
        scheduledAt=contact.isoformat(),
        sendInRecipientTimeZone=True,
        validityPeriod=3600,
    )
    # A second one whose recipients' times are all ahead: it waits SCHEDULED for the first.
    later = await flows.create_delivery(
        api,
        [ids["plain@example.com"], ids["ny@example.com"]],
        label="Later",
        scheduledAt=contact.isoformat(),
        sendInRecipientTimeZone=True,
    )
    for delivery in (created, later):
        await flows.prepare(api, delivery["id"])
    confirmed = await flows.confirm(api, created["id"])
    assert confirmed["status"] == "IN_PROGRESS"  # Tokyo's time is past: it goes at once
    assert (await flows.confirm(api, later["id"]))["status"] == "SCHEDULED"

    await processed(api, created["id"], 1)
    now = await state(api, created["id"])
    assert now["sendInRecipientTimeZone"] is True
    assert now["kpis"]["processed"] == 1  # Tokyo alone: the others' claims found nothing due
    assert now["waitingForSendTime"]["messages"] == 2
    assert at(now["waitingForSendTime"]["nextAt"]) == contact
    assert now["waves"] is None
    # Each message's validity period starts at its own send time: the last one's ends last.
    assert at(now["validUntil"]) == ny_due + timedelta(seconds=3600)
    found = await statuses(api, created["id"])
    assert found["ny@example.com"] == found["plain@example.com"] == "TO_SEND"
    assert found["tokyo@example.com"] != "TO_SEND"
    waiting = (await state(api, later["id"]))["waitingForSendTime"]
    assert waiting["messages"] == 2 and at(waiting["nextAt"]) == contact

    advance_to(contact + timedelta(minutes=1))
    await processed(api, created["id"], 2)
    found = await statuses(api, created["id"])
    assert found["plain@example.com"] != "TO_SEND" and found["ny@example.com"] == "TO_SEND"
    now = await state(api, created["id"])
    assert now["status"] == "IN_PROGRESS" and now["kpis"]["processed"] == 2
    assert now["waitingForSendTime"]["messages"] == 1
    assert at(now["waitingForSendTime"]["nextAt"]) == ny_due
    started = await processed(api, later["id"], 1)  # the scheduled one started with its first
    assert started["status"] == "IN_PROGRESS"

    advance_to(ny_due + timedelta(minutes=1))
    for delivery in (created, later):
        done = await flows.wait_for(api, delivery["id"], lambda d: d["status"] == "SENT")
        assert done["kpis"]["processed"] == done["kpis"]["toSend"]
        assert (await state(api, delivery["id"]))["waitingForSendTime"] == {
            "messages": 0,
            "nextAt": None,
        }
    assert sorted(server.runtime.mta.relayed.values()) == [1] * 5  # each message once


async def test_waves_pause_resume_and_a_stop_after_a_wave(api: Api, server: RunningServer) -> None:
    emails = flows.addresses(8, "wave")
    ids = await flows.import_profiles(api, list(emails))
    base = {
        "label": "Warm-up",
        "channel": "EMAIL",
        "subject": "s",
        "body": flows.BODY,
        "audience": {"profileIds": ids},
    }
    for waves, words in (
        ({"firstSize": 0, "size": 1, "intervalMinutes": 1}, "firstSize"),
        ({"firstSize": 1, "size": 2_000_000, "intervalMinutes": 1}, "size"),
        ({"firstSize": 1, "size": 1, "intervalMinutes": 10081}, "intervalMinutes"),
        ({"firstSize": 1, "size": 1, "intervalMinutes": -5}, "intervalMinutes"),
    ):
        error = await api.error(CREATE, {"i": {**base, "waves": waves}})
        assert error["extensions"]["code"] == "BAD_USER_INPUT", error
        assert words in error["message"]
    both = await api.error(
        CREATE,
        {
            "i": {
                **base,
                "scheduledAt": (clock.utcnow() + timedelta(hours=1)).isoformat(),
                "sendInRecipientTimeZone": True,
                "waves": {"firstSize": 1, "size": 1, "intervalMinutes": 1},
            }
        },
    )
    assert both["extensions"]["code"] == "BAD_USER_INPUT"
    recurring = await api.error(
        CREATE,
        {
            "i": {
                **base,
                "recurrence": {"intervalSeconds": 3600},
                "waves": {"firstSize": 1, "size": 1, "intervalMinutes": 1},
            }
        },
    )
    assert recurring["extensions"]["code"] == "BAD_USER_INPUT"

    # 8 messages: a first wave of 2, then 3 every 30 minutes (3 waves in all).
    created = await flows.create_delivery(
        api, ids, waves={"firstSize": 2, "size": 3, "intervalMinutes": 30}, validityPeriod=3600
    )
    delivery_id = created["id"]
    # A patch that leaves the waves out keeps them; the delivery stays sent in waves.
    patched = await api.gql(
        "mutation($id: ID!, $p: UpdateDeliveryInput!) { updateDelivery(id: $id, patch: $p) {"
        " label waves { firstSize size intervalMinutes } } }",
        {"id": delivery_id, "p": {"label": "Warm-up, again"}},
    )
    assert patched["updateDelivery"]["waves"] == {
        "firstSize": 2,
        "size": 3,
        "intervalMinutes": 30,
    }
    await flows.prepare(api, delivery_id)
    ready = await state(api, delivery_id)
    assert ready["waves"] == {
        "firstSize": 2,
        "size": 3,
        "intervalMinutes": 30,
        "count": 3,
        "currentWave": 0,
        "nextWaveAt": None,
        "waiting": 8,
    }
    start = clock.utcnow()
    await flows.confirm(api, delivery_id)
    async with api.subscribe(PROGRESS, {"id": delivery_id}) as progress:
        first = await progress.until(
            lambda d: (
                d["deploymentProgress"]["waves"]["waiting"] == 6
                and d["deploymentProgress"]["waves"]["currentWave"] == 1
            )
        )
        assert first["deploymentProgress"]["waitingForSendTime"]["messages"] == 6
    await processed(api, delivery_id, 2)
    now = await state(api, delivery_id)
    assert now["kpis"]["processed"] == 2  # the first wave alone
    waves = now["waves"]
    assert (waves["currentWave"], waves["waiting"]) == (1, 6)
    next_wave = at(waves["nextWaveAt"])
    assert next_wave is not None
    assert timedelta(minutes=30) <= next_wave - start <= timedelta(minutes=31)
    # The last wave's messages get their whole validity period from their own send time.
    assert at(now["validUntil"]) == next_wave + timedelta(minutes=30, seconds=3600)

    # A pause holds the waves: the clock passes the second wave's time, nothing leaves.
    paused = await api.gql(
        "mutation($id: ID!) { pauseDelivery(id: $id) { status } }", {"id": delivery_id},
        as_="starter",
    )  # fmt: skip
    assert paused["pauseDelivery"]["status"] == "PAUSED"
    clock.advance(timedelta(minutes=45))
    held = await state(api, delivery_id)
    assert held["waves"]["currentWave"] == 1 and held["waves"]["nextWaveAt"] is None
    assert held["kpis"]["processed"] == 2
    # The resume continues the schedule: every wave left is 45 minutes later.
    await api.gql(
        "mutation($id: ID!) { resumeDelivery(id: $id) { status } }", {"id": delivery_id},
        as_="starter",
    )  # fmt: skip
    resumed = await state(api, delivery_id)
    assert resumed["status"] == "IN_PROGRESS"
    moved = at(resumed["waves"]["nextWaveAt"])
    assert moved is not None
    assert timedelta(minutes=45) <= moved - next_wave < timedelta(minutes=46)
    assert resumed["kpis"]["processed"] == 2

    advance_to(next_wave + timedelta(minutes=46))
    await processed(api, delivery_id, 5)
    second = await state(api, delivery_id)
    assert second["kpis"]["processed"] == 5
    assert (second["waves"]["currentWave"], second["waves"]["waiting"]) == (2, 3)

    # A stop after the second wave: the third never starts.
    stopped = await api.gql(
        "mutation($id: ID!) { stopDelivery(id: $id) { status } }", {"id": delivery_id},
        as_="starter",
    )  # fmt: skip
    assert stopped["stopDelivery"]["status"] == "STOPPED"
    clock.advance(timedelta(hours=2))
    after = await state(api, delivery_id)
    assert after["waves"]["nextWaveAt"] is None and after["waves"]["waiting"] == 0
    assert after["waitingForSendTime"] == {"messages": 0, "nextAt": None}
    logs = await flows.logs(api, delivery_id)
    assert sorted(log["status"] for log in logs).count("IGNORED") == 3
    assert sum(server.runtime.mta.relayed.values()) == 5


def test_the_local_time_across_daylight_saving_changes_and_zone_names() -> None:
    utc, madrid = ZoneInfo("UTC"), ZoneInfo("Europe/Madrid")

    def local(y: int, m: int, d: int, h: int, mi: int = 0) -> datetime:
        return send_time.local_send_time(datetime(y, m, d, h, mi, tzinfo=UTC), utc, madrid)

    # 09:00 in Madrid stays 09:00 local on both sides of each change.
    assert local(2026, 3, 28, 9) == datetime(2026, 3, 28, 8, tzinfo=UTC)
    assert local(2026, 3, 30, 9) == datetime(2026, 3, 30, 7, tzinfo=UTC)
    assert local(2026, 10, 24, 9) == datetime(2026, 10, 24, 7, tzinfo=UTC)
    assert local(2026, 10, 26, 9) == datetime(2026, 10, 26, 8, tzinfo=UTC)
    # 02:30 does not exist on 29 March (offset before the change); happens twice on 25 October
    # (the first time).
    assert local(2026, 3, 29, 2, 30) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert local(2026, 10, 25, 2, 30) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    # The wall time is read in the delivery's own zone: 09:00 Madrid is 09:00 in Tokyo.
    tokyo = send_time.local_send_time(
        datetime(2026, 12, 8, 9, tzinfo=madrid), madrid, ZoneInfo("Asia/Tokyo")
    )
    assert tokyo == datetime(2026, 12, 8, 0, tzinfo=UTC)

    assert timezones.zone("Europe/Madrid").key == "Europe/Madrid"
    for bad in ("europe/madrid", " Europe/Madrid", "../../etc/passwd", "+02:00", "", "x" * 10_000):
        with pytest.raises(BadInput) as refused:
            timezones.zone(bad)
        assert len(refused.value.message) < 200


def test_a_messages_own_validity_period_and_the_wave_plan() -> None:
    """A message's retries run until its own send time plus the validity period (never past
    the delivery's end); one whose time was past at the start counts from the start."""
    start = datetime(2026, 12, 8, 8, tzinfo=UTC)
    content = Content(1, Channel.EMAIL, "s", "b", start + timedelta(hours=12), 3600, start, None)

    def claimed(due: datetime) -> Claimed:
        return Claimed(1, "a@example.com", 1, "m", due_at=send_time.to_ms(due))

    own = _valid_until(content, claimed(start + timedelta(hours=3)))
    assert own == start + timedelta(hours=4)
    assert _valid_until(content, claimed(start - timedelta(hours=9))) == start + timedelta(hours=1)
    assert _valid_until(content, claimed(start + timedelta(hours=20))) == content.valid_until
    # Waves: due times are offsets from the anchor.
    waves = Content(1, Channel.EMAIL, "s", "b", start + timedelta(hours=12), 600, start, start)
    offset = Claimed(1, "a@example.com", 1, "m", due_at=30 * 60 * 1000)
    assert _valid_until(waves, offset) == start + timedelta(minutes=40)

    plan = WavePlan(2, 3, 30)
    assert [plan.offset_ms(r) // 60_000 for r in range(9)] == [0, 0, 30, 30, 30, 60, 60, 60, 90]
    assert [plan.count(n) for n in (1, 2, 3, 5, 6, 8, 9)] == [1, 1, 2, 2, 3, 3, 4]
    assert plan.started(start, start - timedelta(seconds=1), 8) == 0
    assert plan.started(start, start + timedelta(minutes=59), 8) == 2
    assert plan.started(start, start + timedelta(days=9), 8) == 3
    assert plan.released(2, 8) == 5 and plan.released(3, 8) == 8
