"""CONTRACT errors: NOT_FOUND, BAD_USER_INPUT and INVALID_STATE, and nothing written after any."""

import base64
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.support import clock, flows
from tests.support.client import Api
from tests.support.server import api_for

SNAPSHOT = """
  id label status subject body validityPeriod scheduledAt requireApproval approvedBy
  confirmedBy confirmedAt startedAt stoppedBy warnings excludedCount
  kpis { toSend processed sent pending failed statsComputedAt }
  sendingLogs(first: 500) { totalCount edges { node { id status failureReason } } }
"""
INPUT = {
    "label": "Offer",
    "channel": "EMAIL",
    "subject": "Hello",
    "body": flows.BODY,
    "audience": {"profileIds": []},
}
CREATE = "mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) { id } }"
BY_ID = {
    "updateDelivery": "mutation($id: ID!, $i: CreateDeliveryInput!)"
    " { updateDelivery(id: $id, input: $i) { id } }",
    "deleteDelivery": "mutation($id: ID!) { deleteDelivery(id: $id) }",
    "prepareDelivery": "mutation($id: ID!) { prepareDelivery(id: $id) { id } }",
    "approveDelivery": "mutation($id: ID!) { approveDelivery(id: $id) { id } }",
    "confirmSend": "mutation($id: ID!) { confirmSend(deliveryId: $id) { id } }",
    "pauseDelivery": "mutation($id: ID!) { pauseDelivery(id: $id) { id } }",
    "resumeDelivery": "mutation($id: ID!) { resumeDelivery(id: $id) { id } }",
    "stopDelivery": "mutation($id: ID!) { stopDelivery(id: $id) { id } }",
    "computeStats": "mutation($id: ID!) { computeStats(deliveryId: $id) { toSend } }",
    "sendingLogs": "query($id: ID!) { sendingLogs(deliveryId: $id) { totalCount } }",
    "kpis": "query($id: ID!) { kpis(deliveryId: $id) { toSend } }",
}


@pytest.fixture
async def idle(make_server: Callable[..., Any]) -> AsyncIterator[Api]:
    """Engine off: a confirmed delivery stays IN_PROGRESS and nothing is relayed."""
    async for client in api_for(await make_server(engine_enabled=False)):
        yield client


async def total_deliveries(api: Api) -> int:
    return (await api.gql("{ deliveries { totalCount } }"))["deliveries"]["totalCount"]  # type: ignore[no-any-return]


def code(error: dict[str, Any]) -> str:
    return error["extensions"]["code"]  # type: ignore[no-any-return]


# ---- unknown and malformed ids ------------------------------------------------------------


async def test_an_unknown_delivery_is_not_found_in_every_mutation_and_null_in_queries(
    idle: Api,
) -> None:
    """docs/frontend.md: a query answers null for an id that names nothing, a mutation (and a
    subscription) NOT_FOUND."""
    existing = await flows.delivery_in(idle, "READY")
    before = await flows.delivery(idle, existing, SNAPSHOT)
    for name, query in BY_ID.items():
        if query.startswith("query"):
            assert await idle.gql(query, {"id": "999999"}) == {name: None}
            continue
        error = await idle.error(query, {"id": "999999", "i": INPUT})
        assert code(error) == "NOT_FOUND", (name, error)
        assert "999999" in error["message"], name
    assert await flows.delivery(idle, existing, SNAPSHOT) == before
    assert await total_deliveries(idle) == 1


async def test_the_delivery_and_profile_queries_return_null_for_an_unknown_id(idle: Api) -> None:
    data = await idle.gql('{ delivery(id: "424242") { id } profile(id: "424242") { id } }')
    assert data == {"delivery": None, "profile": None}


async def test_a_malformed_id_is_bad_user_input(idle: Api) -> None:
    existing = await flows.delivery_in(idle, "READY")
    before = await flows.delivery(idle, existing, SNAPSHOT)
    queries = {
        **BY_ID,
        "delivery": "query($id: ID!) { delivery(id: $id) { id } }",
        "profile": "query($id: ID!) { profile(id: $id) { id } }",
        "audience": CREATE,
    }
    for bad_id in ("abc", "0", "-3", "1.5", "99999999999", ""):
        for name, query in queries.items():
            audience = {"profileIds": [bad_id]}
            data = {**INPUT, "audience": audience} if name == "audience" else INPUT
            error = await idle.error(query, {"id": bad_id, "i": data})
            assert code(error) == "BAD_USER_INPUT", (bad_id, name, error)
    assert await flows.delivery(idle, existing, SNAPSHOT) == before
    assert await total_deliveries(idle) == 1


