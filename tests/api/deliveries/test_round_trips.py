"""What a screen reads back and edits in one round trip: a delivery's audience and times,
updateDelivery as a patch, and links (SendingLog.delivery, the Operator behind confirmedBy),
with what each role may read through them (docs/roles.md)."""

from tests.support import flows
from tests.support.client import Api

READ = """query($id: ID!) { delivery(id: $id) { id label subject body status version
  requireApproval createdAt updatedAt audience { allProfiles profileCount profileIds } } }"""
PATCH = """mutation($id: ID!, $p: UpdateDeliveryInput) { updateDelivery(id: $id, patch: $p) {
  id label subject body status version audience { profileIds } } }"""
BOTH = """mutation($id: ID!, $p: UpdateDeliveryInput, $i: CreateDeliveryInput) {
  updateDelivery(id: $id, patch: $p, input: $i) { id } }"""


async def test_update_delivery_is_a_patch_and_reads_back_what_it_takes(api: Api) -> None:
    ids = await flows.import_profiles(api, ["rt1@example.com", "rt2@example.com"])
    delivery_id = (await flows.create_delivery(api, ids, requireApproval=True))["id"]
    created = (await api.gql(READ, {"id": delivery_id}))["delivery"]
    assert created["audience"] == {"allProfiles": False, "profileCount": 2, "profileIds": ids}
    assert created["createdAt"] <= created["updatedAt"]
    await flows.prepare(api, delivery_id)

    changed = await api.gql(PATCH, {"id": delivery_id, "p": {"label": "Renamed"}})
    patched = changed["updateDelivery"]
    assert patched["label"] == "Renamed" and patched["status"] == "DRAFT"
    assert (patched["subject"], patched["body"]) == (created["subject"], created["body"])
    assert patched["audience"]["profileIds"] == ids
    assert patched["version"] == created["version"] + 2  # prepared, then edited
    after = (await api.gql(READ, {"id": delivery_id}))["delivery"]
    assert after["requireApproval"] is True  # left out: kept
    assert after["updatedAt"] >= created["updatedAt"]

    narrowed = await api.gql(
        PATCH, {"id": delivery_id, "p": {"audience": {"profileIds": ids[:1]}, "subject": None}}
    )
    assert narrowed["updateDelivery"]["audience"]["profileIds"] == ids[:1]
    assert narrowed["updateDelivery"]["subject"] is None  # null clears an optional field

    # refused, nothing changed: a required field set to null, neither or both arguments, a
    # preparer turning approval off, a patch of a sent delivery
    before = (await api.gql(READ, {"id": delivery_id}))["delivery"]
    full = {"label": "X", "channel": "EMAIL", "body": "b", "audience": {"profileIds": ids}}
    for variables, code in (
        ({"p": {"label": None}}, "BAD_USER_INPUT"),
        ({}, "BAD_USER_INPUT"),
        ({"p": {"label": "Y"}, "i": full}, "BAD_USER_INPUT"),
    ):
        error = await api.error(BOTH, {"id": delivery_id, **variables})
        assert error["extensions"]["code"] == code, variables
    error = await api.error(
        PATCH, {"id": delivery_id, "p": {"requireApproval": False}}, as_="preparer"
    )
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert (await api.gql(READ, {"id": delivery_id}))["delivery"] == before
    # the deprecated whole-content `input` still works
    await api.gql(BOTH, {"id": delivery_id, "i": full})
    assert (await api.gql(READ, {"id": delivery_id}))["delivery"]["label"] == "X"


LINKS = """query($id: ID!) { delivery(id: $id) { confirmedBy confirmedByOperator { id name }
  approvedByOperator { id } stoppedByOperator { id } } }"""
ROLES = "query($id: ID!) { delivery(id: $id) { confirmedByOperator { name roles createdAt } } }"
HISTORY = """query($id: ID!) { profile(id: $id) { history { status
  delivery { id label allowedActions } } } }"""


async def test_links_reach_what_the_role_may_read_and_no_more(api: Api) -> None:
    done, logs = await flows.sent_delivery(api, ["link@example.com"])
    delivery_id = done["id"]
    for who in ("reader", "preparer", "admin"):
        linked = (await api.gql(LINKS, {"id": delivery_id}, as_=who))["delivery"]
        assert linked["confirmedByOperator"]["name"] == linked["confirmedBy"]
        assert linked["confirmedBy"].startswith("starter")
        assert linked["approvedByOperator"] is None and linked["stoppedByOperator"] is None
    # who holds which role: through `me`, or for administrators
    for who in ("reader", "starter"):
        error = await api.error(ROLES, {"id": delivery_id}, as_=who)
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert "ADMINISTRATION" in error["message"]
        me = (await api.gql("{ me { name roles createdAt } }", as_=who))["me"]
        assert me["name"].startswith(who)
    admin = (await api.gql(ROLES, {"id": delivery_id}))["delivery"]["confirmedByOperator"]
    assert admin["roles"] == ["START_DELIVERIES"]

    # a profile's history links each message to its delivery, for any role
    profile_id = (
        await api.gql(
            "query($id: ID!) { sendingLogs(deliveryId: $id) { edges { node { profile { id } } }"
            " } }",
            {"id": delivery_id},
        )
    )["sendingLogs"]["edges"][0]["node"]["profile"]["id"]
    history = (await api.gql(HISTORY, {"id": profile_id}, as_="preparer"))["profile"]["history"]
    assert [h["delivery"]["id"] for h in history] == [delivery_id]
    assert history[0]["delivery"]["allowedActions"] == []  # SENT: nothing for a preparer
    error = await api.error(HISTORY, {"id": profile_id}, as_="reader")
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert len(logs) == 1
