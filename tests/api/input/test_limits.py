"""Request limits (docs/limits.md): query depth, aliases and tokens, list sizes, batching,
production mode, and GraphQL over HTTP's media types and status codes."""

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from graphql import GraphQLList, GraphQLNonNull, GraphQLType
from strawberry.extensions.parser_cache import _get_parse_cache

from graphql_schema.caches import CACHE_SIZE, CACHED_QUERY_CHARS, known_documents
from graphql_schema.schema import SchemaOptions, build_schema, schema
from models.sql import Sql
from tests.support.client import Api, GraphQLErrors
from tests.support.server import api_for

GRAPHQL_RESPONSE = "application/graphql-response+json"


def deep(depth: int) -> str:
    """A query whose deepest field is `depth` levels below the root field (the root is 0); one
    message of history a level, so that its cost stays small."""
    fields = ['profile(id: "1")'] + ["history(first: 1)", "profile"] * depth
    fields = fields[:depth]
    return "{ " + " { ".join(fields) + " { id }" + " }" * depth


def aliased(count: int) -> str:
    return "{ " + " ".join(f"a{i}: me {{ name }}" for i in range(count)) + " }"


def tokens(count: int) -> str:
    """`{ __typename }` padded with comments (they count: a flood of them is refused too) to
    `count` tokens in all. Repeating a field instead would hit graphql-core's own budget for
    comparing overlapping fields first ("Validation aborted.")."""
    return "{ __typename " + "#\n" * (count - 3) + "}"


def only_error(body: dict[str, Any]) -> dict[str, Any]:
    assert len(body.get("errors") or []) == 1, body
    return body["errors"][0]  # type: ignore[no-any-return]


# ---- depth, aliases, tokens -------------------------------------------------------------------


async def test_a_query_at_each_default_limit_runs_and_one_step_over_is_refused(api: Api) -> None:
    assert (await api.gql(deep(15))) == {"profile": None}
    error = await api.error(deep(16))
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"] == "'anonymous' exceeds maximum operation depth of 15"

    data = await api.gql(aliased(30))
    assert len(data) == 30
    error = await api.error(aliased(31))
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"] == "31 aliases found. Allowed: 30"

    assert await api.gql(tokens(1000)) == {"__typename": "Query"}
    error = await api.error(tokens(1001))
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "more than 1000 tokens" in error["message"]


async def test_the_limits_follow_the_settings_and_hold_for_subscriptions_too(
    make_server: Callable[..., Any],
) -> None:
    running = await make_server(max_query_depth=3, max_query_aliases=2, max_query_tokens=30)
    async for api in api_for(running):
        assert await api.gql(deep(3)) == {"profile": None}
        assert "depth of 3" in (await api.error(deep(4)))["message"]
        await api.gql(aliased(2))
        assert (await api.error(aliased(3)))["message"] == "3 aliases found. Allowed: 2"
        await api.gql(tokens(30))
        assert "more than 30 tokens" in (await api.error(tokens(31)))["message"]

        nested = (
            'subscription { deploymentProgress(deliveryId: "1")'
            " { delivery { sendingLogs { edges { node { id } } } } } }"
        )
        async with api.subscribe(nested, {}) as subscription:
            with pytest.raises(GraphQLErrors) as refused:
                await subscription.next()
        assert refused.value.codes == ["BAD_USER_INPUT"]
        assert "depth of 3" in refused.value.errors[0]["message"]


