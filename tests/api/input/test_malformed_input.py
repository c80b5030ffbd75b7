"""Input that used to end in a 500 (issue 11, finding 12): every JSON endpoint refuses bodies
nested too deep, not UTF-8, or holding text no database stores, with a 400 and a JSON error
that says why; a signature header that is not ASCII is a failed authentication (401, counted).

Parsing comes before storage, so these run on SQLite only; tests/api/input/test_bad_input.py checks
on
both databases that such text written through GraphQL is refused and writes nothing.
"""

import base64
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from server.http import json_input
from server.http.feedback import sign
from server.http.json_input import MAX_DEPTH
from server.http.sparkpost import PATH as SPARKPOST
from tests.support.client import Api
from tests.support.server import SECRET, RunningServer, api_for
from tests.support.ws import closed, init, socket, ws_url

AUTH = "hook:secret"
TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-feedback"
BASIC = {"authorization": "Basic " + base64.b64encode(AUTH.encode()).decode()}


@pytest.fixture
def db_kind() -> str:
    return "sqlite"


@pytest.fixture
async def running(make_server: Callable[..., Any]) -> RunningServer:
    server: RunningServer = await make_server(sparkpost_webhook_auth=AUTH, ses_topic_arns=TOPIC)
    return server


@pytest.fixture
async def api(running: RunningServer) -> AsyncIterator[Api]:
    async for client in api_for(running):
        yield client


def headers_for(api: Api, path: str, body: bytes) -> dict[str, str]:
    """Valid credentials for each endpoint, so that only the body can be at fault."""
    if path == "/graphql":
        return {
            "content-type": "application/json",
            "authorization": f"Bearer {api.tokens['admin']}",
        }
    if path == "/mta/feedback":
        return {"x-feedback-signature": sign(SECRET, body)}
    if path == SPARKPOST:
        return BASIC
    return {"content-type": "text/plain; charset=UTF-8"}  # SES: the body is checked first


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


BAD_BODIES = {
    "200,000 [": (b"[" * 200_000, f"nested deeper than {MAX_DEPTH} levels"),
    "65 objects deep": (nested(MAX_DEPTH + 1), f"nested deeper than {MAX_DEPTH} levels"),
    "not UTF-8": (b'{"a": "\xff"}', "not UTF-8 (byte 7)"),
    "an encoded surrogate": (b'{"a": "\xed\xa0\x80"}', "not UTF-8"),
    "a lone surrogate escape": (b'{"a": "x\\ud800"}', "a lone surrogate"),
    "a lone surrogate in a key": (b'{"\\udc00": 1}', "a lone surrogate"),
    "truncated": (b'{"a": [1, 2', "Expecting"),
}
# GraphQL's strings all may reach the database, which cannot store NUL; the webhooks refuse
# NUL in the fields they store (tests/api/feedback/test_webhook.py) and ignore the fields they do
# not read.
GRAPHQL_BAD_BODIES = {
    "a NUL escape": (b'{"a": ["x\\u0000"]}', "a NUL character"),
    "a NUL escape in a key": (b'{"a\\u0000": 1}', "a NUL character"),
}
PATHS = ["/graphql", "/mta/feedback", SPARKPOST, "/mta/feedback/ses"]


@pytest.mark.parametrize("path", PATHS)
async def test_finding_12_malformed_json_is_a_400_with_the_reason_on_every_json_endpoint(
    api: Api, path: str
) -> None:
    bad = {**BAD_BODIES, **(GRAPHQL_BAD_BODIES if path == "/graphql" else {})}
    for name, (body, reason) in bad.items():
        response = await api.http.post(path, content=body, headers=headers_for(api, path, body))
        assert response.status_code == 400, (name, response.text)
        assert response.headers["content-type"].startswith("application/"), name
        answer = response.json()
        message = answer["errors"][0]["message"] if path == "/graphql" else answer["error"]
        assert reason in message, (name, message)
        assert "not valid JSON" in message or "Unable to parse" in message, (name, message)
    # Within the limits, the same shapes are fine: 64 levels, and a surrogate pair.
    ok = {"query": "{ me { name } }", "variables": {"x": json.loads(nested(MAX_DEPTH - 2))}}
    response = await api.http.post("/graphql", json=ok, headers=headers_for(api, "/graphql", b""))
    assert response.json()["data"]["me"]["name"].startswith("admin")
    emoji = b'{"query": "{ me { name } }", "variables": {"x": "\\ud83d\\ude00"}}'
    response = await api.http.post(
        "/graphql", content=emoji, headers=headers_for(api, "/graphql", b"")
    )
    assert response.json()["data"]["me"]["name"].startswith("admin")


async def test_finding_12_graphql_variables_in_a_get_and_string_literals_are_checked_too(
    api: Api,
) -> None:
    auth = {"authorization": f"Bearer {api.tokens['admin']}"}
    deep = await api.http.get(
        "/graphql", params={"query": "{ me { name } }", "variables": "[" * 1000}, headers=auth
    )
    assert deep.status_code == 400
    assert f"nested deeper than {MAX_DEPTH} levels" in deep.json()["errors"][0]["message"]
    for query in (
        'mutation { importProfiles(profiles: [{email: "a\\u0000b"}]) { created } }',
        'query { delivery(id: """1\x002""") { id } }',
    ):
        error = await api.error(query)
        assert error["extensions"]["code"] == "BAD_USER_INPUT", error
        assert "NUL character" in error["message"]
    block = 'query { delivery(id: """1\x002""") { id } }'
    got = await api.http.get("/graphql", params={"query": block}, headers=auth)
    assert got.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_finding_12_a_websocket_message_nested_too_deep_closes_with_4400(
    running: RunningServer, api: Api
) -> None:
    async with socket(ws_url(running)) as ws:
        await ws.send("[" * 60_000)  # under WS_MAX_MESSAGE_BYTES
        assert await closed(ws) == (4400, "WebSocket message must be valid JSON")
    async with socket(ws_url(running)) as ws:  # the server is still there
        await ws.send(json.dumps({"type": "connection_init", "payload": {"x": "\ud800"}}))
        assert await closed(ws) == (4400, "WebSocket message must be valid JSON")
    async with socket(ws_url(running)) as ws:  # and the server still answers
        await init(ws, api.tokens["admin"])


