"""Keyset pagination (CONTRACT: Relay-style connections with totalCount)."""

from typing import Any

from tests.support import flows
from tests.support.client import Api
from tests.support.paging import both_ways, inner

PAGE = "totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id status } }"
LOGS = f"""query($id: ID!, $s: SendingLogStatus, $f: Int, $a: String) {{
  sendingLogs(deliveryId: $id, status: $s, first: $f, after: $a) {{ {PAGE} }} }}"""
NESTED = f"""query($id: ID!, $s: SendingLogStatus, $f: Int, $a: String) {{
  delivery(id: $id) {{ sendingLogs(status: $s, first: $f, after: $a) {{ {PAGE} }} }} }}"""
DELIVERIES = f"""query($s: DeliveryStatus, $f: Int, $a: String) {{
  deliveries(status: $s, first: $f, after: $a) {{ {PAGE} }} }}"""


def connection(data: dict[str, Any]) -> dict[str, Any]:
    if "delivery" in data:
        return data["delivery"]["sendingLogs"]  # type: ignore[no-any-return]
    return next(iter(data.values()))


async def pages(
    api: Api, query: str, variables: dict[str, Any], size: int = 2
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = None
    while True:
        page = connection(await api.gql(query, {**variables, "f": size, "a": after}))
        out.append(page)
        if not page["pageInfo"]["hasNextPage"]:
            return out
        after = page["pageInfo"]["endCursor"]
        assert len(out) < 100, "pagination does not end"


def check_pages(found: list[dict[str, Any]], total: int, size: int = 2) -> list[str]:
    """Every page is full but the last, says the same total, ends at its last edge's cursor."""
    ids: list[str] = []
    for index, page in enumerate(found):
        last = index == len(found) - 1
        assert page["totalCount"] == total
        assert page["pageInfo"]["hasNextPage"] is not last
        edges = page["edges"]
        assert len(edges) == (total - size * index if last else size)
        assert page["pageInfo"]["endCursor"] == (edges[-1]["cursor"] if edges else None)
        ids += [e["node"]["id"] for e in edges]
    assert len(ids) == len(set(ids)) == total  # no overlap, nothing missing
    return ids


async def prepared(api: Api, emails: list[str | None]) -> str:
    ids = await flows.import_profiles(api, emails)
    delivery_id: str = (await flows.create_delivery(api, ids))["id"]
    await flows.prepare(api, delivery_id)
    return delivery_id


async def test_sending_logs_come_in_pages_that_cover_all_without_overlap(api: Api) -> None:
    emails: list[str | None] = [f"p{i}@example.com" for i in range(5)]
    delivery_id = await prepared(api, [*emails, "bad-1", "bad-2"])
    everything = await flows.logs(api, delivery_id)
    for query in (LOGS, NESTED):
        ids = check_pages(await pages(api, query, {"id": delivery_id}), total=7)
        assert ids == [log["id"] for log in everything]  # in a stable order
        ignored = check_pages(await pages(api, query, {"id": delivery_id, "s": "IGNORED"}), 2)
        assert set(ignored) == {log["id"] for log in everything if log["excluded"]}
        to_send = check_pages(await pages(api, query, {"id": delivery_id, "s": "TO_SEND"}), 5)
        assert set(to_send) == {log["id"] for log in everything if not log["excluded"]}
        assert check_pages(await pages(api, query, {"id": delivery_id, "s": "SENT"}), 0) == []


async def test_a_page_of_the_maximum_size_holds_everything(api: Api) -> None:
    delivery_id = await prepared(api, [f"m{i}@example.com" for i in range(3)])
    [page] = await pages(api, LOGS, {"id": delivery_id}, size=500)
    assert (page["totalCount"], len(page["edges"]), page["pageInfo"]["hasNextPage"]) == (
        3,
        3,
        False,
    )
    empty = connection(await api.gql(LOGS, {"id": delivery_id, "f": 0}))
    assert empty["edges"] == []
    assert empty["totalCount"] == 3
    assert empty["pageInfo"]["endCursor"] is None


async def test_sending_logs_of_another_delivery_are_not_listed(api: Api) -> None:
    first = await prepared(api, ["x1@example.com", "x2@example.com"])
    second = await prepared(api, ["y1@example.com"])
    page = connection(await api.gql(LOGS, {"id": second, "f": 10}))
    assert page["totalCount"] == 1
    cursor = connection(await api.gql(LOGS, {"id": first, "f": 1}))["pageInfo"]["endCursor"]
    after = connection(await api.gql(LOGS, {"id": second, "f": 10, "a": cursor}))
    assert [e["node"]["id"] for e in after["edges"]] == [e["node"]["id"] for e in page["edges"]]


async def test_deliveries_come_newest_first_in_pages_with_a_status_filter(api: Api) -> None:
    ids = await flows.import_profiles(api, ["d@example.com"])
    created = [(await flows.create_delivery(api, ids, label=f"D{i}"))["id"] for i in range(5)]
    for delivery_id in created[:3]:
        await flows.prepare(api, delivery_id)

    every = check_pages(await pages(api, DELIVERIES, {}), total=5)
    assert every == list(reversed(created))
    ready = check_pages(await pages(api, DELIVERIES, {"s": "READY"}), total=3)
    assert ready == list(reversed(created[:3]))
    draft = check_pages(await pages(api, DELIVERIES, {"s": "DRAFT"}), total=2)
    assert draft == list(reversed(created[3:]))
    assert check_pages(await pages(api, DELIVERIES, {"s": "SENT"}), total=0) == []


async def test_deliveries_created_while_paging_do_not_shift_the_pages(api: Api) -> None:
    ids = await flows.import_profiles(api, ["k@example.com"])
    created = [(await flows.create_delivery(api, ids))["id"] for _ in range(4)]
    first = connection(await api.gql(DELIVERIES, {"f": 2}))
    assert [e["node"]["id"] for e in first["edges"]] == created[:1:-1]
    newer = (await flows.create_delivery(api, ids))["id"]
    second = connection(await api.gql(DELIVERIES, {"f": 2, "a": first["pageInfo"]["endCursor"]}))
    assert [e["node"]["id"] for e in second["edges"]] == created[1::-1]
    assert second["pageInfo"]["hasNextPage"] is False
    assert second["totalCount"] == 5
    assert newer not in {e["node"]["id"] for e in first["edges"] + second["edges"]}


BOTH = "totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"
BOTH += " edges { cursor node { id } }"
BACK_LOGS = f"""query($id: ID!, $f: Int, $a: String, $l: Int, $b: String) {{
  delivery(id: $id) {{ sendingLogs(first: $f, after: $a, last: $l, before: $b) {{ {BOTH} }} }} }}"""
BACK_ROOT_LOGS = f"""query($id: ID!, $f: Int, $a: String, $l: Int, $b: String) {{
  sendingLogs(deliveryId: $id, first: $f, after: $a, last: $l, before: $b) {{ {BOTH} }} }}"""
BACK_DELIVERIES = f"""query($f: Int, $a: String, $l: Int, $b: String) {{
  deliveries(first: $f, after: $a, last: $l, before: $b) {{ {BOTH} }} }}"""
BACK_TRAIL = f"""query($id: ID!, $f: Int, $a: String, $l: Int, $b: String) {{
  delivery(id: $id) {{ auditTrail(first: $f, after: $a, last: $l, before: $b) {{ {BOTH} }} }} }}"""


async def test_every_connection_pages_both_ways(api: Api) -> None:
    delivery_id = await prepared(api, [f"b{i}@example.com" for i in range(5)])
    ids = await flows.import_profiles(api, ["bd@example.com"])
    for _ in range(2):
        await flows.create_delivery(api, ids)
    logs = await both_ways(api, BACK_LOGS, {"id": delivery_id}, 2)
    assert logs == await both_ways(api, BACK_ROOT_LOGS, {"id": delivery_id}, 3)
    assert len(logs) == 5
    deliveries = await both_ways(api, BACK_DELIVERIES, {}, 2)
    assert deliveries[-1] == delivery_id and len(deliveries) == 3  # newest first
    assert len(await both_ways(api, BACK_TRAIL, {"id": delivery_id}, 1)) == 2  # created, prepared
    # a window between two cursors, read from either end
    everything = inner(await api.gql(BACK_LOGS, {"id": delivery_id, "f": 5}))["edges"]
    bounds = {"id": delivery_id, "a": everything[0]["cursor"], "b": everything[4]["cursor"]}
    middle = [e["node"]["id"] for e in everything[1:4]]
    for size in ("f", "l"):
        page = inner(await api.gql(BACK_LOGS, {**bounds, size: 10}))
        assert [e["node"]["id"] for e in page["edges"]] == middle
        assert page["pageInfo"]["hasPreviousPage"] and page["pageInfo"]["hasNextPage"]
    error = await api.error(BACK_LOGS, {"id": delivery_id, "f": 1, "l": 1})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "not both" in error["message"]
    for last in (501, -1):
        error = await api.error(BACK_DELIVERIES, {"l": last})
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert "'last' must be between 0 and 500" in error["message"]
    error = await api.error(BACK_DELIVERIES, {"l": 1, "b": "garbage"})
    assert "'before' is not a valid cursor" in error["message"]
