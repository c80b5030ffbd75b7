"""Issue 11, finding 3: no token was needed to block the event loop. A POST without
`Authorization` holding `{ deliveries{edges{node{id}}} }` 480 times cost 1.5 s of validation
before it was refused. Now a request without a valid operator is refused before its body is
parsed (docs/auth-limits.md), and a document that repeats fields is refused cheaply, token or
not (docs/limits.md). The HTTP side only: SQLite is enough."""

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from graphql_schema.document_limits import MAX_FIELD_REPEATS, TOO_COMPLEX
from tests.support.adversary import REPEATED
from tests.support.client import Api
from tests.support.server import RunningServer, api_for

PROBE = REPEATED  # 4,802 tokens: the document of finding 3


@pytest.fixture
def db_kind() -> str:
    return "sqlite"


async def post(http: httpx.AsyncClient, body: Any, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return await http.post("/graphql", json=body, headers=headers)


def refused(response: httpx.Response, message: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith('Bearer realm="graphql"')
    assert response.json() == {
        "errors": [{"message": message, "extensions": {"code": "UNAUTHENTICATED"}}]
    }


async def test_finding_3_no_token_is_refused_before_the_document_is_parsed(api: Api) -> None:
    missing = "authentication required: send 'Authorization: Bearer TOKEN'"
    for body in ({"query": PROBE}, {"query": "{"}, {"query": 42}, [{"query": "{}"}]):
        refused(await post(api.http, body), missing)  # not a syntax or request error
    got = await api.http.get("/graphql", params={"query": PROBE})
    refused(got, missing)
    # With a token the same documents get their own answers.
    admin = api.tokens["admin"]
    assert (
        (await post(api.http, {"query": "{"}, admin))
        .json()["errors"][0]["message"]
        .startswith("Syntax Error")
    )


async def test_a_bad_token_is_refused_before_parsing_and_counts_as_a_failed_authentication(
    make_server: Callable[..., Any],
) -> None:
    running: RunningServer = await make_server(auth_failure_limit=3)
    async for api in api_for(running):
        for _ in range(3):
            refused(
                await post(api.http, {"query": PROBE}, "guess"), "the bearer token is not valid"
            )
        over = await post(api.http, {"query": "{ me { name } }"}, api.tokens["reader"])
        assert over.status_code == 429 and "retry-after" in over.headers


async def test_a_missing_token_is_not_a_failed_authentication(
    make_server: Callable[..., Any],
) -> None:
    running: RunningServer = await make_server(auth_failure_limit=3)
    async for api in api_for(running):
        for _ in range(10):
            refused(
                await post(api.http, {"query": PROBE}),
                "authentication required: send 'Authorization: Bearer TOKEN'",
            )
        ok = await post(api.http, {"query": "{ me { name } }"}, api.tokens["reader"])
        assert ok.json()["data"]["me"]["name"].startswith("reader")


@pytest.fixture
async def wide(make_server: Callable[..., Any]) -> AsyncIterator[Api]:
    """The token limit as it was when the issue was filed (5,000): the probe fits in it."""
    async for api in api_for(await make_server(max_query_tokens=5000)):
        yield api


async def test_finding_3_the_probe_now_exceeds_the_default_token_limit(api: Api) -> None:
    error = await api.error(PROBE, as_="reader")
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "more than 1000 tokens" in error["message"]


async def test_finding_3_repeated_fields_are_refused_before_the_costly_check(wide: Api) -> None:
    api = wide
    error = await api.error(PROBE, as_="reader")
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"] == (
        f"'deliveries' is selected 480 times in one selection set;"
        f" at most {MAX_FIELD_REPEATS} fields may share a response name"
    )
    # Through fragments too, at the limit and one over.
    fragment = " fragment F on Query { me { id } }"
    for count, ok in ((MAX_FIELD_REPEATS, True), (MAX_FIELD_REPEATS + 1, False)):
        query = "{ " + "me { name } " * (count - 1) + "...F }" + fragment
        body = await api.raw(query, token=api.tokens["reader"])
        assert ("errors" not in body) is ok, body


async def test_nested_repeats_within_the_bound_are_refused_by_the_comparison_budget(
    wide: Api,
) -> None:
    """20 x `deliveries` each holding 20 x `edges`: within MAX_FIELD_REPEATS at every level,
    but 190 x 400 pairs of fields to compare."""
    api = wide
    inner = " ".join(["edges { node { id } }"] * MAX_FIELD_REPEATS)
    query = "{ " + " ".join([f"deliveries {{ {inner} }}"] * MAX_FIELD_REPEATS) + " }"
    error = await api.error(query, as_="reader")
    assert error == {"message": TOO_COMPLEX, "extensions": {"code": "BAD_USER_INPUT"}}
