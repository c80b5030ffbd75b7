"""SPEC §5 as the seeds read it (issue 14) and the KPI history (issue 16), over real HTTP.

- delivered % and bounces + errors % are over `processed` (docs/kpis.md);
- opens and clicks count only recipients whose log is SENT: a hit that comes before the EFS
  delivery report waits in the tracking logs and counts as soon as the report makes the log
  SENT; a LEGACY bounce takes its recipient's open away; no rate exceeds 100 %;
- open rate and CTR are null for SMS;
- `Delivery.kpiHistory`: coalesced points, the last one the current figures, readable by a
  role-less operator, at most MAX_POINTS per delivery (older ones thinned).
"""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from models import kpi_history
from models.kpi_history import MAX_POINTS, POINT_SECONDS
from models.sql import Sql
from models.tracking import Token, TokenKind, TrackingKind
from tests.support import flows
from tests.support.client import Api, event
from tests.support.server import RunningServer, api_for
from tests.support.tracking import BODY, path, until_stored

FIGURES = (
    "toSend processed sent pending failed deliveredRate bouncesAndErrorsRate opens clicks"
    " openRate clickThroughRate"
)
HISTORY = f"query($id: ID!) {{ delivery(id: $id) {{ kpiHistory {{ at kpis {{ {FIGURES} }} }} }} }}"
RECOUNT = f"mutation($id: ID!) {{ computeStats(deliveryId: $id) {{ {FIGURES} }} }}"


def current(delivery: dict[str, Any]) -> dict[str, Any]:
    return {k: delivery["kpis"][k] for k in FIGURES.split()}


def within_bounds(kpis: dict[str, Any]) -> None:
    """Every rate in [0, 100]; delivered + bounces + pending make 100 % of processed."""
    rates = ("deliveredRate", "bouncesAndErrorsRate", "openRate", "clickThroughRate")
    assert all(kpis[r] is None or 0 <= kpis[r] <= 100 for r in rates), kpis
    assert kpis["sent"] + kpis["failed"] + kpis["pending"] == kpis["processed"]
    assert kpis["opens"] <= kpis["sent"] and kpis["clicks"] <= kpis["sent"]


async def report(api: Api, message_id: str, kind: str, reason: str | None = None) -> None:
    response = await api.feedback([event(message_id, kind, reason=reason)])
    assert response.json()["accepted"] == 1, response.text


async def test_opens_count_once_the_log_is_sent_and_no_rate_exceeds_100(
    make_server: Callable[..., Any],
) -> None:
    running = await make_server(stats_refresh_seconds=0.2)
    async for api in api_for(running):
        # EFS: relayed logs are PENDING; rates over processed start at 0 %.
        delivery_id, (a, b, c, _d) = await flows.efs_delivery(api, 4, prefix="kpi", body=BODY)
        logs = {log["messageId"]: int(log["id"]) for log in await flows.logs(api, delivery_id)}
        async with httpx.AsyncClient(base_url=running.base_url) as http:
            for token in (
                Token(TokenKind.OPEN, int(delivery_id), logs[a]),
                Token(TokenKind.CLICK, int(delivery_id), logs[a], 0),
                Token(TokenKind.OPEN, int(delivery_id), logs[b]),
            ):
                assert (await http.get(path(running, token))).status_code in (200, 302)
        await until_stored(int(delivery_id), {TrackingKind.OPEN: 2, TrackingKind.CLICK: 1})
        counted = (await api.gql(RECOUNT, {"id": delivery_id}, as_="starter"))["computeStats"]
        assert (counted["opens"], counted["clicks"], counted["openRate"]) == (0, 0, 0.0)
        assert (counted["deliveredRate"], counted["bouncesAndErrorsRate"]) == (0.0, 0.0)

        # The delivery report makes a's log SENT: its open and click count at once.
        await report(api, a, "delivered")
        await report(api, b, "hard_bounce", "USER_UNKNOWN")  # b opened, but it failed
        await report(api, c, "delivered")
        done = await flows.wait_for(api, delivery_id, lambda d: d["kpis"]["pending"] == 1)
        kpis = current(done)
        assert kpis == {
            "toSend": 4, "processed": 4, "sent": 2, "pending": 1, "failed": 1,
            "deliveredRate": 50.0, "bouncesAndErrorsRate": 25.0,
            "opens": 1, "clicks": 1, "openRate": 50.0, "clickThroughRate": 50.0,
        }  # fmt: skip
        within_bounds(kpis)
        recount = (await api.gql(RECOUNT, {"id": delivery_id}, as_="starter"))["computeStats"]
        assert recount == kpis

        # The history: coalesced points, each within bounds, the last one the current figures,
        # readable by an operator without any role, as the KPIs are.
        history = (await api.gql(HISTORY, {"id": delivery_id}, as_="reader"))["delivery"]
        points = history["kpiHistory"]
        assert 1 <= len(points) <= MAX_POINTS
        assert points[-1]["kpis"] == kpis
        assert [p["at"] for p in points] == sorted(p["at"] for p in points)
        for point in points:
            within_bounds(point["kpis"])

        # LEGACY: Delivered % is 100 % of what was relayed; a bounce takes the open away.
        legacy, (e, f) = await flows.delivery_with_ids(api, 2, prefix="kpil", body=BODY)
        assert (legacy["kpis"]["deliveredRate"], legacy["kpis"]["sent"]) == (100.0, 2)
        logs = {log["messageId"]: int(log["id"]) for log in await flows.logs(api, legacy["id"])}
        async with httpx.AsyncClient(base_url=running.base_url) as http:
            for message_id in (e, f):
                token = Token(TokenKind.OPEN, int(legacy["id"]), logs[message_id])
                await http.get(path(running, token))
        opened = await flows.wait_for(api, legacy["id"], lambda d: d["kpis"]["opens"] == 2)
        assert opened["kpis"]["openRate"] == 100.0
        await report(api, e, "hard_bounce", "USER_UNKNOWN")
        bounced = await flows.wait_for(api, legacy["id"], lambda d: d["kpis"]["failed"] == 1)
        kpis = current(bounced)
        assert (kpis["sent"], kpis["opens"], kpis["openRate"]) == (1, 1, 100.0)
        assert (kpis["deliveredRate"], kpis["bouncesAndErrorsRate"]) == (50.0, 50.0)
        within_bounds(kpis)
        assert (await api.gql(RECOUNT, {"id": legacy["id"]}, as_="starter"))["computeStats"] == kpis