# ---- wrong state --------------------------------------------------------------------------

WRONG_STATE = [
    # (start from, extra input, mutation, words the message must contain)
    ("DRAFT", {}, "confirmSend", ["DRAFT"]),
    ("DRAFT", {"requireApproval": True}, "approveDelivery", ["DRAFT"]),
    ("READY", {}, "prepareDelivery", ["READY"]),
    ("READY", {}, "pauseDelivery", ["READY"]),
    ("READY", {}, "resumeDelivery", ["READY"]),
    ("READY", {}, "stopDelivery", ["READY"]),
    ("READY", {}, "approveDelivery", ["does not require approval"]),
    ("READY", {"requireApproval": True}, "confirmSend", ["requires approval"]),
    ("IN_PROGRESS", {}, "confirmSend", ["IN_PROGRESS"]),
    ("IN_PROGRESS", {}, "resumeDelivery", ["IN_PROGRESS"]),
    ("IN_PROGRESS", {}, "prepareDelivery", ["IN_PROGRESS"]),
    ("IN_PROGRESS", {}, "updateDelivery", ["IN_PROGRESS"]),
    ("IN_PROGRESS", {}, "deleteDelivery", ["IN_PROGRESS"]),
    ("PAUSED", {}, "pauseDelivery", ["PAUSED"]),
    ("PAUSED", {}, "confirmSend", ["PAUSED"]),
]


async def test_a_mutation_the_status_does_not_allow_is_invalid_state_and_changes_nothing(
    idle: Api,
) -> None:
    for state, extra, mutation, words in WRONG_STATE:
        delivery_id = await flows.delivery_in(idle, state, **extra)
        before = await flows.delivery(idle, delivery_id, SNAPSHOT)
        error = await idle.error(BY_ID[mutation], {"id": delivery_id, "i": INPUT})
        assert code(error) == "INVALID_STATE", (state, mutation, error)
        for word in words:
            assert word in error["message"], (state, mutation, error["message"])
        assert await flows.delivery(idle, delivery_id, SNAPSHOT) == before, (state, mutation)


async def test_approving_twice_is_invalid_state(idle: Api) -> None:
    delivery_id = await flows.delivery_in(idle, "READY", requireApproval=True)
    await idle.gql(BY_ID["approveDelivery"], {"id": delivery_id}, as_="approver")
    before = await flows.delivery(idle, delivery_id, SNAPSHOT)
    error = await idle.error(BY_ID["approveDelivery"], {"id": delivery_id}, as_="approver")
    assert code(error) == "INVALID_STATE"
    assert "already approved" in error["message"]
    assert await flows.delivery(idle, delivery_id, SNAPSHOT) == before


async def test_stopping_a_finished_or_stopped_delivery_is_invalid_state(api: Api) -> None:
    ids = await flows.import_profiles(api, ["f@example.com"])
    finished = (await flows.create_delivery(api, ids, validityPeriod=clock.VALIDITY))["id"]
    await flows.prepare(api, finished)
    await flows.confirm(api, finished)
    await flows.wait_for(api, finished, lambda d: d["status"] == "SENT")
    await clock.finished(api, finished)
    before = await flows.delivery(api, finished, SNAPSHOT)
    error = await api.error(BY_ID["stopDelivery"], {"id": finished})
    assert code(error) == "INVALID_STATE"
    assert "FINISHED" in error["message"]
    assert await flows.delivery(api, finished, SNAPSHOT) == before

    stopped = (await flows.create_delivery(api, ids, scheduledAt="2999-01-01T00:00:00+00:00"))["id"]
    await flows.prepare(api, stopped)
    await flows.confirm(api, stopped)
    await api.gql(BY_ID["stopDelivery"], {"id": stopped})
    before = await flows.delivery(api, stopped, SNAPSHOT)
    error = await api.error(BY_ID["stopDelivery"], {"id": stopped})
    assert code(error) == "INVALID_STATE"
    assert "STOPPED" in error["message"]
    assert await flows.delivery(api, stopped, SNAPSHOT) == before


# ---- bad values ---------------------------------------------------------------------------


