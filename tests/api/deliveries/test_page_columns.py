"""A page of deliveries reads only the columns its selection needs (graphql_schema/selection.py,
models/columns.py): every field answers on such a page what it answers on a page that reads
whole rows, alone or with others, through fragments too."""

from datetime import UTC, datetime, timedelta
from typing import Any

from graphql_schema.deliveries.types import DELIVERY_COLUMNS
from tests.support import flows
from tests.support.client import Api

KPIS = (
    "id toSend processed sent pending failed deliveredRate bouncesAndErrorsRate opens clicks"
    " openRate clickThroughRate statsComputedAt complaints unsubscriptions complaintRate"
)
# The selection under each declared field whose type is an object.
UNDER = {
    "kpis": f"{{ {KPIS} }}",
    "kpiHistory": "{ id kpis { id sent } }",  # `at` of the live point is the time of reading
    "waitingFor": "{ id reason since retryAt attempts cause }",
    "audience": "{ id allProfiles profileCount profileIds }",
    "confirmedByOperator": "{ id name }",
    "approvedByOperator": "{ id name }",
    "stoppedByOperator": "{ id name }",
    "parent": "{ id label }",
    "exclusions": "{ id reason count }",
    "sendingLogs": "{ totalCount edges { node { id address status } } }",
    "proofs": "{ id }",
    "auditTrail": "{ totalCount edges { node { id action } } }",
    "occurrences": "{ totalCount edges { node { id } } }",
}
# A field no page reads in part (it reads many columns): the page reads whole rows.
WHOLE = "recurrence { id }"


def selected(name: str) -> str:
    return f"{name} {UNDER.get(name, '')}"


async def nodes(api: Api, fields: str, fragment: str = "") -> list[dict[str, Any]]:
    data = await api.gql(
        f"{{ deliveries(first: 10) {{ edges {{ node {{ {fields} }} }} }} }} {fragment}"
    )
    return [edge["node"] for edge in data["deliveries"]["edges"]]


async def some_deliveries(api: Api) -> None:
    """Deliveries whose columns are not all empty: a draft to a bad address, one scheduled in
    another zone, one awaiting approval, one sent and one stopped."""
    ids = await flows.import_profiles(api, ["a@example.com", "b@example.com"])
    await flows.create_delivery(api, ids, label="draft")
    at = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    await flows.prepared_delivery(
        api, ["c@example.com", "bad"], scheduledAt=at, timeZone="Europe/Madrid"
    )
    await flows.prepared_delivery(api, ["d@example.com"], requireApproval=True)
    await flows.sent_delivery(api, ["e@example.com", "f@example.com"])
    stopped = await flows.delivery_in(api, "SCHEDULED")
    await api.gql("mutation($id: ID!) { stopDelivery(id: $id) { id } }", {"id": stopped})


async def test_each_field_reads_on_a_page_what_it_reads_from_the_whole_row(api: Api) -> None:
    await some_deliveries(api)
    for name in DELIVERY_COLUMNS:
        alone = await nodes(api, f"id {selected(name)}")
        whole = await nodes(api, f"id {selected(name)} {WHOLE}")
        assert alone == [{k: v for k, v in n.items() if k != "recurrence"} for n in whole], name
    everything = " ".join(selected(name) for name in DELIVERY_COLUMNS)
    together = await nodes(api, everything)
    assert together == [
        {k: v for k, v in n.items() if k != "recurrence"}
        for n in await nodes(api, f"{everything} {WHOLE}")
    ]
    # fragments, named and inline, and aliases
    fragment = "fragment F on Delivery { id figures: kpis { sent toSend } }"
    through = await nodes(api, "...F ... on Delivery { status when: createdAt }", fragment)
    direct = await nodes(api, "id figures: kpis { sent toSend } status when: createdAt")
    assert through == direct
    assert len(direct) == 5 and all(n["when"] for n in direct)


async def test_a_page_without_its_total_leaves_the_rows_as_they_are(api: Api) -> None:
    await some_deliveries(api)
    query = "{ deliveries(first: 2) { %s pageInfo { hasNextPage endCursor } edges { cursor } } }"
    counted = (await api.gql(query % "totalCount"))["deliveries"]
    uncounted = (await api.gql(query % ""))["deliveries"]
    assert counted["totalCount"] == 5
    assert uncounted == {k: v for k, v in counted.items() if k != "totalCount"}