async def test_the_limits_keep_the_validation_cache_and_big_documents_stay_out_of_it() -> None:
    """strawberry issue 4635: limiters built per request make every validation a cache miss.
    In process, on the server's schema: the caches' own counters say what happened."""
    parsed = _get_parse_cache(CACHE_SIZE)
    fresh = build_schema(SchemaOptions(max_depth=15, max_aliases=30, max_tokens=1000))
    query = "{ __typename a: __typename } # " + uuid.uuid4().hex  # not seen before

    def validations() -> tuple[int, int]:
        return known_documents.computed["validation"], known_documents.reused["validation"]

    before = validations()
    for _ in range(3):
        assert (await fresh.execute(query)).data == {"__typename": "Query", "a": "Query"}
    after = validations()
    assert (after[0] - before[0], after[1] - before[1]) == (1, 2)

    big = "{ __typename } # " + "x" * CACHED_QUERY_CHARS  # a single comment token
    before, before_parse = validations(), parsed.cache_info()
    for _ in range(2):
        assert (await fresh.execute(big)).data == {"__typename": "Query"}
    assert validations() == before  # neither a hit nor a miss: not cached
    assert parsed.cache_info()[:2] == before_parse[:2]


# ---- list sizes ------------------------------------------------------------------------------

# Every list-valued argument and every page size, and the cap that holds it (docs/limits.md).
CAPS = {
    ("Query", "deliveries", "first"): 500,
    ("Query", "deliveries", "statuses"): 10,
    ("Query", "sendingLogs", "first"): 500,
    ("Query", "sendingLogs", "statuses"): 5,
    ("Query", "profiles", "first"): 500,
    ("Query", "quarantinedAddresses", "first"): 500,
    ("Query", "denylistedAddresses", "first"): 500,
    ("Query", "auditEvents", "first"): 500,
    ("Delivery", "sendingLogs", "first"): 500,
    ("Delivery", "sendingLogs", "statuses"): 5,
    ("Delivery", "auditTrail", "first"): 500,
    ("Delivery", "occurrences", "first"): 500,
    ("DeliveryAudience", "profileIds", "first"): 100_000,
    ("Profile", "history", "first"): 100,
    ("Profile", "historyConnection", "first"): 100,
    ("Mutation", "importProfiles", "profiles"): 10_000,
    ("Mutation", "createOperator", "roles"): 4,
    ("AudienceInput", "profileIds", ""): 100_000,
    ("SendProofInput", "addresses", ""): 20,  # with profileIds: 20 recipients a proof
    ("SendProofInput", "profileIds", ""): 20,
}
# `last` has the cap of `first` wherever both are arguments (graphql_schema/pagination.py).


def _is_list(type_: GraphQLType) -> bool:
    return isinstance(type_.of_type if isinstance(type_, GraphQLNonNull) else type_, GraphQLList)


def test_every_list_argument_and_page_size_in_the_schema_has_a_cap() -> None:
    """A new list argument or `first` fails here until its cap is written down above."""
    found = set()
    for type_name, type_ in schema._schema.type_map.items():
        if type_name.startswith("__"):
            continue
        for field_name, field in (getattr(type_, "fields", None) or {}).items():
            if _is_list(field.type) and not hasattr(field, "args"):  # an input object's field
                found.add((type_name, field_name, ""))
            for arg_name, arg in (getattr(field, "args", None) or {}).items():
                if arg_name == "first" or _is_list(arg.type):
                    found.add((type_name, field_name, arg_name))
                if arg_name == "last":
                    assert "first" in field.args, (type_name, field_name)
    assert found == set(CAPS)


PAGES = {
    "deliveries": "query($f: Int) { deliveries(first: $f) { totalCount } }",
    "quarantinedAddresses": "query($f: Int) { quarantinedAddresses(first: $f) { totalCount } }",
    "denylistedAddresses": "query($f: Int) { denylistedAddresses(first: $f) { totalCount } }",
    "auditEvents": "query($f: Int) { auditEvents(first: $f) { totalCount } }",
    "profiles": "query($f: Int) { profiles(first: $f) { totalCount } }",
}