async def test_a_bad_enum_value_is_bad_user_input_in_variables_and_inline(idle: Api) -> None:
    ids = await flows.import_profiles(idle, ["e@example.com"])
    audience = {"profileIds": ids}
    cases: list[tuple[str, dict[str, Any] | None]] = [
        (CREATE, {"i": {**INPUT, "audience": audience, "channel": "FAX"}}),
        (CREATE, {"i": {**INPUT, "audience": audience, "channel": "email"}}),
        (CREATE, {"i": {**INPUT, "audience": audience, "feedbackMode": "BOTH"}}),
        (
            'mutation { createDelivery(input: {label: "x", channel: FAX, body: "b",'
            f' audience: {{profileIds: ["{ids[0]}"]}}}}) {{ id }} }}',
            None,
        ),
        (
            'mutation { createDelivery(input: {label: "x", channel: "EMAIL", body: "b",'
            f' audience: {{profileIds: ["{ids[0]}"]}}}}) {{ id }} }}',
            None,
        ),
        ("query($s: DeliveryStatus) { deliveries(status: $s) { totalCount } }", {"s": "DONE"}),
        ("{ deliveries(status: DONE) { totalCount } }", None),
        (
            "query($s: SendingLogStatus) { sendingLogs(deliveryId: 1, status: $s) { totalCount } }",
            {"s": "BOUNCED"},
        ),
        ('mutation { createOperator(name: "x", roles: [GOD]) { token } }', None),
    ]
    for query, variables in cases:
        error = await idle.error(query, variables)
        assert code(error) == "BAD_USER_INPUT", (query, variables, error)
    assert await total_deliveries(idle) == 0


async def test_a_query_the_schema_rejects_is_bad_user_input(idle: Api) -> None:
    for query in ["{ deliveries {", "{ deliveries { nope } }", "mutation { nope }", "{ me }"]:
        error = await idle.error(query)
        assert code(error) == "BAD_USER_INPUT", (query, error)


async def test_a_spread_of_a_fragment_the_document_does_not_define_is_bad_user_input(
    idle: Api,
) -> None:
    """It was an internal error: strawberry's depth limiter looked the fragment up."""
    for query in ["{ ...Missing }", "{ me { name } ...Missing } fragment F on Query { me { id } }"]:
        error = await idle.error(query)
        assert code(error) == "BAD_USER_INPUT", (query, error)
        assert "Unknown fragment 'Missing'" in error["message"], error


async def test_a_validity_period_out_of_range_is_bad_user_input(idle: Api) -> None:
    ids = await flows.import_profiles(idle, ["v@example.com"])
    delivery_id = await flows.delivery_in(idle, "READY")
    before = await flows.delivery(idle, delivery_id, SNAPSHOT)
    for validity in (0, -1, 302401, 10**9):
        payload = {**INPUT, "audience": {"profileIds": ids}, "validityPeriod": validity}
        error = await idle.error(CREATE, {"i": payload})
        assert code(error) == "BAD_USER_INPUT", (validity, error)
        assert "validityPeriod" in error["message"]
        error = await idle.error(BY_ID["updateDelivery"], {"id": delivery_id, "i": payload})
        assert code(error) == "BAD_USER_INPUT", (validity, error)
    assert await total_deliveries(idle) == 1
    assert await flows.delivery(idle, delivery_id, SNAPSHOT) == before


async def test_a_validity_period_of_one_second_to_three_and_a_half_days_is_accepted(
    idle: Api,
) -> None:
    ids = await flows.import_profiles(idle, ["v@example.com"])
    for validity in (1, 302400):
        created = await flows.create_delivery(idle, ids, validityPeriod=validity)
        assert created["validityPeriod"] == validity
    assert (await flows.create_delivery(idle, ids))["validityPeriod"] == 302400


async def test_other_bad_delivery_input_is_bad_user_input(idle: Api) -> None:
    ids = await flows.import_profiles(idle, ["o@example.com"])
    audience = {"profileIds": ids}
    bad_values: list[dict[str, Any]] = [
        {"label": "   "},
        {"label": "x" * 256},
        {"scheduledAt": "tomorrow"},
        {"audience": {"profileIds": ids, "allProfiles": True}},
        {"recurrence": {"intervalSeconds": 0}},
        {"recurrence": {"intervalSeconds": 60, "count": 0}},
    ]
    for bad in bad_values:
        error = await idle.error(CREATE, {"i": {**INPUT, "audience": audience, **bad}})
        assert code(error) == "BAD_USER_INPUT", (bad, error)
    assert await total_deliveries(idle) == 0


