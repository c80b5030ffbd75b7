"""Bulk data in and out (issue 16, section 3), over real HTTP and WebSocket, SQLite and
PostgreSQL: profiles from a streamed CSV upload (`POST /profiles/import`) with a report of the
rejected rows and progress over `profileImportProgress`; a delivery's sending and tracking logs
as CSV (`GET /deliveries/{id}/sending-logs.csv`, `tracking-logs.csv`), administrators only."""

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Callable
from enum import Enum
from typing import Any

import httpx
import pytest
import strawberry

from graphql_schema.profiles.csv_rows import ProfileRows
from models.errors import BadInput
from models.profile import ProfileData
from models.tracking import TRACKING_PATHS, Token, TokenKind, make_token
from tests.support import flows
from tests.support.client import Api, GraphQLErrors
from tests.support.server import RunningServer, api_for

PROFILE = "query($id: ID!) { profile(id: $id) { email phone firstName lastName } }"
SEARCH = (
    "mutation($p: [ProfileInput!]!) { importProfiles(profiles: $p) { created updated"
    " profiles { id email phone firstName lastName } } }"
)
PROGRESS = (
    "subscription($id: ID!) { profileImportProgress(importId: $id) { importId state lines"
    " created updated rejected error } }"
)


@pytest.fixture
async def running(make_server: Callable[..., Any]) -> RunningServer:
    """Small batches, so that a small file commits in several, and a small size limit."""
    return await make_server(  # type: ignore[no-any-return]
        profile_import_batch_rows=2,
        profile_import_max_bytes=4096,
        profile_import_max_record_chars=1024,
    )


@pytest.fixture
async def api(running: RunningServer) -> AsyncIterator[Api]:
    async for client in api_for(running):
        yield client


async def upload(
    api: Api,
    body: bytes | str,
    *,
    as_: str | None = "preparer",
    content_type: str = "text/csv",
    import_id: str | None = None,
) -> httpx.Response:
    headers = {"Content-Type": content_type}
    if as_ is not None:
        headers["Authorization"] = f"Bearer {api.tokens.get(as_, as_)}"
    params = {"importId": import_id} if import_id else None
    content = body.encode() if isinstance(body, str) else body
    return await api.http.post("/profiles/import", content=content, headers=headers, params=params)


async def profiles_by_email(api: Api, emails: list[str]) -> dict[str, dict[str, Any]]:
    """The stored profiles, read back through importProfiles with nothing to change."""
    data = await api.gql(SEARCH, {"p": [{"email": e} for e in emails]})
    return {p["email"]: p for p in data["importProfiles"]["profiles"]}


def code(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["extensions"]["code"])


async def test_a_csv_upload_upserts_each_row_and_reports_the_rejected_ones_by_line(
    api: Api,
) -> None:
    await api.gql(SEARCH, {"p": [{"email": "old@example.com", "phone": "+1", "lastName": "Old"}]})
    long_name = "x" * 201
    body = (
        "\ufeffemail,firstName,lastName\r\n"  # a byte-order mark, as spreadsheets write it
        "ann@example.com,Ann,Lee\r\n"
        'bob@example.com,"Bob, ""Jr""","Multi\r\nline"\r\n'  # quotes, a line break inside
        "\r\n"  # a blank line: nothing
        "old@example.com,Olga,\r\n"  # an empty cell keeps the value (lastName stays Old)
        "too,many,fields,here\r\n"
        f"long@example.com,{long_name},X\r\n"  # importProfiles' own check
        "ann@example.com,,Lee-Smith\r\n"  # the same email again: a later patch
        'bad@example.com,"unclosed"x,Y\r\n'  # malformed quoted field
        ",NoEmail,Z\r\n"  # no email: created, as importProfiles does
        "nul@example.com,N\x00,Z\r\n"  # PostgreSQL cannot store it: refused as GraphQL does
    )
    response = await upload(api, body)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["created"], report["updated"]) == (3, 2), report
    assert report["lines"] == 12 and report["committedThroughLine"] == 12
    assert report["rejectedCount"] == 4
    assert [r["line"] for r in report["rejected"]] == [7, 8, 10, 12]
    reasons = [r["reason"] for r in report["rejected"]]
    assert reasons[0] == "expected 3 fields, found 4"
    assert reasons[1] == "firstName is longer than 200 characters".replace(
        "firstName", "first_name"
    )
    assert "malformed CSV" in reasons[2]
    assert "NUL" in reasons[3]

    stored = await profiles_by_email(
        api, ["ann@example.com", "bob@example.com", "old@example.com", "long@example.com"]
    )
    assert stored["ann@example.com"]["firstName"] == "Ann"
    assert stored["ann@example.com"]["lastName"] == "Lee-Smith"
    assert stored["bob@example.com"]["firstName"] == 'Bob, "Jr"'
    assert stored["bob@example.com"]["lastName"] == "Multi\r\nline"
    assert stored["old@example.com"] == {
        "id": stored["old@example.com"]["id"],
        "email": "old@example.com",
        "phone": "+1",
        "firstName": "Olga",
        "lastName": "Old",
    }
    assert stored["long@example.com"]["firstName"] is None  # rejected: created only now

    # The same file again: every row an update, nothing created but the email-less row.
    again = (await upload(api, body)).json()
    assert (again["created"], again["updated"]) == (1, 4)

    # Whatever ProfileInput accepts, checked as importProfiles checks it: a time zone.
    zones = await upload(
        api, "email,timeZone\ntz@example.com,Europe/Madrid\ntz2@example.com,Mars/Olympus\n"
    )
    assert zones.json()["created"] == 1
    assert zones.json()["rejected"] == [
        {
            "line": 3,
            "reason": "timeZone: unknown time zone 'Mars/Olympus' (use an IANA name"
            " such as Europe/Madrid)",
        }
    ]
    zoned = await api.gql(
        'mutation { importProfiles(profiles: [{email: "tz@example.com"}])'
        " { profiles { timeZone } } }"
    )
    assert zoned["importProfiles"]["profiles"] == [{"timeZone": "Europe/Madrid"}]


