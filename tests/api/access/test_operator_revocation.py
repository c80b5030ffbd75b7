"""Issue 11, finding 4: revoked means revoked, open WebSockets included.

A socket's operator is checked again for every operation and by a sweep every
TOKEN_CACHE_SECONDS: a revoked, rotated or deleted operator's sockets close with 4403 (running
subscriptions too), and its token stops working over HTTP. Administrators revoke and rotate
through GraphQL (audited), and nothing else may.
"""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from models.audit import COMMAND_LINE
from models.operator import Operator, hash_token, revoke_operator
from tests.support import flows
from tests.support.client import Api
from tests.support.server import api_for
from tests.support.ws import init, receive, send, socket

TTL = 0.4  # TOKEN_CACHE_SECONDS of these servers
ME = "{ me { name } }"
PROGRESS = "subscription($id: ID!) { deploymentProgress(deliveryId: $id) { status } }"
CONFIRM = "mutation($id: ID!) { confirmSend(deliveryId: $id) { status } }"
REVOKE = "mutation($n: String, $id: ID) { revokeOperator(name: $n, id: $id) { id name revokedAt } }"
ROTATE = (
    "mutation($n: String, $id: ID) { rotateOperatorToken(name: $n, id: $id)"
    " { token operator { name revokedAt } } }"
)
EVENTS = (
    "query($x: AuditAction) { auditEvents(action: $x) { totalCount edges { node"
    " { actor operatorName deliveryId detail } } } }"
)


@pytest.fixture
async def api(make_server: Callable[..., Any]) -> AsyncIterator[Api]:
    """Engine off (a confirmed delivery stays IN_PROGRESS) and a short token cache."""
    async for client in api_for(await make_server(engine_enabled=False, token_cache_seconds=TTL)):
        yield client


async def name_of(api: Api, who: str) -> str:
    return str((await api.gql(ME, as_=who))["me"]["name"])


async def ready_delivery(api: Api) -> str:
    ids = await flows.import_profiles(api, ["r1@example.com", "r2@example.com"])
    delivery_id = str((await flows.create_delivery(api, ids))["id"])
    await flows.prepare(api, delivery_id)
    return delivery_id


async def subscribed(ws: ClientConnection, token: str, delivery_id: str) -> None:
    """connection_init, then a running deploymentProgress subscription (its first snapshot)."""
    await init(ws, token)
    await send(
        ws,
        {
            "id": "progress",
            "type": "subscribe",
            "payload": {"query": PROGRESS, "variables": {"id": delivery_id}},
        },
    )
    assert (await receive(ws))["type"] == "next"


async def closed_within(ws: ClientConnection, seconds: float) -> tuple[int | None, str | None]:
    """Read (and drop) messages until the server closes the socket; fail after `seconds`."""
    deadline = asyncio.get_running_loop().time() + seconds
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            left = deadline - asyncio.get_running_loop().time()
            assert left > 0, "the socket is still open"
            await asyncio.wait_for(ws.recv(), left)
    return ws.close_code, ws.close_reason


def code(body: dict[str, Any]) -> str:
    return str(body["errors"][0]["extensions"]["code"])