async def test_an_unknown_profile_in_the_audience_is_not_found(idle: Api) -> None:
    ids = await flows.import_profiles(idle, ["p@example.com"])
    payload = {**INPUT, "audience": {"profileIds": [ids[0], "777777"]}}
    error = await idle.error(CREATE, {"i": payload})
    assert code(error) == "NOT_FOUND"
    assert "777777" in error["message"]
    assert await total_deliveries(idle) == 0

    delivery_id = await flows.delivery_in(idle, "READY")
    before = await flows.delivery(idle, delivery_id, SNAPSHOT)
    error = await idle.error(BY_ID["updateDelivery"], {"id": delivery_id, "i": payload})
    assert code(error) == "NOT_FOUND"
    assert await flows.delivery(idle, delivery_id, SNAPSHOT) == before


async def test_a_bad_cursor_or_page_size_is_bad_user_input(idle: Api) -> None:
    delivery_id = await flows.delivery_in(idle, "READY")
    log_cursor = base64.urlsafe_b64encode(b"SendingLog:1").decode()
    delivery_cursor = base64.urlsafe_b64encode(b"Delivery:1").decode()
    not_a_key = base64.urlsafe_b64encode(b"SendingLog:abc").decode()
    logs = "query($id: ID!, $a: String, $f: Int) { sendingLogs(deliveryId: $id, after: $a,"
    logs += " first: $f) { totalCount } }"
    deliveries = "query($a: String, $f: Int) { deliveries(after: $a, first: $f) { totalCount } }"
    nested = "query($id: ID!, $a: String, $f: Int) { delivery(id: $id) { sendingLogs(after: $a,"
    nested += " first: $f) { totalCount } } }"
    for query, other_kind in (
        (logs, delivery_cursor),
        (deliveries, log_cursor),
        (nested, delivery_cursor),
    ):
        for after in ("garbage!!", "", other_kind, not_a_key):
            error = await idle.error(query, {"id": delivery_id, "a": after})
            assert code(error) == "BAD_USER_INPUT", (query, after, error)
        for first in (501, -1, 10**6):
            error = await idle.error(query, {"id": delivery_id, "f": first})
            assert code(error) == "BAD_USER_INPUT", (query, first, error)
            assert "500" in error["message"]
        await idle.gql(query, {"id": delivery_id, "f": 500})


# ---- preparation's content checks ----------------------------------------------------------


CONTENT_ERRORS: list[tuple[str | None, str, list[str]]] = [
    (None, flows.BODY, ["subject"]),
    ("   ", flows.BODY, ["subject"]),
    ("Hello", "   ", ["body is empty"]),
    (None, "", ["body is empty", "subject"]),
    (
        "Hello",
        '<a href="javascript:alert(1)">x</a><a href="not a url">y</a>'
        '<a href="https://example.com/unsubscribe">Unsubscribe</a>',
        ["javascript:alert(1)", "not a url"],
    ),
]


async def test_content_errors_keep_the_delivery_in_draft_and_are_listed(idle: Api) -> None:
    ids = await flows.import_profiles(idle, ["c@example.com"])
    for subject, body, expected in CONTENT_ERRORS:
        delivery_id = (await flows.create_delivery(idle, ids, subject=subject, body=body))["id"]
        before = await flows.delivery(idle, delivery_id, SNAPSHOT)
        error = await idle.error(BY_ID["prepareDelivery"], {"id": delivery_id})
        assert code(error) == "BAD_USER_INPUT"
        listed = error["extensions"]["errors"]
        assert len(listed) == len(expected), listed
        for words, message in zip(expected, listed, strict=True):
            assert words in message, listed
        after = await flows.delivery(idle, delivery_id, SNAPSHOT)
        assert after == before
        assert after["status"] == "DRAFT"
        assert after["sendingLogs"]["totalCount"] == 0


async def test_a_missing_unsubscribe_link_is_only_a_warning(idle: Api) -> None:
    ids = await flows.import_profiles(idle, ["w@example.com"])
    body = '<p>Hi</p><a href="https://example.com/offer">Offer</a>'
    delivery_id = (await flows.create_delivery(idle, ids, body=body))["id"]
    await flows.prepare(idle, delivery_id)
    prepared = await flows.delivery(idle, delivery_id, SNAPSHOT)
    assert prepared["status"] == "READY"
    assert any("unsubscribe" in w for w in prepared["warnings"]), prepared["warnings"]
    clean = (await flows.create_delivery(idle, ids))["id"]
    await flows.prepare(idle, clean)
    assert (await flows.delivery(idle, clean, SNAPSHOT))["warnings"] == []