async def test_a_file_that_cannot_be_read_is_refused_with_what_is_wrong(api: Api) -> None:
    # A wrong header: refused before anything is written.
    wrong = await upload(api, "mail,first_name\na@example.com,A\n")
    assert wrong.status_code == 400 and code(wrong) == "BAD_USER_INPUT"
    message = wrong.json()["errors"][0]["message"]
    assert "line 1" in message and "'mail'" in message and "firstName" in message
    assert wrong.json()["created"] == 0
    many = await upload(api, ",".join(f"column{i}" * 8 for i in range(40)) + "\n")
    assert many.status_code == 400 and len(many.text) < 1000  # the names are not all echoed
    twice = await upload(api, "email,email\na@example.com,b@example.com\n")
    assert twice.status_code == 400 and "more than once" in twice.json()["errors"][0]["message"]
    empty = await upload(api, b"")
    assert empty.status_code == 400 and "empty" in empty.json()["errors"][0]["message"]

    # Not UTF-8 (Latin-1 from a spreadsheet) on line 4: the batch before it is committed.
    latin = "email,firstName\nl1@example.com,A\nl2@example.com,B\nl3@example.com,Jos\xe9\n"
    bad = await upload(api, latin.encode("latin-1"))
    assert bad.status_code == 400 and code(bad) == "BAD_USER_INPUT"
    assert "not UTF-8" in bad.json()["errors"][0]["message"]
    assert "line 4" in bad.json()["errors"][0]["message"]
    assert bad.json()["created"] == 2 and bad.json()["committedThroughLine"] == 3

    # A quote never closed: the record would swallow the file; stopped at its line.
    unclosed = await upload(api, 'email,firstName\nu@example.com,"never closed\n' + "x\n" * 600)
    assert unclosed.status_code == 400
    assert "line 2" in unclosed.json()["errors"][0]["message"]

    # Over PROFILE_IMPORT_MAX_BYTES: refused by its declared length, or while it streams.
    huge = "email\n" + "".join(f"h{i}@example.com\n" for i in range(400))
    too_big = await upload(api, huge)
    assert too_big.status_code == 413 and "PROFILE_IMPORT_MAX_BYTES" in too_big.text

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(huge), 500):
            yield huge[start : start + 500].encode()

    streamed = await api.http.post(
        "/profiles/import",
        content=chunks(),  # chunked: no Content-Length to refuse it by
        headers={"Content-Type": "text/csv", "Authorization": f"Bearer {api.tokens['admin']}"},
    )
    assert streamed.status_code == 413, streamed.text
    assert 0 < streamed.json()["committedThroughLine"] < 401

    # A form upload (curl -F) is not the file itself.
    form = await upload(api, "x", content_type="multipart/form-data; boundary=x")
    assert form.status_code == 415 and "--data-binary" in form.text


