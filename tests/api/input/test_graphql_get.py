"""`GET /graphql` without a query, as `curl http://…/graphql` sends it: a short GraphQL error
that says how to query (not a bare 404), and the way it gives works as written."""

import json
import re
from typing import Any

import pytest

from server.http.graphql_http import GRAPHQL_RESPONSE, NO_QUERY
from tests.support.client import Api

BROWSER = {"accept": "text/html,application/xhtml+xml"}


@pytest.fixture
def db_kind() -> str:
    """Nothing here touches storage beyond `me`: SQLite is enough."""
    return "sqlite"


def hint(response: Any, media_type: str = "application/json") -> str:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == f"{media_type}; charset=utf-8"
    body = response.json()
    assert "data" not in body
    [error] = body["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}
    return str(error["message"])


async def test_a_get_without_a_query_says_how_to_send_one(api: Api) -> None:
    # curl sends Accept: */*; httpx too. Before, this was a plain-text 404 "Not Found".
    curl = await api.http.get("/graphql", headers={"accept": "*/*"})
    message = hint(curl)
    assert message == NO_QUERY
    assert "POST" in message and "?query=" in message and "Bearer" in message
    # No Accept header at all, and the GraphQL-over-HTTP media type: the same advice.
    assert hint(await api.http.get("/graphql", headers={"accept": ""})) == NO_QUERY
    as_spec = await api.http.get("/graphql", headers={"accept": GRAPHQL_RESPONSE})
    assert hint(as_spec, GRAPHQL_RESPONSE) == NO_QUERY
    # An empty POST from an operator gets it too (without a token, the 401 comes first:
    # nothing is parsed before authentication).
    auth = {"authorization": f"Bearer {api.tokens['admin']}"}
    assert hint(await api.http.post("/graphql", json={}, headers=auth)) == NO_QUERY
    assert (await api.http.post("/graphql", json={})).status_code == 401
    # A browser still gets GraphiQL.
    page = await api.http.get("/graphql", headers=BROWSER)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")


async def test_the_advice_works_as_written(api: Api) -> None:
    """The example body in the message, POSTed as it says, and the GET form, both answer."""
    example = re.search(r'\{"query": "[^"]*"\}', NO_QUERY)
    assert example is not None, NO_QUERY
    body = json.loads(example.group(0))
    auth = {"authorization": f"Bearer {api.tokens['admin']}"}
    posted = await api.http.post("/graphql", json=body, headers=auth)
    assert posted.status_code == 200
    assert posted.json()["data"]["me"]["name"].startswith("admin-")
    got = await api.http.get("/graphql", params=body, headers=auth)
    assert got.json() == posted.json()


async def test_production_gives_the_advice_too_but_no_graphiql(production: Api) -> None:
    assert hint(await production.http.get("/graphql")) == NO_QUERY
    assert (await production.http.get("/graphql", headers=BROWSER)).status_code == 404