async def test_an_sms_needs_no_subject_and_its_text_is_not_checked_for_links(idle: Api) -> None:
    data = await idle.gql(
        'mutation { importProfiles(profiles: [{phone: "+33 6 12 34 56 78"}]) { profiles { id } } }'
    )
    ids = [p["id"] for p in data["importProfiles"]["profiles"]]
    delivery_id = (
        await flows.create_delivery(idle, ids, channel="SMS", subject=None, body="Sale today!")
    )["id"]
    assert (await flows.prepare(idle, delivery_id))["status"] == "READY"


# ---- importProfiles -----------------------------------------------------------------------

IMPORT = "mutation($p: [ProfileInput!]!) { importProfiles(profiles: $p) { created updated } }"


async def imported_as_new(api: Api, email: str) -> bool:
    data = await api.gql(IMPORT, {"p": [{"email": email}]})
    return data["importProfiles"]["created"] == 1  # type: ignore[no-any-return]


async def test_importing_more_than_10000_profiles_is_bad_user_input_and_creates_none(
    idle: Api,
) -> None:
    rows = [{"email": f"bulk{i}@example.com"} for i in range(10001)]
    error = await idle.error(IMPORT, {"p": rows})
    assert code(error) == "BAD_USER_INPUT"
    assert "10000" in error["message"]
    assert await imported_as_new(idle, "bulk0@example.com")
    assert await imported_as_new(idle, "bulk10000@example.com")


async def test_a_duplicate_email_in_one_import_is_bad_user_input_and_creates_none(
    idle: Api,
) -> None:
    for emails in (["dup@example.com"] * 2, ["dup@example.com", "  dup@example.com "]):
        rows = [{"email": "first@example.com"}] + [{"email": e} for e in emails]
        error = await idle.error(IMPORT, {"p": rows})
        assert code(error) == "BAD_USER_INPUT"
        assert "dup@example.com" in error["message"]
    assert await imported_as_new(idle, "first@example.com")
    assert await imported_as_new(idle, "dup@example.com")


async def test_a_too_long_profile_field_is_bad_user_input_and_creates_none(idle: Api) -> None:
    for field, length in (("email", 321), ("phone", 33), ("firstName", 201), ("lastName", 201)):
        value = "x" * (length - len("@example.com")) + "@example.com" if field == "email" else ""
        rows = [
            {"email": "ok@example.com"},
            {"email": "long@example.com", field: value or "1" * length},
        ]
        error = await idle.error(IMPORT, {"p": rows})
        assert code(error) == "BAD_USER_INPUT", (field, error)
        assert "longer than" in error["message"]
    assert await imported_as_new(idle, "ok@example.com")
    assert await imported_as_new(idle, "long@example.com")


async def test_finding_12_text_no_database_can_store_is_bad_user_input_and_writes_nothing(
    idle: Api,
) -> None:
    """A NUL or a lone surrogate in a variable or a literal used to reach the INSERT and come
    back as an internal error on PostgreSQL."""
    for bad, reason in (("x\x00y", "a NUL character"), ("x\ud800y", "a lone surrogate")):
        rows = [{"email": "fine@example.com"}, {"email": "bad@example.com", "firstName": bad}]
        payload = json.dumps({"query": IMPORT, "variables": {"p": rows}})  # ASCII: \ud800
        response = await idle.http.post(
            "/graphql",
            content=payload,
            headers={
                "authorization": f"Bearer {idle.tokens['admin']}",
                "content-type": "application/json",
            },
        )
        assert response.status_code == 400
        body = response.json()
        assert [code(e) for e in body["errors"]] == ["BAD_USER_INPUT"], body
        assert f"a string holds {reason}" in body["errors"][0]["message"]
    error = await idle.error(
        'mutation { importProfiles(profiles: [{email: "fine@example.com"},'
        ' {email: "bad@example.com", lastName: "x\\u0000y"}]) { created } }'
    )
    assert code(error) == "BAD_USER_INPUT"
    assert await imported_as_new(idle, "fine@example.com")
    assert await imported_as_new(idle, "bad@example.com")
