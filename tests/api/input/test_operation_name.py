"""Issue 11, finding 15: a document with several operations and no `operationName` ran the
first one; the GraphQL spec says it is a request error (and runs nothing). Over HTTP and over
the WebSocket. No storage involved: SQLite only."""

import json
from typing import Any

import pytest
import websockets

from tests.support.client import Api

TWO = (
    'mutation Import { importProfiles(profiles: [{email: "two@example.com"}]) { created } }'
    " query Who { me { name } }"
)
MESSAGE = "Must provide operation name if query contains multiple operations."


@pytest.fixture
def db_kind() -> str:
    return "sqlite"


async def profiles(api: Api) -> int:
    data = await api.gql('{ profile(id: "1") { id } }')
    return 0 if data["profile"] is None else 1


async def test_finding_15_several_operations_without_a_name_are_a_request_error_over_http(
    api: Api,
) -> None:
    auth = {"Authorization": f"Bearer {api.tokens['admin']}"}
    for accept, status in (("application/json", 200), ("application/graphql-response+json", 400)):
        response = await api.http.post(
            "/graphql", json={"query": TWO}, headers={**auth, "Accept": accept}
        )
        assert response.status_code == status
        body = response.json()
        assert body["errors"] == [{"message": MESSAGE, "extensions": {"code": "BAD_USER_INPUT"}}]
        assert body.get("data") is None
    assert await profiles(api) == 0  # the first operation (a mutation) did not run


async def test_a_named_operation_of_several_runs_that_one(api: Api) -> None:
    body = await api.http.post(
        "/graphql",
        json={"query": TWO, "operationName": "Who"},
        headers={"Authorization": f"Bearer {api.tokens['admin']}"},
    )
    assert body.json()["data"]["me"]["name"].startswith("admin-")
    assert await profiles(api) == 0


async def test_finding_15_several_operations_without_a_name_are_an_error_over_the_websocket(
    api: Api,
) -> None:
    async with websockets.connect(
        api.ws_url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
    ) as ws:
        init = {"Authorization": f"Bearer {api.tokens['admin']}"}
        await ws.send(json.dumps({"type": "connection_init", "payload": init}))
        assert json.loads(await ws.recv()) == {"type": "connection_ack"}

        async def subscribe(op_id: str, payload: dict[str, Any]) -> dict[str, Any]:
            await ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))
            return json.loads(await ws.recv())  # type: ignore[no-any-return]

        refused = await subscribe("1", {"query": TWO})
        assert refused == {
            "id": "1",
            "type": "error",
            "payload": [{"message": MESSAGE, "extensions": {"code": "BAD_USER_INPUT"}}],
        }
        # The connection goes on, and a named operation runs.
        answer = await subscribe("2", {"query": TWO, "operationName": "Who"})
        assert answer["type"] == "next"
        assert answer["payload"]["data"]["me"]["name"].startswith("admin-")
    assert await profiles(api) == 0