async def test_sms_has_no_open_rate_nor_click_through_rate(api: Api) -> None:
    data = await api.gql(
        "mutation($p: [ProfileInput!]!) { importProfiles(profiles: $p) { profiles { id } } }",
        {"p": [{"phone": "+33612345678"}, {"phone": "+33698765432"}]},
    )
    ids = [p["id"] for p in data["importProfiles"]["profiles"]]
    created = await flows.create_delivery(api, ids, channel="SMS", subject=None, body="Sale!")
    await flows.prepare(api, created["id"])
    await flows.confirm(api, created["id"])
    done = await flows.wait_for(api, created["id"], lambda d: d["status"] == "SENT")
    kpis = current(done)
    assert (kpis["openRate"], kpis["clickThroughRate"]) == (None, None)
    assert (kpis["deliveredRate"], kpis["processed"]) == (100.0, 2)
    recount = (await api.gql(RECOUNT, {"id": created["id"]}, as_="starter"))["computeStats"]
    assert recount == kpis


async def test_the_history_of_a_delivery_stays_bounded_and_keeps_its_first_point(
    server: RunningServer, api: Api
) -> None:
    done, (message_id,) = await flows.efs_delivery(api, 1, prefix="hist")
    delivery_id = int(done)
    sql = Sql()
    now = int(datetime.now(UTC).timestamp()) // POINT_SECONDS
    start = now - 10 * MAX_POINTS  # a long send: a point every slot until a while ago
    await sql.execute("DELETE FROM kpi_point WHERE delivery_id = ?", [delivery_id])
    await sql.many(
        "INSERT INTO kpi_point (delivery_id, slot, at, to_send, processed, sent, pending,"
        " failed, opens, clicks, complaints, unsubscriptions)"
        " VALUES (?, ?, ?, 1, 1, 0, 1, 0, 0, 0, 0, 0)",
        [
            [delivery_id, start + i, sql.ts(server_time(start + i))]
            for i in range(MAX_POINTS)  # full: the next slot is one too many
        ],
    )
    # The server's memo of the slot each delivery wrote last (in this process): forgotten, so
    # that the next write looks at the stored points however soon it comes (a new slot would).
    kpi_history._last_slot.clear()
    await report(api, message_id, "delivered")  # one point too many: the oldest half thinned
    await flows.wait_for(api, done, lambda d: d["kpis"]["sent"] == 1)
    points = (await api.gql(HISTORY, {"id": done}))["delivery"]["kpiHistory"]
    stored = MAX_POINTS + 1
    assert len(points) == stored - (stored // 2) // 2  # every other one of the older half
    assert points[0]["at"].startswith(server_time(start).isoformat()[:19])  # the first stays
    assert points[-1]["kpis"]["sent"] == 1
    rows = await sql.rows(
        "SELECT slot FROM kpi_point WHERE delivery_id = ? ORDER BY slot", [delivery_id]
    )
    slots = [int(r["slot"]) for r in rows]
    assert slots[1] - slots[0] == 2 and slots[-2] - slots[-3] == 1  # older coarser, recent fine
    # Past figures never share the current figures' cache key (DeploymentKpis.id).
    keyed = "query($id: ID!) { delivery(id: $id) { kpis { id } kpiHistory { kpis { id } } } }"
    seen = (await api.gql(keyed, {"id": done}))["delivery"]
    keys = [p["kpis"]["id"] for p in seen["kpiHistory"]]
    assert seen["kpis"]["id"] == done and done not in keys and len(set(keys)) == len(keys)
    assert keys[: len(slots)] == [f"{delivery_id}@{slot}" for slot in slots]
    assert keys[len(slots) :] in ([], [f"{delivery_id}@live"])


def server_time(slot: int) -> datetime:
    return datetime.fromtimestamp(slot * POINT_SECONDS, UTC)