async def test_a_list_over_its_cap_is_bad_user_input_and_writes_nothing(api: Api) -> None:
    for name, query in PAGES.items():
        await api.gql(query, {"f": 500})
        error = await api.error(query, {"f": 501})
        assert error["extensions"]["code"] == "BAD_USER_INPUT", name
        assert error["message"] == "'first' must be between 0 and 500", name
        error = await api.error(query.replace("first", "last"), {"f": 501})
        assert error["message"] == "'last' must be between 0 and 500", name
    statuses = "query($s: [DeliveryStatus!]) { deliveries(statuses: $s) { totalCount } }"
    error = await api.error(statuses, {"s": ["DRAFT"] * 11})
    assert error["message"] == "'statuses' holds at most 10 values (got 11)"

    create = "mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) { id } }"
    audience = {"profileIds": ["1"] * 100_001}
    draft = {"label": "Too many", "channel": "EMAIL", "body": "<p>x</p>", "audience": audience}
    error = await api.error(create, {"i": draft})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "at most 100000 profileIds" in error["message"]
    assert (await api.gql("{ deliveries { totalCount } }"))["deliveries"]["totalCount"] == 0

    operator = 'mutation($r: [Role!]!) { createOperator(name: "four", roles: $r) { token } }'
    roles = ["ADMINISTRATION", "PREPARE_DELIVERIES", "APPROVE_DELIVERIES", "START_DELIVERIES"]
    error = await api.error(operator, {"r": [*roles, "ADMINISTRATION"]})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"] == "at most 4 roles, one of each (got 5)"
    await api.gql(operator, {"r": roles})  # the name was not taken by the refused call


