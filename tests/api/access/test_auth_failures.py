"""Failed authentications are limited per client (docs/auth-limits.md): over AUTH_FAILURE_LIMIT
within AUTH_FAILURE_WINDOW_SECONDS, a client's further attempts get 429 (WebSocket 4429) until
the window has passed. Clients are told apart by address: the tests bind their sockets to
different loopback addresses (127.0.0.2, 127.0.0.3, ...) to be different clients.

The counter lives in the process's memory, not in the database: these tests run on SQLite only.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from server.http.auth_failures import AuthFailures, client_of
from server.http.feedback import sign
from tests.support.server import SECRET, RunningServer, ServerFactory, api_for

ME = "{ me { name } }"
# A few requests must fit in the window even on a loaded machine (parallel test workers): with
# 1 s, the first failures sometimes fell out of it before the last one was made.
LIMIT, WINDOW = 3, 3.0
ATTACKER, OTHER, QUIET = "127.0.0.2", "127.0.0.3", "127.0.0.4"


@pytest.fixture
def db_kind() -> str:
    return "sqlite"


@pytest.fixture
async def running(make_server: ServerFactory) -> RunningServer:
    return await make_server(  # type: ignore[no-any-return]
        auth_failure_limit=LIMIT,
        auth_failure_window_seconds=WINDOW,
        sparkpost_webhook_auth="mta:s3cret",
        ses_topic_arns="arn:aws:sns:us-east-1:123456789012:ours",
    )


@pytest.fixture
async def token(running: RunningServer) -> AsyncIterator[str]:
    """A reader's token (the operators are made from 127.0.0.1, which these tests never block)."""
    async for api in api_for(running):
        yield api.tokens["reader"]