async def test_only_operators_who_may_import_profiles_can_upload(api: Api) -> None:
    body = "email\nwho@example.com\n"
    none = await upload(api, body, as_=None)
    assert none.status_code == 401 and code(none) == "UNAUTHENTICATED"
    bad = await upload(api, body, as_="not-a-token")
    assert bad.status_code == 401 and code(bad) == "UNAUTHENTICATED"
    for role_less in ("reader", "approver"):
        refused = await upload(api, body, as_=role_less)
        assert refused.status_code == 403 and code(refused) == "FORBIDDEN"
        assert "PREPARE_DELIVERIES" in refused.json()["errors"][0]["message"]
    token = (
        await api.gql(
            'mutation { createOperator(name: "importer", roles: [PREPARE_DELIVERIES]) { token } }'
        )
    )["createOperator"]["token"]
    assert (await upload(api, body, as_=token)).status_code == 200
    await api.gql('mutation { revokeOperator(name: "importer") { id } }')
    revoked = await upload(api, body, as_=token)
    assert revoked.status_code == 401 and code(revoked) == "UNAUTHENTICATED"
    # Refused before the body is read: the answer comes while the body is still to be sent.
    for who, status in (("reader", 403), (None, 401), ("preparer", 413)):
        assert await answer_before_body(api, who) == status
    for who in ("preparer", "starter", "admin"):
        assert (await upload(api, body, as_=who)).status_code == 200