async def test_finding_4_revoke_operator_closes_open_sockets_and_the_token_stops_working(
    api: Api,
) -> None:
    delivery_id = await ready_delivery(api)
    token, name = api.tokens["starter"], await name_of(api, "starter")
    async with socket(api.ws_url) as ws:
        await subscribed(ws, token, delivery_id)
        revoked = (await api.gql(REVOKE, {"n": name}))["revokeOperator"]
        assert revoked["name"] == name and revoked["revokedAt"] is not None
        # Revoked on this server: its sockets close at once, not only at the next sweep.
        assert await closed_within(ws, TTL / 2) == (4403, "the bearer token is no longer valid")
    assert code(await api.raw(ME, token=token)) == "UNAUTHENTICATED"
    assert code(await api.raw(CONFIRM, {"id": delivery_id}, token)) == "UNAUTHENTICATED"
    async with socket(api.ws_url) as ws:  # and a new socket is refused at connection_init
        await send(ws, {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        assert await closed_within(ws, 5) == (4403, "Forbidden")
    assert (await flows.delivery(api, delivery_id))["status"] == "READY"

    # Audited, once: a second revocation is INVALID_STATE; nobody may revoke themselves.
    again = await api.error(REVOKE, {"id": revoked["id"]})
    assert again["extensions"]["code"] == "INVALID_STATE" and "already revoked" in again["message"]
    me = (await api.gql("{ me { id } }"))["me"]["id"]
    self_revoke = await api.error(REVOKE, {"id": me})
    assert self_revoke["extensions"]["code"] == "BAD_USER_INPUT"
    assert "your own token" in self_revoke["message"]
    events = (await api.gql(EVENTS, {"x": "OPERATOR_REVOKED"}))["auditEvents"]
    assert events["totalCount"] == 1
    (event,) = [e["node"] for e in events["edges"]]
    assert event["actor"] == "OPERATOR" and event["operatorName"] == await name_of(api, "admin")
    assert event["deliveryId"] is None
    assert event["detail"] == {"targetOperatorId": int(revoked["id"]), "targetOperator": name}
    # The name stays taken: nobody can pass for the revoked operator in confirmedBy.
    taken = await api.error(
        "mutation($n: String!) { createOperator(name: $n, roles: []) { token } }", {"n": name}
    )
    assert taken["extensions"]["code"] == "BAD_USER_INPUT" and "already exists" in taken["message"]


async def test_finding_4_a_deleted_operator_cannot_confirm_over_a_socket_it_opened_before(
    api: Api,
) -> None:
    """The reported attack: the row deleted, then confirmSend over the still-open socket."""
    delivery_id = await ready_delivery(api)
    token = api.tokens["starter"]
    async with socket(api.ws_url) as ws:
        await init(ws, token)
        await api.gql(ME, as_="starter")  # the token is in the cache now
        await Operator.filter(token_hash=hash_token(token)).delete()
        await asyncio.sleep(TTL + 0.1)  # the cache window is over (the sweep may close it first)
        with_mutation = {
            "id": "confirm",
            "type": "subscribe",
            "payload": {"query": CONFIRM, "variables": {"id": delivery_id}},
        }
        with contextlib.suppress(websockets.ConnectionClosed):  # the sweep may be first
            await send(ws, with_mutation)
        assert await closed_within(ws, 5) == (4403, "the bearer token is no longer valid")
    assert (await flows.delivery(api, delivery_id))["status"] == "READY"


async def test_finding_4_a_revocation_elsewhere_closes_a_running_subscription_within_the_window(
    api: Api,
) -> None:
    """Revoked by another process (the command line): the sweep finds it within the window."""
    delivery_id = await ready_delivery(api)
    name = await name_of(api, "reader")
    async with socket(api.ws_url) as ws:
        await subscribed(ws, api.tokens["reader"], delivery_id)
        await revoke_operator(COMMAND_LINE, name=name)  # not through this server's API
        assert await closed_within(ws, 2 * TTL + 5) == (4403, "the bearer token is no longer valid")
    (event,) = (await api.gql(EVENTS, {"x": "OPERATOR_REVOKED"}))["auditEvents"]["edges"]
    assert event["node"]["actor"] == "COMMAND_LINE" and event["node"]["operatorName"] is None


async def test_finding_4_rotate_operator_token_gives_a_new_token_and_the_old_one_stops(
    api: Api,
) -> None:
    delivery_id = await ready_delivery(api)
    old, name = api.tokens["reader"], await name_of(api, "reader")
    async with socket(api.ws_url) as ws:
        await subscribed(ws, old, delivery_id)
        payload = (await api.gql(ROTATE, {"n": f"  {name} "}))["rotateOperatorToken"]
        assert payload["operator"] == {"name": name, "revokedAt": None}
        assert await closed_within(ws, TTL / 2) == (4403, "the bearer token is no longer valid")
    new = payload["token"]
    assert new != old and (await api.gql(ME, as_=new))["me"]["name"] == name
    assert code(await api.raw(ME, token=old)) == "UNAUTHENTICATED"
    async with socket(api.ws_url) as ws:  # the new token's sockets live on
        await subscribed(ws, new, delivery_id)
        await asyncio.sleep(2 * TTL + 0.2)  # a sweep or two
        await send(ws, {"type": "ping"})
        assert (await receive(ws))["type"] == "pong"
    (event,) = (await api.gql(EVENTS, {"x": "OPERATOR_TOKEN_ROTATED"}))["auditEvents"]["edges"]
    assert event["node"]["detail"]["targetOperator"] == name
    assert new not in json.dumps(event) and old not in json.dumps(event)

    missing = await api.error(ROTATE, {"n": "nobody-at-all"})
    assert missing["extensions"]["code"] == "NOT_FOUND"
    both = await api.error(ROTATE, {"n": name, "id": "1"})
    assert both["extensions"]["code"] == "BAD_USER_INPUT"
    await api.gql(REVOKE, {"n": name})
    revoked = await api.error(ROTATE, {"n": name})
    assert revoked["extensions"]["code"] == "INVALID_STATE"


async def test_finding_4_each_operation_on_a_socket_sees_the_operators_current_roles(
    api: Api,
) -> None:
    """Roles taken away while a socket is open apply to its next operation (after the cache
    window), as they would over HTTP."""
    delivery_id = await ready_delivery(api)
    token = api.tokens["starter"]
    async with socket(api.ws_url) as ws:
        await init(ws, token)
        await Operator.filter(token_hash=hash_token(token)).update(roles=[])
        await asyncio.sleep(TTL + 0.1)
        await send(
            ws,
            {
                "id": "confirm",
                "type": "subscribe",
                "payload": {"query": CONFIRM, "variables": {"id": delivery_id}},
            },
        )
        answer = await receive(ws)
        assert answer["type"] == "next", answer
        assert answer["payload"]["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await flows.delivery(api, delivery_id))["status"] == "READY"


async def test_finding_4_only_administrators_revoke_or_rotate(api: Api) -> None:
    target = await name_of(api, "reader")
    for who in ("starter", "preparer", "approver", "reader"):
        for query in (REVOKE, ROTATE):
            error = await api.error(query, {"n": target}, as_=who)
            assert error["extensions"]["code"] == "FORBIDDEN", (who, error)
            assert "ADMINISTRATION" in error["message"]
    assert (await api.gql(ME, as_="reader"))["me"]["name"] == target  # still works
    assert (await api.gql(EVENTS, {"x": "OPERATOR_REVOKED"}))["auditEvents"]["totalCount"] == 0


async def test_finding_4_rotating_ones_own_token_over_a_socket_answers_before_it_closes(
    api: Api,
) -> None:
    me = (await api.gql("{ me { id } }"))["me"]["id"]
    async with socket(api.ws_url) as ws:
        await init(ws, api.tokens["admin"])
        await send(
            ws,
            {
                "id": "rotate",
                "type": "subscribe",
                "payload": {"query": ROTATE, "variables": {"id": me}},
            },
        )
        answer = await receive(ws)
        assert answer["type"] == "next", answer
        new = answer["payload"]["data"]["rotateOperatorToken"]["token"]
        assert await closed_within(ws, 5) == (4403, "the bearer token is no longer valid")
    assert (await api.gql("{ me { id } }", as_=new))["me"]["id"] == me
    assert code(await api.raw(ME, token=api.tokens["admin"])) == "UNAUTHENTICATED"


async def test_finding_4_an_operator_named_before_names_were_checked_can_still_be_revoked(
    api: Api,
) -> None:
    legacy = "ad\u200ba"  # a name that operator_name() now refuses
    await Operator.filter(token_hash=hash_token(api.tokens["reader"])).update(name=legacy)
    revoked = (await api.gql(REVOKE, {"n": legacy}))["revokeOperator"]
    assert revoked["name"] == legacy and revoked["revokedAt"] is not None
    for bad in ("x" * 5000, "a\x00b"):  # still a clear answer, not an internal error
        assert (await api.error(REVOKE, {"n": bad}))["extensions"]["code"] == "BAD_USER_INPUT"
