"""SPEC §2: a recurring delivery; each occurrence is a delivery of its own."""

import asyncio
from datetime import timedelta
from typing import Any

from tests.support import clock, flows
from tests.support.client import Api, event
from tests.support.server import RunningServer

FIELDS = """id label status parentId confirmedBy validityPeriod
  recurrence { intervalSeconds count confirmEachOccurrence occurrencesCreated nextOccurrenceAt }
  kpis { toSend processed } sendingLogs(first: LOGS) { totalCount edges { node { messageId } } }"""
# Pages small enough for the query cost limit (docs/limits.md): the tests' deliveries are few.
DELIVERIES = f"{{ deliveries(first: 20) {{ edges {{ node {{ {FIELDS} }} }} }} }}".replace(
    "LOGS", "20"
)
LINKS = """query($id: ID!, $c: ID!, $l: Int) {
  delivery(id: $id) { parent { id } occurrences(last: $l) { totalCount edges { node { id } } } }
  child: delivery(id: $c) { parent { id label } confirmedByOperator { id name } } }"""
ONE = f"query($id: ID!) {{ delivery(id: $id) {{ {FIELDS} }} }}".replace("LOGS", "500")


async def recurring(
    api: Api, emails: list[str | None], **recurrence: Any
) -> tuple[str, dict[str, Any]]:
    ids = await flows.import_profiles(api, emails)
    created = await flows.create_delivery(
        api, ids, label="Weekly", validityPeriod=60, recurrence=recurrence
    )
    prepared = await flows.prepare(api, created["id"])
    return created["id"], prepared


async def occurrences(api: Api, parent_id: str) -> list[dict[str, Any]]:
    edges = (await api.gql(DELIVERIES))["deliveries"]["edges"]
    found = [e["node"] for e in edges if e["node"]["parentId"] == parent_id]
    return sorted(found, key=lambda d: int(d["id"]))


async def one(api: Api, delivery_id: str) -> dict[str, Any]:
    return (await api.gql(ONE, {"id": delivery_id}))["delivery"]  # type: ignore[no-any-return]


async def wait_occurrences(api: Api, parent_id: str, predicate: Any) -> list[dict[str, Any]]:
    """Poll the occurrences (for up to about 10 s) until predicate(occurrences) holds."""
    found: list[dict[str, Any]] = []
    for _ in range(200):
        found = await occurrences(api, parent_id)
        if predicate(found):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out; occurrences {found}")


TRAIL = (
    "query($id: ID!) { delivery(id: $id) { auditTrail(first: 50) { edges { node {"
    " action actor detail } } } } }"
)
SUMS = "toSend processed sent pending failed deliveredRate bouncesAndErrorsRate opens openRate"


