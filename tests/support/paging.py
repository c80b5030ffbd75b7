"""Paging a connection both ways, as a client of the generic connection would
(docs/frontend.md#paging)."""

from typing import Any

from tests.support.client import Api


def inner(data: dict[str, Any]) -> dict[str, Any]:
    found = next(iter(data.values()))
    if "edges" not in found:
        found = next(iter(found.values()))
    return found  # type: ignore[no-any-return]


async def both_ways(api: Api, query: str, variables: dict[str, Any], size: int) -> list[str]:
    """Page forwards with first/after, then backwards with last/before from the end: the same
    rows in the same order, and PageInfo right on both sides of every page."""
    forward: list[str] = []
    after = None
    while True:
        page = inner(await api.gql(query, {**variables, "f": size, "a": after}))
        info, edges = page["pageInfo"], page["edges"]
        assert info["hasPreviousPage"] is (after is not None)
        assert info["startCursor"] == (edges[0]["cursor"] if edges else None)
        assert info["endCursor"] == (edges[-1]["cursor"] if edges else None)
        forward += [e["node"]["id"] for e in edges]
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    backward: list[str] = []
    before = None
    while True:
        page = inner(await api.gql(query, {**variables, "l": size, "b": before}))
        info, edges = page["pageInfo"], page["edges"]
        assert info["hasNextPage"] is (before is not None)
        assert len(edges) <= size
        backward = [e["node"]["id"] for e in edges] + backward
        if not info["hasPreviousPage"]:
            break
        before = info["startCursor"]
    assert backward == forward
    assert len(forward) == page["totalCount"]
    return forward
