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
STATS = """mutation($id: ID!) { computeStats(deliveryId: $id) { id sent
  delivery { id kpis { id sent } } } }"""
PROGRESS = """subscription($id: ID!) { deploymentProgress(deliveryId: $id) { id
  kpis { id sent } delivery { id status allowedActions kpis { id sent } } } }"""
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

    # what a mutation and a subscription return carries the ids a normalised cache needs
    stats = await api.gql(STATS, {"id": delivery_id}, as_="starter")
    assert stats["computeStats"]["id"] == delivery_id
    assert stats["computeStats"]["delivery"]["kpis"]["id"] == delivery_id
    async with api.subscribe(PROGRESS, {"id": delivery_id}, as_="reader") as events:
        first = (await events.next())["data"]["deploymentProgress"]
    assert first["id"] == first["delivery"]["id"] == first["kpis"]["id"] == delivery_id
    assert first["delivery"]["kpis"]["sent"] == first["kpis"]["sent"] == 1
    assert first["delivery"]["allowedActions"] == []


# Objects a normalised cache keeps inside their parent: pages, and a mutation's payload.
EMBEDDED = {
    "PageInfo",
    "CreateOperatorPayload",
    "RotateOperatorTokenPayload",
    "ImportProfilesPayload",
    "ProofRecipient",  # one address of a proof, only ever read inside its Proof
}


def test_every_object_a_mutation_or_a_subscription_returns_has_an_id() -> None:
    """docs/frontend.md: a normalised cache (urql's graphcache, Apollo's InMemoryCache) keys
    each object by __typename and id, so an answer updates every screen that shows it."""
    from graphql import GraphQLObjectType, get_named_type

    from graphql_schema.schema import schema

    seen: set[str] = set()
    missing = []
    roots = [schema._schema.mutation_type, schema._schema.subscription_type]
    todo = [get_named_type(f.type) for root in roots if root for f in root.fields.values()]
    while todo:
        kind = todo.pop()
        if not isinstance(kind, GraphQLObjectType) or kind.name in seen:
            continue
        seen.add(kind.name)
        paging = kind.name.endswith(("Connection", "Edge"))
        if "id" not in kind.fields and kind.name not in EMBEDDED and not paging:
            missing.append(kind.name)
        todo += [get_named_type(f.type) for f in kind.fields.values()]
    assert "DeploymentKpis" in seen and "Operator" in seen
    assert missing == []