async def test_an_occurrence_waiting_for_confirmation_is_superseded_by_the_next_one(
    api: Api, server: RunningServer
) -> None:
    """Occurrences never pile up in PENDING_CONFIRMATION: when the next one is due, the one
    still waiting is STOPPED by the engine (recorded in its audit trail), so that a late
    confirmation sends the newest occurrence (docs/lifecycle.md)."""
    parent_id, prepared = await recurring(
        api,
        ["r1@example.com", "r2@example.com", "broken"],
        intervalSeconds=1,
        count=2,
        confirmEachOccurrence=True,
    )
    assert prepared["status"] == "READY"
    assert prepared["kpis"]["toSend"] == 2  # before any occurrence: what one targets
    assert (await one(api, parent_id))["sendingLogs"]["totalCount"] == 0  # a template only

    confirmed = await flows.confirm(api, parent_id)
    assert confirmed["status"] == "SCHEDULED"
    found = await wait_occurrences(
        api, parent_id, lambda f: len(f) == 2 and f[0]["status"] == "STOPPED"
    )
    for index, occurrence in enumerate(found, start=1):
        assert occurrence["label"] == f"Weekly #{index}"
        assert occurrence["confirmedBy"] is None
        assert occurrence["kpis"]["toSend"] == 2
        assert occurrence["validityPeriod"] == 60
        assert occurrence["sendingLogs"]["totalCount"] == 3  # its own logs, exclusion included
    assert found[1]["status"] == "PENDING_CONFIRMATION"
    trail = (await api.gql(TRAIL, {"id": found[0]["id"]}))["delivery"]["auditTrail"]["edges"]
    stop = trail[-1]["node"]
    assert (stop["action"], stop["actor"]) == ("STOPPED", "ENGINE")
    assert stop["detail"]["from"] == "PENDING_CONFIRMATION"
    assert stop["detail"]["supersededBy"] == int(found[1]["id"])
    assert stop["detail"]["cancelled"] == 2
    assert "superseded by occurrence #2" in stop["detail"]["reason"]
    parent = await flows.wait_for(api, parent_id, lambda d: d["status"] == "FINISHED")
    assert (parent["kpis"]["toSend"], parent["kpis"]["processed"]) == (4, 0)  # the sums
    assert (await one(api, parent_id))["recurrence"]["occurrencesCreated"] == 2
    assert not server.runtime.mta.relayed  # nothing is sent before someone confirms

    error = await api.error(
        "mutation($id: ID!) { confirmSend(deliveryId: $id) { id } }",
        {"id": found[0]["id"]},
        as_="starter",
    )
    assert error["extensions"]["code"] == "INVALID_STATE"  # superseded: too late
    error = await api.error(
        "mutation($id: ID!) { confirmSend(deliveryId: $id) { id } }",
        {"id": found[1]["id"]},
        as_="preparer",
    )
    assert error["extensions"]["code"] == "FORBIDDEN"
    second = await flows.confirm(api, found[1]["id"])
    assert second["status"] == "IN_PROGRESS"
    assert second["confirmedBy"] is not None
    await flows.wait_for(api, found[1]["id"], lambda d: d["status"] == "SENT")
    sent = {
        e["node"]["messageId"] for e in (await one(api, found[1]["id"]))["sendingLogs"]["edges"]
    }
    assert set(server.runtime.mta.relayed) == sent - {None}
    assert sorted(server.runtime.mta.relayed.values()) == [1, 1]
    parent = await flows.wait_for(api, parent_id, lambda d: d["kpis"]["processed"] == 2)
    # LEGACY: 100 % of what was relayed, though the superseded occurrence's 2 count in toSend
    assert parent["kpis"]["deliveredRate"] == 100.0
    assert parent["kpis"]["toSend"] == 4
    # links: each occurrence names its parent; the parent pages its occurrences, newest first
    linked = await api.gql(LINKS, {"id": parent_id, "c": found[1]["id"]}, as_="reader")
    ids = [found[1]["id"], found[0]["id"]]
    assert [e["node"]["id"] for e in linked["delivery"]["occurrences"]["edges"]] == ids
    assert linked["delivery"]["occurrences"]["totalCount"] == 2
    assert linked["delivery"]["parent"] is None
    assert linked["child"]["parent"] == {"id": parent_id, "label": "Weekly"}
    assert linked["child"]["confirmedByOperator"]["name"] == second["confirmedBy"]
    backwards = await api.gql(LINKS, {"id": parent_id, "c": found[1]["id"], "l": 1})
    assert [e["node"]["id"] for e in backwards["delivery"]["occurrences"]["edges"]] == ids[1:]


async def test_occurrences_without_confirmation_are_sent_at_once(
    api: Api, server: RunningServer
) -> None:
    parent_id, _ = await recurring(
        api, ["s1@example.com", "s2@example.com"], intervalSeconds=1, count=2
    )
    starter = (await api.gql("{ me { name } }", as_="starter"))["me"]["name"]
    await flows.confirm(api, parent_id)
    await flows.wait_for(api, parent_id, lambda d: d["status"] == "FINISHED")
    found = await wait_occurrences(
        api, parent_id, lambda f: len(f) == 2 and all(o["status"] == "SENT" for o in f)
    )
    message_ids: set[str] = set()
    for occurrence in found:
        assert occurrence["confirmedBy"] == starter  # confirmed with the parent
        assert occurrence["kpis"]["processed"] == 2
        message_ids |= {e["node"]["messageId"] for e in occurrence["sendingLogs"]["edges"]}
    assert len(message_ids) == 4
    # SPEC §5: the recurring delivery's KPIs are the sums of its occurrences', rates from the
    # sums, and computeStats on it recounts every occurrence to the same figures.
    query = f"query($id: ID!) {{ delivery(id: $id) {{ kpis {{ {SUMS} }}"
    query += f" kpiHistory {{ at kpis {{ {SUMS} }} }} }} }}"
    live = (await api.gql(query, {"id": parent_id}))["delivery"]
    assert live["kpis"] == {
        "toSend": 4, "processed": 4, "sent": 4, "pending": 0, "failed": 0,
        "deliveredRate": 100.0, "bouncesAndErrorsRate": 0.0, "opens": 0, "openRate": 0.0,
    }  # fmt: skip
    assert live["kpiHistory"][-1]["kpis"] == live["kpis"]
    computed = await api.gql(
        f"mutation($id: ID!) {{ computeStats(deliveryId: $id) {{ {SUMS} }} }}",
        {"id": parent_id},
        as_="starter",
    )
    assert computed["computeStats"] == live["kpis"]
    relayed = server.runtime.mta.relayed
    assert set(relayed) == message_ids
    assert set(relayed.values()) == {1}
    assert len(await occurrences(api, parent_id)) == 2  # no third one after count


