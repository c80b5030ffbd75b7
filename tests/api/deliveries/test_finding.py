"""Finding things: deliveries, sending logs and profiles filtered and paged as a screen asks,
and a profile's history as a connection."""

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support import flows
from tests.support.client import Api
from tests.support.paging import both_ways

DELIVERIES = """query($s: [DeliveryStatus!], $c: Channel, $q: String, $since: DateTime,
  $until: DateTime, $p: ID, $o: DeliveryOrder, $f: Int, $a: String, $l: Int, $b: String) {
  deliveries(statuses: $s, channel: $c, search: $q, createdSince: $since, createdUntil: $until,
    parentId: $p, orderBy: $o, first: $f, after: $a, last: $l, before: $b) {
    totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id label } } } }"""
LOGS = """query($id: ID!, $s: [SendingLogStatus!], $t: FailureType, $r: FailureReason,
  $q: String, $x: Boolean) {
  sendingLogs(deliveryId: $id, statuses: $s, failureType: $t, failureReason: $r, search: $q,
    excluded: $x, first: 100) { totalCount edges { node { address failureReason } } }
  delivery(id: $id) { exclusions { reason count }
    sendingLogs(statuses: $s, failureType: $t, failureReason: $r, search: $q, excluded: $x)
    { totalCount } } }"""
PROFILES = """query($q: String, $f: Int, $a: String, $l: Int, $b: String) {
  profiles(search: $q, first: $f, after: $a, last: $l, before: $b) {
    totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id email } } } }"""
HISTORY = """query($id: ID!, $f: Int, $a: String, $l: Int, $b: String) { profile(id: $id) {
  historyConnection(first: $f, after: $a, last: $l, before: $b) {
    totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id delivery { id } } } } } }"""


def labels(data: dict[str, Any]) -> list[str]:
    return [e["node"]["label"] for e in data["deliveries"]["edges"]]


async def test_deliveries_are_found_by_status_channel_label_time_and_parent(api: Api) -> None:
    ids = await flows.import_profiles(api, ["f1@example.com"])
    start = datetime.now(UTC) - timedelta(seconds=1)
    made = {}
    for label, channel in (("Spring sale", "EMAIL"), ("summer SALE", "SMS"), ("News", "EMAIL")):
        made[label] = (await flows.create_delivery(api, ids, label=label, channel=channel))["id"]
    await flows.prepare(api, made["News"])

    async def find(**variables: Any) -> list[str]:
        return labels(await api.gql(DELIVERIES, {"f": 50, **variables}, as_="reader"))

    assert await find() == ["News", "summer SALE", "Spring sale"]
    assert await find(s=["READY"]) == ["News"]
    assert await find(s=["READY", "DRAFT"]) == ["News", "summer SALE", "Spring sale"]
    assert await find(c="SMS") == ["summer SALE"]
    assert await find(q="sale") == ["summer SALE", "Spring sale"]
    assert await find(q="sale", s=["DRAFT"], c="EMAIL") == ["Spring sale"]
    assert await find(q="100%") == []  # % is a plain character
    assert await find(since=start.isoformat()) == ["News", "summer SALE", "Spring sale"]
    assert await find(until=start.isoformat()) == []
    assert await find(since=(start + timedelta(days=1)).isoformat()) == []
    assert await find(p="424242") == []  # an id that names nothing: an empty list
    assert await find(o="OLDEST_FIRST") == ["Spring sale", "summer SALE", "News"]
    assert await find(o="LABEL") == ["News", "Spring sale", "summer SALE"]
    assert (await find(o="RECENTLY_UPDATED"))[0] == "News"  # prepared last
    # every order pages both ways, its cursors refused by another order
    for order in ("LABEL", "RECENTLY_UPDATED", "OLDEST_FIRST"):
        assert len(await both_ways(api, DELIVERIES, {"o": order}, 2)) == 3
    cursor = (await api.gql(DELIVERIES, {"f": 1, "o": "LABEL"}))["deliveries"]["pageInfo"]
    error = await api.error(DELIVERIES, {"f": 1, "a": cursor["endCursor"]})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    error = await api.error(DELIVERIES, {"q": "x" * 321})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_sending_logs_are_found_by_status_reason_address_and_exclusion(api: Api) -> None:
    ids = await flows.import_profiles(
        api, ["ann@example.com", "bob@example.com", "annie@example.org", "bad-address"]
    )
    delivery_id = (await flows.create_delivery(api, ids))["id"]
    await flows.prepare(api, delivery_id)

    async def find(**variables: Any) -> list[str]:
        data = await api.gql(LOGS, {"id": delivery_id, **variables})
        found = [e["node"]["address"] for e in data["sendingLogs"]["edges"]]
        assert data["delivery"]["sendingLogs"]["totalCount"] == len(found)
        return sorted(found)

    assert await find(q="ANN") == ["ann@example.com", "annie@example.org"]
    assert await find(q="ann", s=["TO_SEND"]) == ["ann@example.com", "annie@example.org"]
    assert len(await find(x=False)) == 3
    assert await find(x=True) == ["bad-address"]
    assert await find(s=["IGNORED"]) == await find(x=True)
    excluded = await api.gql(LOGS, {"id": delivery_id, "x": True})
    reason = excluded["sendingLogs"]["edges"][0]["node"]["failureReason"]
    assert excluded["delivery"]["exclusions"] == [{"reason": reason, "count": 1}]
    assert await find(r=reason) == ["bad-address"]
    assert await find(t="HARD", q="bob") == []
    assert await find(s=["SENT", "FAILED"]) == []
    error = await api.error(LOGS, {"id": delivery_id, "r": "NOT_A_REASON"})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    # a query's unknown id is null; the filters stay for administrators
    missing = await api.gql(LOGS, {"id": "424242"})
    assert missing == {"sendingLogs": None, "delivery": None}
    error = await api.error(LOGS, {"id": delivery_id}, as_="starter")
    assert error["extensions"]["code"] == "FORBIDDEN"


async def test_profiles_are_found_by_address_or_name_and_their_history_is_paged(
    api: Api,
) -> None:
    emails = [f"hist{i}@example.com" for i in range(3)] + ["other@example.org"]
    ids = await flows.import_profiles(api, emails)
    found = await both_ways(api, PROFILES, {"q": "HIST"}, 2)
    assert found == ids[:3]
    named = await api.gql(PROFILES, {"q": "f3"}, as_="approver")  # first names are F0..F3
    assert [e["node"]["email"] for e in named["profiles"]["edges"]] == ["other@example.org"]
    error = await api.error(PROFILES, {}, as_="reader")
    assert error["extensions"]["code"] == "FORBIDDEN"

    for _ in range(3):
        delivery_id = (await flows.create_delivery(api, ids[:1]))["id"]
        await flows.prepare(api, delivery_id)
    messages = await both_ways(api, HISTORY, {"id": ids[0]}, 2)
    assert len(messages) == 3 and messages == sorted(messages, key=int, reverse=True)
    history = await api.gql(HISTORY, {"id": ids[0], "f": 1}, as_="preparer")
    assert history["profile"]["historyConnection"]["totalCount"] == 3
    error = await api.error(HISTORY, {"id": ids[0], "f": 101})
    assert "'first' must be between 0 and 100" in error["message"]
