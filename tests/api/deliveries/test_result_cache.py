"""The result cache (graphql_schema/results.py, docs/limits.md): a page that nothing changed is
served again without being executed, and every change is seen at the next request, whether this
server made it, another process's connection, or the clock moving on."""

import json
import sqlite3
from datetime import timedelta
from typing import Any

import asyncpg

from graphql_schema.results import ResultCache
from models import clock
from server.db import asyncpg_dsn
from tests.support import flows
from tests.support.client import Api
from tests.support.server import RunningServer, client_of

PAGE = """{ deliveries(first: 20) { totalCount
  edges { node { id label status kpis { toSend processed deliveredRate } } } } }"""
RENAME = "mutation($id: ID!, $l: String!) { updateDelivery(id: $id, patch: {label: $l}) { id } }"
NEXT = "query($id: ID!) { delivery(id: $id) { recurrence { nextOccurrences(count: 1) } } }"


def _graphql(server: RunningServer) -> Any:
    return next(r.endpoint for r in server.app.routes if getattr(r, "path", "") == "/graphql")


def results_of(server: RunningServer) -> ResultCache:
    cache = _graphql(server).schema.execution_context_class.results
    assert isinstance(cache, ResultCache)
    return cache


async def labels(api: Api, **kwargs: Any) -> dict[str, str]:
    edges = (await api.gql(PAGE, **kwargs))["deliveries"]["edges"]
    return {e["node"]["id"]: e["node"]["label"] for e in edges}


async def rename_elsewhere(database_url: str, delivery_id: str, label: str) -> None:
    """What another worker or a script on the same database does: its own connection."""
    if database_url.startswith("sqlite://"):
        with sqlite3.connect(database_url.removeprefix("sqlite://")) as conn:
            conn.execute("UPDATE delivery SET label = ? WHERE id = ?", (label, int(delivery_id)))
        return
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute("UPDATE delivery SET label = $1 WHERE id = $2", label, int(delivery_id))
    finally:
        await conn.close()


async def test_an_unchanged_page_is_served_again_and_any_write_is_seen_at_once(
    api: Api, server: RunningServer, db_kind: str
) -> None:
    ids = await flows.import_profiles(api, ["cache1@example.com", "cache2@example.com"])
    delivery_id = (await flows.create_delivery(api, ids, label="First"))["id"]
    cache = results_of(server)

    first = await api.gql(PAGE)
    hits = cache.hits
    assert await api.gql(PAGE) == first
    if db_kind == "sqlite":
        # Served from the cache. On PostgreSQL the version is the cluster's snapshot, which
        # the other test processes' writes to their own databases move at any time.
        assert cache.hits > hits

    await api.gql(RENAME, {"id": delivery_id, "l": "Renamed here"})
    assert (await labels(api))[delivery_id] == "Renamed here"

    await rename_elsewhere(server.settings.database_url, delivery_id, "Renamed elsewhere")
    assert (await labels(api))[delivery_id] == "Renamed elsewhere"

    # another operator (here with fewer roles) never gets the admin's kept answer
    assert (await labels(api, as_="reader"))[delivery_id] == "Renamed elsewhere"
    assert await api.gql(PAGE, as_="reader") == await api.gql(PAGE, as_="reader")


async def test_an_answer_that_read_the_clock_is_not_kept(api: Api) -> None:
    ids = await flows.import_profiles(api, ["cache3@example.com"])
    recurring = await flows.create_delivery(
        api, ids, label="Hourly", recurrence={"intervalSeconds": 3600, "count": 3}
    )
    before = (await api.gql(NEXT, {"id": recurring["id"]}))["delivery"]["recurrence"][
        "nextOccurrences"
    ]
    assert (await api.gql(NEXT, {"id": recurring["id"]}))["delivery"]["recurrence"][
        "nextOccurrences"
    ]
    clock.advance(timedelta(hours=5))
    try:
        after = (await api.gql(NEXT, {"id": recurring["id"]}))["delivery"]["recurrence"][
            "nextOccurrences"
        ]
    finally:
        clock.reset()
    assert after[0] >= before[0]
    assert after != before  # no write in between: only the clock moved


async def test_the_cache_can_be_turned_off(make_server: Any) -> None:
    server = await make_server(result_cache_size=0)
    async with client_of(server) as api:
        ids = await flows.import_profiles(api, ["cache4@example.com"])
        await flows.create_delivery(api, ids)
        assert await api.gql(PAGE) == await api.gql(PAGE)
        assert _graphql(server).schema.execution_context_class.results is None


async def test_an_answer_over_a_sixteenth_of_the_byte_budget_is_not_kept(
    make_server: Any, db_kind: str
) -> None:
    server = await make_server(result_cache_max_bytes=16 * 200)  # answers up to 200 bytes
    async with client_of(server) as api:
        ids = await flows.import_profiles(api, ["cache5@example.com", "cache6@example.com"])
        for _ in range(3):
            await flows.create_delivery(api, ids, label="A label long enough to be big")
        cache = results_of(server)
        big = await api.gql(PAGE)
        assert len(json.dumps(big)) > 200
        hits = cache.hits
        assert await api.gql(PAGE) == big
        assert cache.hits == hits  # executed again: never kept
        small = "{ deliveries(first: 1) { totalCount } }"
        assert await api.gql(small) == await api.gql(small)
        if db_kind == "sqlite":  # (PostgreSQL: see the first test)
            assert cache.hits == hits + 1
        assert 0 < cache.bytes <= cache.max_bytes or db_kind == "postgres"