async def test_stopping_a_recurring_delivery_ends_its_occurrences(api: Api) -> None:
    parent_id, _ = await recurring(
        api, ["t1@example.com"], intervalSeconds=1, confirmEachOccurrence=True
    )
    await flows.confirm(api, parent_id)
    await wait_occurrences(api, parent_id, lambda f: len(f) >= 1)
    stopped = await api.gql(
        "mutation($id: ID!) { stopDelivery(id: $id) { status recurrence { nextOccurrenceAt } } }",
        {"id": parent_id},
        as_="starter",
    )
    assert stopped["stopDelivery"]["status"] == "STOPPED"
    assert stopped["stopDelivery"]["recurrence"]["nextOccurrenceAt"] is None
    # On a loaded machine a second occurrence may have been spawned before the stop: what
    # counts is that none comes after it.
    at_stop = len(await occurrences(api, parent_id))
    # An hour on, the next occurrence (one second after the last) is long due: the sentinel's
    # send takes the engine through passes at that time.
    with clock.moved(timedelta(hours=1)):
        await flows.sent_delivery(api, ["sentinel@example.com"])  # the engine is alive
        assert len(await occurrences(api, parent_id)) == at_stop
    assert (await one(api, parent_id))["status"] == "STOPPED"


async def test_a_recurring_delivery_dashboard_follows_its_occurrences_live(api: Api) -> None:
    """The recurring delivery's figures are its occurrences' sums (SPEC §5), and its progress
    stream moves when an occurrence's figures do (here: delivery reports), though nothing
    happens to the recurring delivery itself (its next occurrence is an hour away)."""
    ids = await flows.import_profiles(api, ["l1@example.com", "l2@example.com"])
    created = await flows.create_delivery(
        api, ids, label="Hourly", feedbackMode="EFS", recurrence={"intervalSeconds": 3600}
    )
    parent_id = created["id"]
    await flows.prepare(api, parent_id)
    progress = (
        "subscription($id: ID!) { deploymentProgress(deliveryId: $id) { status"
        " kpis { toSend processed sent pending deliveredRate } } }"
    )
    async with api.subscribe(progress, {"id": parent_id}) as sub:
        await flows.confirm(api, parent_id)
        await sub.until(lambda d: d["deploymentProgress"]["kpis"]["processed"] == 2)
        (occurrence,) = await wait_occurrences(
            api, parent_id, lambda f: len(f) == 1 and f[0]["status"] == "SENT"
        )
        messages = [e["node"]["messageId"] for e in occurrence["sendingLogs"]["edges"]]
        response = await api.feedback([event(m, "delivered") for m in messages])
        assert response.json()["accepted"] == 2
        sums = await sub.until(lambda d: d["deploymentProgress"]["kpis"]["sent"] == 2)
        assert sums["deploymentProgress"]["status"] == "SCHEDULED"
        assert sums["deploymentProgress"]["kpis"] == {
            "toSend": 2, "processed": 2, "sent": 2, "pending": 0, "deliveredRate": 100.0,
        }  # fmt: skip
    stop = "mutation($id: ID!) { stopDelivery(id: $id) { id } }"
    await api.gql(stop, {"id": parent_id}, as_="starter")