async def test_the_progress_of_an_upload_is_pushed_over_the_subscription(api: Api) -> None:
    rows = "".join(f"p{i}@example.com,P{i}\n" for i in range(5)) + "bad,x,y\n"
    async with api.subscribe(PROGRESS, {"id": "upload-1"}, as_="preparer") as sub:
        first = await sub.next()
        assert first["data"]["profileImportProgress"]["state"] == "WAITING"
        response = await upload(api, "email,firstName\n" + rows, import_id="upload-1")
        assert response.status_code == 200 and response.json()["importId"] == "upload-1"
        seen = [d["profileImportProgress"] for d in await sub.rest()]
    assert seen[-1] == {
        "importId": "upload-1",
        "state": "DONE",
        "lines": 7,
        "created": 5,
        "updated": 0,
        "rejected": 1,
        "error": None,
    }
    created = [s["created"] for s in seen]
    assert created == sorted(created) and len(set(created)) >= 3  # batches of 2 rows

    # Another operator's subscription does not hear this upload; a failed one says why.
    async with api.subscribe(PROGRESS, {"id": "upload-2"}, as_="starter") as other:
        await other.next()
        async with api.subscribe(PROGRESS, {"id": "upload-2"}, as_="preparer") as mine:
            await mine.next()
            failed = await upload(api, "nope\n", import_id="upload-2")
            assert failed.status_code == 400
            last = (await mine.rest())[-1]["profileImportProgress"]
            assert last["state"] == "FAILED" and "header" in last["error"]
        with pytest.raises(TimeoutError):
            await other.next(timeout=0.3)

    # A viewer without the role may not follow uploads: the subscription is refused before it
    # starts (an `error` message, as every root field's needs(...) answers).
    async with api.subscribe(PROGRESS, {"id": "upload-3"}, as_="reader") as refused:
        with pytest.raises(GraphQLErrors) as answer:
            await refused.next()
    assert answer.value.codes == ["FORBIDDEN"]


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_a_deliverys_logs_export_as_csv_for_administrators_only(
    running: RunningServer, api: Api
) -> None:
    delivery, sent = await flows.sent_delivery(
        api,
        # Valid addresses that a spreadsheet would run as formulas (CSV injection).
        [
            "e1@example.com",
            "e2@example.com",
            "E2@example.com",
            None,
            "=1+1@example.com",
            "-2+3@example.com",
        ],
    )
    delivery_id = delivery["id"]
    response = await api.http.get(
        f"/deliveries/{delivery_id}/sending-logs.csv",
        headers={"Authorization": f"Bearer {api.tokens['admin']}"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = parse_csv(response.text)
    every = await flows.logs(api, delivery_id)
    assert [r["id"] for r in rows] == sorted((log["id"] for log in every), key=int)
    by_id = {log["id"]: log for log in every}
    for row in rows:
        log = by_id[row["id"]]
        formula = log["address"][:1] in ("=", "-")
        assert row["address"] == ("'" if formula else "") + log["address"]
        assert row["status"] == log["status"]
        assert row["excluded"] == ("true" if log["excluded"] else "false")
        assert row["message_id"] == (log["messageId"] or "")
        assert row["failure_reason"] == (log["failureReason"] or "")
        assert int(row["retries"]) == log["retries"]
    assert sum(r["excluded"] == "false" for r in rows) == len(sent)

    # Two opens and a click through the tracking endpoints, then the tracking logs' export.
    logs = [log for log in rows if log["excluded"] == "false"]
    hits = [
        Token(TokenKind.OPEN, int(delivery_id), int(logs[0]["id"])),
        Token(TokenKind.OPEN, int(delivery_id), int(logs[0]["id"])),
        Token(TokenKind.CLICK, int(delivery_id), int(logs[1]["id"]), 0),
    ]
    for token in hits:
        key = running.settings.tracking_key
        await api.http.get(f"/{TRACKING_PATHS[token.kind]}/{make_token(key, token)}")
    deadline = asyncio.get_running_loop().time() + 15
    while True:  # the tracking recorder writes in batches
        tracked = await api.http.get(
            f"/deliveries/{delivery_id}/tracking-logs.csv",
            headers={"Authorization": f"Bearer {api.tokens['admin']}"},
        )
        assert tracked.status_code == 200
        tracking = parse_csv(tracked.text)
        if len(tracking) == 2 or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert [(t["sending_log_id"], t["address"], t["kind"]) for t in tracking] == [
        (logs[0]["id"], logs[0]["address"], "OPEN"),
        (logs[1]["id"], logs[1]["address"], "CLICK"),
    ], tracking
    assert tracking[0]["hits"] == "2" and tracking[1]["url"] == "https://example.com/offer"

    # Roles, unknown deliveries, no token.
    for path in ("sending-logs", "tracking-logs"):
        url = f"/deliveries/{delivery_id}/{path}.csv"
        for who in ("starter", "preparer", "reader"):
            refused = await api.http.get(
                url, headers={"Authorization": f"Bearer {api.tokens[who]}"}
            )
            assert refused.status_code == 403 and code(refused) == "FORBIDDEN"
            assert "ADMINISTRATION" in refused.json()["errors"][0]["message"]
        anonymous = await api.http.get(url)
        assert anonymous.status_code == 401 and code(anonymous) == "UNAUTHENTICATED"
        for unknown in ("999999", "abc"):
            missing = await api.http.get(
                f"/deliveries/{unknown}/{path}.csv",
                headers={"Authorization": f"Bearer {api.tokens['admin']}", "Accept": "text/csv"},
            )
            assert missing.status_code == 404 and code(missing) == "NOT_FOUND"


async def test_concurrent_uploads_that_share_emails_all_succeed(api: Api) -> None:
    """Each email is created once and updated by the others; shapes differ between files (an
    empty cell), so rows go in several statements, still in email order."""
    shared = [f"s{i}@example.com" for i in range(12)]
    bodies = []
    for k in range(3):
        rows = [f"{e},{'' if (i + k) % 3 == 0 else f'N{k}'},L{k}" for i, e in enumerate(shared)]
        rows += [f"own{k}-{i}@example.com,N,L" for i in range(4)]
        rows = rows[k:] + rows[:k]
        bodies.append("email,firstName,lastName\n" + "\n".join(rows) + "\n")
    answers = await asyncio.gather(*(upload(api, body, as_="admin") for body in bodies))
    assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
    reports = [a.json() for a in answers]
    assert sum(r["created"] for r in reports) == 12 + 3 * 4
    assert sum(r["updated"] for r in reports) == 2 * 12
    stored = await profiles_by_email(api, shared)
    assert all(p["lastName"] in ("L0", "L1", "L2") for p in stored.values())


async def answer_before_body(api: Api, who: str | None) -> int:
    """POST a body announced as 1 GB, send 5 bytes of it, and read the answer's status."""
    host, port = api.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    auth = f"Authorization: Bearer {api.tokens[who]}\r\n" if who else ""
    writer.write(
        f"POST /profiles/import HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/csv\r\n"
        f"{auth}Content-Length: 1000000000\r\n\r\nemail".encode()
    )
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    return int(status_line.split()[1])


@strawberry.enum
class Level(Enum):
    GOLD = "GOLD"
    SILVER = "SILVER"


@strawberry.input
class SampleInput:
    """An input with fields that are not strings, for the day ProfileInput has some."""

    email: str | None = strawberry.UNSET
    level: Level | None = strawberry.UNSET
    count: int | None = strawberry.UNSET

    def data(self) -> ProfileData:
        return ProfileData(self.email or None, first_name=f"{self.level}/{self.count}")


@strawberry.type
class SampleQuery:
    @strawberry.field
    def sample(self, value: SampleInput) -> int:
        return 0


def test_a_cell_is_coerced_as_graphql_coerces_its_fields_value() -> None:
    schema = strawberry.Schema(query=SampleQuery)
    rows = ProfileRows(schema, ["email", "level", "count"], SampleInput)
    assert rows.row(["a@example.com", "GOLD", "3"]).first_name == "Level.GOLD/3"
    assert rows.row(["a@example.com", "", ""]).first_name == "/"  # UNSET: left out
    for cells, reason in (
        (["a@example.com", "BRONZE", "3"], "level: Value 'BRONZE' does not exist"),
        (["a@example.com", "GOLD", "three"], "count: Int cannot represent non-integer value"),
        (["a@example.com", "GOLD", "1.5"], "count: Int cannot represent non-integer value"),
    ):
        with pytest.raises(BadInput) as refused:
            rows.row(cells)
        assert refused.value.message.startswith(reason), refused.value.message
