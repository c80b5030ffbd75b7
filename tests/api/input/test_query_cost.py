"""Issue 11, finding 2: a role-less token could take the server down with queries that nest
lists within the depth and alias limits. Now an operation's cost is known before it runs and
refused over MAX_QUERY_COST (docs/limits.md), `Profile.history` is paged, the per-row look-ups
of a page are batched, and a request whose client went away stops."""

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLList,
    GraphQLNonNull,
    get_introspection_query,
    get_named_type,
    is_leaf_type,
    parse,
)

from graphql_schema import loaders
from graphql_schema.cost import CONNECTION_LISTS, LIST_BOUNDS, PAGE_ARGUMENTS, plan_for
from graphql_schema.schema import SchemaOptions, schema
from tests.support import flows
from tests.support.adversary import NESTED_HISTORY, PAGES_OF_TRAILS
from tests.support.client import Api
from tests.support.server import RunningServer, api_for

ROOT = Path(__file__).resolve().parents[3]
LIMIT = SchemaOptions().max_cost


def cost(query: str, variables: dict[str, Any] | None = None) -> int:
    return plan_for(schema._schema, parse(query)).cost(None, variables)


def assert_refused_for_cost(error: dict[str, Any], limit: int = LIMIT) -> int:
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert error["extensions"]["maxCost"] == limit
    spent = error["extensions"]["cost"]
    assert spent > limit
    assert error["message"].startswith(f"query cost {spent} exceeds the limit of {limit}")
    return int(spent)


class TestRefusedBeforeRunning:
    """Refused before anything runs (or cancelled): no storage involved, SQLite is enough."""

    @pytest.fixture
    def db_kind(self) -> str:
        return "sqlite"

    async def test_finding_2_nested_history_is_refused_with_its_cost_and_the_limit(
        self, api: Api
    ) -> None:
        error = await api.error(NESTED_HISTORY, as_="reader")
        assert assert_refused_for_cost(error) == cost(NESTED_HISTORY)
        # The server is still there for everyone.
        assert (await api.gql("{ me { name } }", as_="reader"))["me"]["name"]

    async def test_finding_2_thirty_pages_of_exclusions_and_audit_trails_are_refused(
        self, api: Api
    ) -> None:
        error = await api.error(PAGES_OF_TRAILS, as_="reader")
        assert assert_refused_for_cost(error) == cost(PAGES_OF_TRAILS)

    async def test_the_cost_reads_first_from_variables_and_refuses_subscriptions_too(
        self, api: Api
    ) -> None:
        nested = (
            "query($n: Int, $m: Int) { deliveries(first: $n) { edges { node {"
            " auditTrail(first: $m) { totalCount } } } } }"
        )
        assert await api.gql(nested, {"n": 10, "m": 10}) == {"deliveries": {"edges": []}}
        assert_refused_for_cost(await api.error(nested, {"n": 500, "m": 500}))
        # A variable's default counts when the variable is not given.
        defaulted = nested.replace("$m: Int", "$m: Int = 500")
        assert_refused_for_cost(await api.error(defaulted, {"n": 500}))

        subscription = (
            'subscription { deploymentProgress(deliveryId: "1") { delivery {'
            " sendingLogs(first: 500) { edges { node { profile { history(first: 100)"
            " { id } } } } } } } }"
        )
        async with api.subscribe(subscription, {}) as stream:
            with pytest.raises(Exception) as refused:
                await stream.next()
        assert "exceeds the limit" in str(refused.value)

    async def test_max_query_cost_follows_its_setting(
        self, make_server: Callable[..., Any]
    ) -> None:
        async for api in api_for(await make_server(max_query_cost=100)):
            query = "query($n: Int) { deliveries(first: $n) { edges { node { id } } } }"
            await api.gql(query, {"n": 33})  # 1 + 33 rows + 33 edges + 33 nodes = 100
            assert_refused_for_cost(await api.error(query, {"n": 34}), limit=100)

    async def test_a_query_whose_client_goes_away_is_cancelled(
        self, server: RunningServer, api: Api, blocked_profiles: dict[str, Any]
    ) -> None:
        async def ask() -> None:
            async with httpx.AsyncClient(base_url=server.base_url) as http:
                await http.post(
                    "/graphql",
                    json={"query": '{ profile(id: "1") { id } }'},
                    headers={"Authorization": f"Bearer {api.tokens['admin']}"},
                )

        asking = asyncio.create_task(ask())
        await asyncio.wait_for(blocked_profiles["started"].wait(), 10)
        asking.cancel()  # the client gives up: its connection closes
        await asyncio.wait_for(blocked_profiles["cancelled"].wait(), 10)