@asynccontextmanager
async def client_at(running: RunningServer, address: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(
        base_url=running.base_url, transport=transport, timeout=10
    ) as http:
        yield http


async def graphql(http: httpx.AsyncClient, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return await http.post("/graphql", json={"query": ME}, headers=headers)


def code_of(response: httpx.Response) -> str:
    """A GraphQL request without a valid operator is refused before it is parsed: 401."""
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    return str(response.json()["errors"][0]["extensions"]["code"])


def assert_refused(response: httpx.Response) -> int:
    """A 429 with a Retry-After within the window; returns it."""
    assert response.status_code == 429, response.text
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= WINDOW
    assert "too many failed authentications" in response.text
    return retry_after


# --- GraphQL over HTTP ------------------------------------------------------------------------


async def test_bad_tokens_over_the_limit_get_429_until_the_window_has_passed(
    running: RunningServer, token: str
) -> None:
    async with client_at(running, ATTACKER) as attacker, client_at(running, OTHER) as other:
        for _ in range(LIMIT):
            assert code_of(await graphql(attacker, "guess")) == "UNAUTHENTICATED"
        # now even the right token is refused: a guess must not be confirmed during the block
        retry_after = assert_refused(await graphql(attacker, token))
        # another client is not affected, and a request without a token is not an attempt
        assert (await graphql(other, token)).json()["data"]["me"]["name"].startswith("reader")
        assert code_of(await graphql(attacker, None)) == "UNAUTHENTICATED"

        # The window passes on the limiter's own clock (AuthFailures.clock), moved by what
        # Retry-After said, instead of the test sleeping through it in real time.
        failures: AuthFailures = running.app.state.auth_failures
        real = failures.clock
        failures.clock = lambda: real() + retry_after
        ok = await graphql(attacker, token)
        assert ok.status_code == 200 and "errors" not in ok.json(), ok.text


async def test_only_failures_count_not_anonymous_or_successful_requests(
    running: RunningServer, token: str
) -> None:
    async with client_at(running, QUIET) as http:
        for _ in range(LIMIT * 2):
            assert code_of(await graphql(http, None)) == "UNAUTHENTICATED"
            assert "errors" not in (await graphql(http, token)).json()
        for _ in range(LIMIT):
            assert code_of(await graphql(http, "guess")) == "UNAUTHENTICATED"
        assert_refused(await graphql(http, "guess"))


async def test_a_malformed_authorization_header_is_a_failure(
    running: RunningServer, token: str
) -> None:
    async with client_at(running, ATTACKER) as http:
        for header in ("Basic dXNlcjpwdw==", "Bearer", "token"):
            response = await http.post(
                "/graphql", json={"query": ME}, headers={"Authorization": header}
            )
            assert code_of(response) == "UNAUTHENTICATED"
        assert_refused(await graphql(http, token))


# --- webhooks ---------------------------------------------------------------------------------


async def test_bad_feedback_signatures_over_the_limit_get_429(running: RunningServer) -> None:
    body = json.dumps(
        {
            "events": [
                {
                    "eventId": "e1",
                    "messageId": "m1",
                    "type": "delivered",
                    "timestamp": datetime.now(UTC).isoformat(),
                }
            ]
        }
    ).encode()
    good = {"X-Feedback-Signature": sign(SECRET, body), "content-type": "application/json"}
    async with client_at(running, ATTACKER) as attacker, client_at(running, OTHER) as other:
        for signature in (None, "sha256=00", sign("wrong", body)):
            headers = {"X-Feedback-Signature": signature} if signature else {}
            response = await attacker.post("/mta/feedback", content=body, headers=headers)
            assert response.status_code == 401, response.text
        assert_refused(await attacker.post("/mta/feedback", content=body, headers=good))
        accepted = await other.post("/mta/feedback", content=body, headers=good)
        assert accepted.status_code == 200, accepted.text


async def test_bad_sparkpost_credentials_over_the_limit_get_429(running: RunningServer) -> None:
    path, good = "/mta/feedback/sparkpost", httpx.BasicAuth("mta", "s3cret")
    async with client_at(running, ATTACKER) as attacker, client_at(running, OTHER) as other:
        for _ in range(LIMIT):
            response = await attacker.post(path, json=[], auth=httpx.BasicAuth("mta", "guess"))
            assert response.status_code == 401, response.text
        assert_refused(await attacker.post(path, json=[], auth=good))
        assert (await other.post(path, json=[], auth=good)).status_code == 200


async def test_ses_messages_failing_authentication_over_the_limit_get_429(
    running: RunningServer,
) -> None:
    message = {
        "Type": "Notification",
        "MessageId": "1",
        "TopicArn": "arn:aws:sns:us-east-1:999999999999:not-ours",
        "Message": "{}",
        "Timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    async with client_at(running, ATTACKER) as attacker:
        # a malformed message is not an authentication failure
        assert (await attacker.post("/mta/feedback/ses", content=b"[")).status_code == 400
        for _ in range(LIMIT):
            response = await attacker.post("/mta/feedback/ses", json=message)
            assert response.status_code == 401, response.text
        assert_refused(await attacker.post("/mta/feedback/ses", json=message))


# --- WebSocket --------------------------------------------------------------------------------


@asynccontextmanager
async def socket_at(running: RunningServer, address: str) -> AsyncIterator[ClientConnection]:
    url = running.base_url.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(
        url,
        subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
        local_addr=(address, 0),
        open_timeout=5,
    ) as ws:
        yield ws


async def connection_init(
    running: RunningServer, address: str, payload: dict[str, Any]
) -> tuple[int | None, str]:
    """(None, "connection_ack") when accepted, else the close code and reason."""
    async with socket_at(running, address) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        try:
            return None, json.loads(await asyncio.wait_for(ws.recv(), 5))["type"]
        except websockets.ConnectionClosed:
            return ws.close_code, ws.close_reason or ""


def bearer(token: str) -> dict[str, Any]:
    return {"Authorization": f"Bearer {token}"}


async def test_bad_tokens_in_connection_init_over_the_limit_close_with_4429(
    running: RunningServer, token: str
) -> None:
    for _ in range(LIMIT):
        assert await connection_init(running, ATTACKER, bearer("guess")) == (4403, "Forbidden")
    code, reason = await connection_init(running, ATTACKER, bearer(token))
    assert code == 4429
    assert reason.startswith("too many failed authentications from this address: retry in")
    assert await connection_init(running, OTHER, bearer(token)) == (None, "connection_ack")


async def test_connection_init_without_a_token_is_not_a_failure(
    running: RunningServer, token: str
) -> None:
    for _ in range(LIMIT * 2):
        assert await connection_init(running, QUIET, {}) == (4403, "Forbidden")
    assert await connection_init(running, QUIET, bearer(token)) == (None, "connection_ack")


async def test_failures_over_http_and_websocket_count_together(
    running: RunningServer, token: str
) -> None:
    async with client_at(running, ATTACKER) as http:
        for _ in range(LIMIT - 1):
            assert code_of(await graphql(http, "guess")) == "UNAUTHENTICATED"
        assert await connection_init(running, ATTACKER, bearer("guess")) == (4403, "Forbidden")
        assert_refused(await graphql(http, token))
        assert (await connection_init(running, ATTACKER, bearer(token)))[0] == 4429


# --- the counter itself -----------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_window_slides_from_the_oldest_of_the_last_failures() -> None:
    clock = Clock()
    failures = AuthFailures(3, 60, clock=clock)
    for at in (0, 10, 20):
        clock.now = 1000 + at
        assert failures.retry_after("a") is None
        failures.failed("a")
    assert failures.retry_after("a") == 40  # the first failure leaves the window at 1060
    clock.now = 1059.5
    assert failures.retry_after("a") == 1
    clock.now = 1060
    assert failures.retry_after("a") is None
    failures.failed("a")  # 10, 20, 60: blocked again until 1070
    assert failures.retry_after("a") == 10
    assert failures.retry_after("b") is None


def test_memory_is_bounded_expired_clients_first_then_the_least_recent() -> None:
    clock = Clock()
    failures = AuthFailures(2, 60, max_clients=3, clock=clock)
    failures.failed("old")
    clock.now += 61
    for client in ("a", "b", "c"):
        failures.failed(client)
    assert list(failures.failures) == ["a", "b", "c"]  # "old" expired and was dropped
    failures.failed("a")
    failures.failed("d")  # over the cap: "b", the least recently failing, goes
    assert list(failures.failures) == ["c", "a", "d"]
    assert failures.retry_after("a") == 60


@pytest.mark.parametrize(
    ("peer", "key"),
    [
        (("203.0.113.7", 5000), "203.0.113.7"),
        (("2001:db8:1:2:3:4:5:6", 5000), "2001:db8:1:2::/64"),
        (("::ffff:203.0.113.7", 5000), "203.0.113.7"),
        (None, "unknown"),
        (("unix-socket", 0), "unix-socket"),
    ],
)
def test_clients_are_counted_by_address_and_ipv6_by_its_64(peer: Any, key: str) -> None:
    assert client_of({"client": peer}) == key