async def test_a_variable_over_its_list_bound_is_refused_before_anything_runs(api: Api) -> None:
    """graphql-core coerces every value of the variables before a resolver can refuse the
    list: 100,000 statuses (800 KB, any operator's token) cost 0.37 s of the event loop. The
    bound is now checked first (graphql_schema/input_bounds.py): a request error, no field
    ran (no `path`), with the resolver's own words."""
    statuses = "query($s: [DeliveryStatus!]) { deliveries(statuses: $s) { totalCount } }"
    body = await api.raw(statuses, {"s": ["SENT"] * 100_000}, api.tokens["reader"])
    [error] = body["errors"]
    assert error["message"] == "'statuses' holds at most 10 values (got 100000)"
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "path" not in error and body.get("data") is None

    create = "mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) { id } }"
    draft = {"label": "x", "channel": "EMAIL", "body": "<p>x</p>"}
    draft["audience"] = {"profileIds": ["1"] * 100_001}  # type: ignore[assignment]
    body = await api.raw(create, {"i": draft}, api.tokens["reader"])
    [error] = body["errors"]
    assert error["message"] == "at most 100000 profileIds (got 100001); use allProfiles for more"
    assert "path" not in error
    # within the bound, but the reader may not create deliveries: refused before coercion too
    draft["audience"] = {"profileIds": ["1"] * 1_001}  # type: ignore[assignment]
    body = await api.raw(create, {"i": draft}, api.tokens["reader"])
    [error] = body["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert "PREPARE_DELIVERIES role is required" in error["message"]
    assert "path" not in error
    draft["audience"] = {"profileIds": ["1"]}  # type: ignore[assignment]
    body = await api.raw(create, {"i": draft}, api.tokens["reader"])
    [error] = body["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["path"] == ["createDelivery"]  # a short list: the field says so, as always
    assert (await api.gql("{ deliveries { totalCount } }"))["deliveries"]["totalCount"] == 0


# ---- production mode -------------------------------------------------------------------------


SUGGESTING = {
    "{ me { nmae } }": "Cannot query field 'nmae' on type 'Operator'.",
    "{ deliveries(stauts: DRAFT) { totalCount } }": (
        "Unknown argument 'stauts' on field 'Query.deliveries'."
    ),
    "{ deliveries(status: DRAF) { totalCount } }": (
        "Value 'DRAF' does not exist in 'DeliveryStatus' enum."
    ),
    "query($s: DeliveryStatu) { deliveries(status: $s) { totalCount } }": (
        "Unknown type 'DeliveryStatu'."
    ),
}


BROWSER = {"accept": "text/html,application/xhtml+xml"}


async def test_outside_production_errors_suggest_names_and_introspection_and_graphiql_work(
    api: Api,
) -> None:
    for query, message in SUGGESTING.items():
        assert (await api.error(query))["message"].startswith(message + " Did you mean")
    types = await api.gql("{ __schema { types { name } } }")
    assert {"name": "Delivery"} in types["__schema"]["types"]
    assert (await api.http.get("/graphql", headers=BROWSER)).status_code == 200
    assert (await api.http.get("/graphiql/setup.js")).status_code == 200


async def test_production_refuses_introspection_suggests_nothing_and_serves_no_graphiql(
    production: Api,
) -> None:
    for query in ("{ __schema { types { name } } }", '{ __type(name: "Delivery") { name } }'):
        error = (await production.raw(query, token=production.tokens["admin"]))["errors"][0]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["message"].startswith("GraphQL introspection has been disabled")
    for query, message in SUGGESTING.items():
        error = await production.error(query)
        assert error["message"] == message
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
    # __typename is not introspection: it works. Variables work.
    admin = production.tokens["admin"]
    assert await production.raw("{ __typename }", token=admin) == {"data": {"__typename": "Query"}}
    by_id = "query($id: ID!) { delivery(id: $id) { id } }"
    assert await production.gql(by_id, {"id": "1"}) == {"delivery": None}
    # No GraphiQL: neither the page nor its files.
    assert (await production.http.get("/graphql", headers=BROWSER)).status_code == 404
    for path in ("/graphiql/setup.js", "/graphiql/page.css", "/graphiql/assets/graphiql.min.js"):
        assert (await production.http.get(path)).status_code == 404, path


async def test_production_masks_unexpected_errors_but_keeps_the_contract_codes(
    production: Api,
) -> None:
    error = await production.error("{ me { nope: name } }", as_="not-a-token")
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["message"] == "the bearer token is not valid"
    assert (await production.error('{ delivery(id: "x") { id } }'))["message"] == (
        "'x' is not a valid delivery id"
    )

    await Sql().conn.execute_script("ALTER TABLE profile RENAME TO profile_gone")
    error = await production.error('{ profile(id: "1") { id } }')
    assert error == {
        "message": "internal error",
        "locations": [{"line": 1, "column": 3}],
        "path": ["profile"],
        "extensions": {"code": "INTERNAL_SERVER_ERROR"},
    }


# ---- GraphQL over HTTP: media types, status codes, methods, batching ---------------------------


async def post(
    server: str, body: Any, accept: str | None, headers: dict[str, str] | None = None
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server) as http:
        request = http.build_request("POST", "/graphql", json=body, headers=headers)
        # httpx sends `Accept: */*` unless told otherwise; None sends no Accept at all.
        del request.headers["accept"]
        if accept is not None:
            request.headers["accept"] = accept
        return await http.send(request)


class TestGraphQLOverHTTP:
    """The HTTP side only: one database kind is enough."""

    @pytest.fixture
    def db_kind(self) -> str:
        return "sqlite"

    async def test_graphql_response_json_when_asked_with_the_specs_status_codes(
        self, api: Api
    ) -> None:
        server, auth = api, {"authorization": f"Bearer {api.tokens['reader']}"}
        ok = await post(server.base_url, {"query": "{ __typename }"}, GRAPHQL_RESPONSE, auth)
        assert ok.status_code == 200
        assert ok.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"
        assert ok.json() == {"data": {"__typename": "Query"}}

        # Requests that fail before execution: 400 and no `data` entry.
        for body in (
            {"query": "{"},  # syntax
            {"query": "{ nope }"},  # validation
            {"query": aliased(31)},  # a limit
            {"query": "query($id: ID!) { delivery(id: $id) { id } }", "variables": {}},
            {"query": "query A { __typename }", "operationName": "B"},  # no such operation
            {"query": "query A { __typename } query B { __typename }"},  # which one?
        ):
            refused = await post(server.base_url, body, GRAPHQL_RESPONSE, auth)
            assert refused.status_code == 400, body
            assert refused.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"
            assert "data" not in refused.json(), body
            assert only_error(refused.json())["extensions"]["code"] == "BAD_USER_INPUT"

        # Executed, with a field error: 200, data null.
        forbidden = {"query": "{ auditEvents { totalCount } }"}
        executed = await post(server.base_url, forbidden, GRAPHQL_RESPONSE, auth)
        assert executed.status_code == 200
        assert executed.json()["data"] is None
        assert only_error(executed.json())["extensions"]["code"] == "FORBIDDEN"

    async def test_application_json_otherwise_with_200_for_every_well_formed_request(
        self, api: Api
    ) -> None:
        server, auth = api, {"authorization": f"Bearer {api.tokens['reader']}"}
        either = f"{GRAPHQL_RESPONSE};q=0.5, application/*"
        for accept in (None, "*/*", "application/json", either):
            response = await post(server.base_url, {"query": "{ nope }"}, accept, auth)
            assert response.status_code == 200, accept
            assert response.headers["content-type"] == "application/json; charset=utf-8"
            assert response.json()["data"] is None
            assert only_error(response.json())["extensions"]["code"] == "BAD_USER_INPUT"
        both = f"{GRAPHQL_RESPONSE}, application/json"
        ok = await post(server.base_url, {"query": "{ __typename }"}, both, auth)
        assert ok.headers["content-type"].startswith(GRAPHQL_RESPONSE)

    async def test_an_accept_the_server_cannot_serve_is_406_and_runs_nothing(
        self, api: Api
    ) -> None:
        mutation = 'mutation { importProfiles(profiles: [{email: "n@example.com"}]) { created } }'
        auth = {"authorization": f"Bearer {api.tokens['admin']}"}
        for accept in ("text/plain", "application/xml, text/*", f"{GRAPHQL_RESPONSE};q=0"):
            response = await post(api.base_url, {"query": mutation}, accept, auth)
            assert response.status_code == 406, accept
            assert only_error(response.json())["extensions"]["code"] == "BAD_USER_INPUT"
        assert (await api.gql(mutation))["importProfiles"] == {"created": 1}

    async def test_queries_run_over_get_mutations_there_are_405_and_subscriptions_400(
        self, api: Api
    ) -> None:
        auth = {"authorization": f"Bearer {api.tokens['admin']}"}
        got = await api.http.get("/graphql", params={"query": "{ me { name } }"}, headers=auth)
        assert got.status_code == 200
        assert got.json()["data"]["me"]["name"].startswith("admin-")

        mutation = 'mutation { importProfiles(profiles: [{email: "g@example.com"}]) { created } }'
        refused = await api.http.get("/graphql", params={"query": mutation}, headers=auth)
        assert refused.status_code == 405
        assert refused.headers["allow"] == "POST"
        assert "use POST" in only_error(refused.json())["message"]
        assert (await api.gql(mutation))["importProfiles"] == {"created": 1}

        subscription = 'subscription { deploymentProgress(deliveryId: "1") { status } }'
        for response in (
            await api.http.post("/graphql", json={"query": subscription}, headers=auth),
            await api.http.get("/graphql", params={"query": subscription}, headers=auth),
        ):
            assert response.status_code == 400
            assert "WebSocket" in only_error(response.json())["message"]

    async def test_a_batch_of_operations_is_refused_with_400_and_runs_none(self, api: Api) -> None:
        mutation = 'mutation { importProfiles(profiles: [{email: "b@example.com"}]) { created } }'
        response = await post(
            api.base_url,
            [{"query": mutation}, {"query": "{ __typename }"}],
            "application/json",
            {"authorization": f"Bearer {api.tokens['admin']}"},
        )
        assert response.status_code == 400
        assert only_error(response.json()) == {
            "message": "Batching is not enabled",
            "extensions": {"code": "BAD_USER_INPUT"},
        }
        assert (await api.gql(mutation))["importProfiles"] == {"created": 1}