async def test_finding_12_a_non_ascii_signature_is_a_401_counted_as_a_failed_authentication(
    make_server: Callable[..., Any],
) -> None:
    limited = await make_server(auth_failure_limit=3)
    body = b'{"events": []}'
    async with httpx.AsyncClient(base_url=limited.base_url) as http:
        for _ in range(3):
            response = await http.post(
                "/mta/feedback",
                content=body,
                headers={"x-feedback-signature": "sha256=\u00e9t\u00e9".encode("latin-1")},
            )
            assert response.status_code == 401
            assert response.json() == {"error": "missing or bad X-Feedback-Signature"}
        good = {"x-feedback-signature": sign(SECRET, body)}
        refused = await http.post("/mta/feedback", content=body, headers=good)
    assert refused.status_code == 429  # the three failures counted: even a good one waits


async def test_finding_12_odd_credentials_and_fields_of_the_provider_webhooks_are_401_or_400(
    api: Api,
) -> None:
    for header in ("Basic \u00e9\u00e9\u00e9=", "Basic", "\u00e9", "Basic ////"):
        response = await api.http.post(
            SPARKPOST, content=b"[]", headers={"authorization": header.encode("latin-1")}
        )
        assert response.status_code == 401, header
    for bounce_class in ("\u00b2", "1" * 5000, "-1"):
        event = {
            "msys": {
                "message_event": {
                    "type": "bounce",
                    "event_id": "e1",
                    "timestamp": "1700000000",
                    "bounce_class": bounce_class,
                    "rcpt_meta": {"delivery_message_id": "d1.1@x"},
                }
            }
        }
        body = json.dumps([event]).encode()
        response = await api.http.post(SPARKPOST, content=body, headers=BASIC)
        assert response.status_code in (200, 400), (bounce_class[:10], response.text)
    # An SNS message whose SigningCertURL passes the pattern but is no URL httpx can fetch.
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    message = {
        "Type": "Notification",
        "MessageId": "m1",
        "TopicArn": TOPIC,
        "Message": "{}",
        "Timestamp": now,
        "SignatureVersion": "1",
        "Signature": base64.b64encode(b"x" * 256).decode(),
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/a\x01b.pem",
    }
    response = await api.http.post(
        "/mta/feedback/ses", content=json.dumps(message).encode(), headers=headers_for(api, "", b"")
    )
    assert response.status_code == 401, response.text


async def test_finding_12_tracking_ids_with_odd_characters_are_refused_like_any_bad_id(
    running: RunningServer,
) -> None:
    signature = "A" * 22
    async with httpx.AsyncClient(base_url=running.base_url, follow_redirects=False) as http:
        for text in (
            f"\u0661.\u0662.{signature}",  # Arabic-Indic digits
            "%ED%A0%80",
            "%00",
            "%FF.1." + signature,
            "1" * 5000 + ".1." + signature,
        ):
            assert (await http.get(f"/t/o/{text}")).status_code == 200, text
            assert (await http.get(f"/t/c/{text}")).status_code == 404, text
            assert (await http.get(f"/u/{text}")).status_code == 404, text
            assert (await http.post(f"/u/{text}", content=b"\xff" * 10)).status_code == 404, text


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ('"\\ud83d\\ude00"', None),  # a surrogate pair: one character
        ('"\\uD83D\\uDE00"', None),
        ('"\\\\ud800"', None),  # an escaped backslash, then the letters "ud800"
        ('"\\ud83d"', "a lone surrogate"),
        ('"\\ude00"', "a lone surrogate"),
        ('"\\ud83d\\ud83d\\ude00"', "a lone surrogate"),
        ('"\\ud83d\\ude00\\ude00"', "a lone surrogate"),
        ('"\\\\\\ud800"', "a lone surrogate"),  # an escaped backslash, then an escape
        ('"\\u0000"', None),  # NUL is refused only where every string is stored
        ("[" * MAX_DEPTH + "]" * MAX_DEPTH, None),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "nested deeper than 64 levels"),
        ('[{"a": ' * 32 + "[1]" + "}]" * 32, "nested deeper than 64 levels"),  # 65 levels
        ("[1, " * 100 + "1" + "]" * 100, "nested deeper than 64 levels"),
        ('[["' + "[" * 100 + '"]' + ', "]]]]"' * 100 + "]", None),  # brackets in strings
    ],
)
def test_finding_12_the_parser_refuses_exactly_what_it_says(text: str, refused: str | None) -> None:
    if refused is None:
        json_input.loads(text)
    else:
        with pytest.raises(json_input.InvalidJson, match=refused):
            json_input.loads(text)
    with pytest.raises(json_input.InvalidJson, match="a string holds a NUL character"):
        json_input.loads('{"a": "\\u0000"}', storable=True)