@pytest.fixture
async def blocked_profiles(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[dict[str, Any]]:
    """`profile(id:)`'s database read blocks until cancelled, and says when it started and
    was cancelled."""
    state: dict[str, Any] = {"started": asyncio.Event(), "cancelled": asyncio.Event()}

    async def blocking(*args: Any, **kwargs: Any) -> None:
        state["started"].set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            state["cancelled"].set()
            raise

    # profile(id:) reads through the request's profiles DataLoader (graphql_schema/loaders.py).
    monkeypatch.setattr(loaders, "_load_profiles", blocking)
    yield state


def test_normal_queries_fit_the_default_cost() -> None:
    """The dashboard's queries, GraphiQL's introspection and the heaviest pages the tests
    and benches read stay under the default."""
    app = "\n".join(f.read_text() for f in sorted((ROOT / "web" / "dashboard").glob("*.js")))
    constants = dict(re.findall(r"const ([A-Z_]+) = [`\"](.*?)[`\"];", app, re.DOTALL))
    dashboard = re.findall(r"`((?:query|mutation|subscription)\(.*?)`", app, re.DOTALL)
    assert len(dashboard) >= 5
    for query in dashboard:
        for _ in range(2):  # DELIVERY holds KPIS and WAITING
            query = re.sub(r"\$\{(\w+)\}", lambda m: constants[m.group(1)], query)
        assert cost(query, {"first": 500}) <= LIMIT, query
    assert cost(get_introspection_query(descriptions=True)) == 0
    assert cost("{ me { name roles } }") == 1
    page = "{ sendingLogs(deliveryId: 1, first: 500) { edges { node { id profile { id } } } } }"
    assert cost(page) == 2001  # the page and its rows, 500 edges, 500 nodes, 500 profiles
    imported = "mutation($p: [ProfileInput!]!) { importProfiles(profiles: $p) { profiles { id } } }"
    assert cost(imported, {"p": [{}] * 10_000}) == 10_001  # a full import, returned whole


def test_every_list_of_objects_has_a_known_length() -> None:
    """A new list of objects without a page argument fails here until its bound is written
    down in graphql_schema/cost.py (LIST_BOUNDS); until then it counts as MAX_PAGE items."""
    unbounded = set()
    for type_name, type_ in schema._schema.type_map.items():
        for field_name, field in (getattr(type_, "fields", None) or {}).items():
            kind = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
            if type_name.startswith("__") or not hasattr(field, "args"):
                continue  # introspection, input objects
            if not isinstance(kind, GraphQLList) or is_leaf_type(get_named_type(kind)):
                continue
            paged = any(a in field.args for a in PAGE_ARGUMENTS)
            in_connection = field_name in CONNECTION_LISTS and type_name.endswith("Connection")
            if not paged and not in_connection:
                unbounded.add((type_name, field_name))
    assert unbounded == set(LIST_BOUNDS)


# ---- Profile.history is paged ------------------------------------------------------------


async def test_history_is_a_page_newest_first_with_first_and_after(
    make_server: Callable[..., Any],
) -> None:
    async for api in api_for(await make_server(engine_enabled=False)):
        profile = (await flows.import_profiles(api, ["h@example.com"]))[0]
        for _ in range(3):
            await flows.prepare(api, (await flows.create_delivery(api, [profile]))["id"])
        query = (
            "query($id: ID!, $n: Int, $a: ID) { profile(id: $id) {"
            " history(first: $n, after: $a) { id deliveryId } } }"
        )
        everything = (await api.gql(query, {"id": profile}))["profile"]["history"]
        assert [h["deliveryId"] for h in everything] == ["3", "2", "1"]  # newest first
        first_two = (await api.gql(query, {"id": profile, "n": 2}))["profile"]["history"]
        assert first_two == everything[:2]
        rest = await api.gql(query, {"id": profile, "n": 2, "a": first_two[-1]["id"]})
        assert rest["profile"]["history"] == everything[2:]
        error = await api.error(query, {"id": profile, "n": 101})
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["message"] == "'first' must be between 0 and 100"


# ---- a page costs a few queries ----------------------------------------------------------


class Queries(logging.Handler):
    """Counts the SQL statements tortoise sends (its db_client logger, at DEBUG)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.statements: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.lstrip().upper().startswith(("SELECT", "(SELECT", "WITH")):
            self.statements.append(message)


@contextmanager
def counted() -> Iterator[Queries]:
    logger = logging.getLogger("tortoise.db_client")
    handler, level = Queries(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


PAGE = """query($n: Int) { deliveries(first: $n) { edges { node {
  id exclusions { reason count }
  auditTrail(first: 5) { totalCount edges { node { action } } }
  sendingLogs(first: 3) { totalCount edges { node { id address
    profile { id email history(first: 2) { id status } } } } }
} } } }"""


async def test_a_page_of_deliveries_costs_the_same_few_queries_however_many_rows(
    make_server: Callable[..., Any],
) -> None:
    """The per-row fields of a page (exclusions, auditTrail with totalCount, sendingLogs,
    their profile, its history) are loaded for the whole page at once: 3 deliveries and 12
    deliveries cost the same number of statements."""
    async for api in api_for(await make_server(engine_enabled=False)):
        ids = await flows.import_profiles(api, ["p1@example.com", "p2@example.com", None])
        for _ in range(12):
            await flows.prepare(api, (await flows.create_delivery(api, ids))["id"])
        statements = []
        for n in (3, 12):
            with counted() as queries:
                page = (await api.gql(PAGE, {"n": n}))["deliveries"]["edges"]
            statements.append(len(queries.statements))
            assert len(page) == n
            for edge in page:
                node = edge["node"]
                assert node["exclusions"] == [{"reason": "ADDRESS_EMPTY", "count": 1}]
                assert node["auditTrail"]["totalCount"] == 2  # created, prepared
                assert [e["node"]["action"] for e in node["auditTrail"]["edges"]] == [
                    "CREATED",
                    "PREPARED",
                ]
                logs = node["sendingLogs"]
                assert logs["totalCount"] == 3 and len(logs["edges"]) == 3
                with_profile = [e["node"]["profile"] for e in logs["edges"]]
                # the recipient without an address was excluded: no history
                assert sorted(len(p["history"]) for p in with_profile) == [0, 2, 2]
        assert statements[0] == statements[1], statements
        # the token (once a cache window), deliveries (count, page), exclusions, and for the
        # audit trails, the logs and the histories: ids, rows and counts; the profiles; and the
        # database's version, before and after (the result cache: graphql_schema/results.py)
        assert statements[1] <= 15, statements


HISTORIES = """query($n: Int) { deliveries(first: $n) { edges { node {
  id proofs { id } kpiHistory { at kpis { toSend } } } } } }"""


async def test_the_kpi_histories_and_proofs_of_a_page_cost_the_same_queries_however_many_rows(
    make_server: Callable[..., Any],
) -> None:
    """`kpiHistory` and `proofs` are read for the whole page at once (graphql_schema/loaders.py),
    not once per delivery."""
    async for api in api_for(await make_server(engine_enabled=False)):
        ids = await flows.import_profiles(api, ["p1@example.com"])
        for _ in range(12):
            await flows.prepare(api, (await flows.create_delivery(api, ids))["id"])
        statements = []
        for n in (3, 12):
            with counted() as queries:
                page = (await api.gql(HISTORIES, {"n": n}))["deliveries"]["edges"]
            statements.append(len(queries.statements))
            assert len(page) == n
            for edge in page:
                assert edge["node"]["proofs"] == []
                assert edge["node"]["kpiHistory"][-1]["kpis"]["toSend"] == 1
        assert statements[0] == statements[1], statements
