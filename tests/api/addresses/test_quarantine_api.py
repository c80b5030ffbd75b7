"""Administrators list and release quarantined addresses and manage the deny list (SPEC §1, §4).

The addresses are personal data: every operation needs ADMINISTRATION. A change shows in the
next preparation's exclusions (QUARANTINED_ADDRESS / DENYLISTED); a failed mutation writes
nothing.
"""

import asyncio
from collections.abc import Callable
from typing import Any

from tests.support import flows
from tests.support.client import Api, at, event
from tests.support.feedback_steps import report_all
from tests.support.server import api_for

STATUS = "address errorCount lastErrorAt quarantined quarantinedAt quarantineReason denylisted"
CONNECTION = (
    f"totalCount pageInfo {{ hasNextPage endCursor }} edges {{ cursor node {{ {STATUS} }} }}"
)
QUARANTINED = (
    "query($f: Int, $a: String, $s: String) { quarantinedAddresses(first: $f, after: $a,"
    f" search: $s) {{ {CONNECTION} }} }}"
)
DENYLISTED = (
    "query($f: Int, $a: String, $s: String) { denylistedAddresses(first: $f, after: $a,"
    f" search: $s) {{ {CONNECTION} }} }}"
)
BACKWARDS = (
    "query($l: Int, $b: String) { quarantinedAddresses(last: $l, before: $b) { pageInfo {"
    " hasPreviousPage startCursor } edges { node { address } } } }"
)
ADDRESS_STATUS = f"query($x: String!) {{ addressStatus(address: $x) {{ {STATUS} }} }}"
RELEASE = f"mutation($x: String!) {{ releaseAddress(address: $x) {{ {STATUS} }} }}"
DENYLIST = f"mutation($x: String!) {{ denylistAddress(address: $x) {{ {STATUS} }} }}"
UNDENYLIST = f"mutation($x: String!) {{ removeFromDenylist(address: $x) {{ {STATUS} }} }}"
EXCLUSIONS = "query($id: ID!) { delivery(id: $id) { exclusions { reason count } kpis { toSend } } }"


async def sent_to(api: Api, emails: list[str]) -> dict[str, str]:
    """Send a delivery to the addresses; returns address -> MTA message id."""
    _, logs = await flows.sent_delivery(api, list(emails), feedbackMode="EFS")
    return {log["address"]: log["messageId"] for log in logs}


async def exclusions_of_a_new_delivery(
    api: Api, emails: list[str], **extra: Any
) -> tuple[dict[str, int], int]:
    """Prepare a delivery to the addresses plus a clean one: (exclusions by reason, to send)."""
    profile_ids = await flows.import_profiles(api, [*emails, "control@example.com"])
    created = await flows.create_delivery(api, profile_ids, label="Later", **extra)
    await flows.prepare(api, created["id"])
    data = (await api.gql(EXCLUSIONS, {"id": created["id"]}))["delivery"]
    return {x["reason"]: x["count"] for x in data["exclusions"]}, data["kpis"]["toSend"]


async def status(api: Api, address: str) -> dict[str, Any] | None:
    return (await api.gql(ADDRESS_STATUS, {"x": address}))["addressStatus"]  # type: ignore[no-any-return]


async def every_page(api: Api, query: str, first: int, search: str | None = None) -> list[Any]:
    """Follow the cursors; every page reports the same totalCount. Returns the pages."""
    pages, after = [], None
    while True:
        data = await api.gql(query, {"f": first, "a": after, "s": search})
        page = next(iter(data.values()))
        pages.append(page)
        if not page["pageInfo"]["hasNextPage"]:
            assert len({p["totalCount"] for p in pages}) == 1
            return pages
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        after = page["pageInfo"]["endCursor"]


def addresses(pages: list[Any]) -> list[str]:
    return [e["node"]["address"] for p in pages for e in p["edges"]]


async def test_a_hard_bounce_is_listed_and_a_release_lets_the_next_preparation_include_it(
    api: Api,
) -> None:
    ids = await sent_to(api, ["gone@example.com", "fine@example.com"])
    await report_all(api, event(ids["gone@example.com"], "hard_bounce", reason="USER_UNKNOWN"))

    listed = (await api.gql(QUARANTINED))["quarantinedAddresses"]
    assert listed["totalCount"] == 1
    (node,) = [e["node"] for e in listed["edges"]]
    assert node["quarantinedAt"] is not None and node["lastErrorAt"] is not None
    assert {k: node[k] for k in ("address", "errorCount", "quarantined", "quarantineReason")} == {
        "address": "gone@example.com",
        "errorCount": 1,
        "quarantined": True,
        "quarantineReason": "USER_UNKNOWN",
    }
    assert await status(api, "  GONE@Example.com ") == node
    assert await status(api, "fine@example.com") is None  # never failed
    assert await exclusions_of_a_new_delivery(api, ["gone@example.com"]) == (
        {"QUARANTINED_ADDRESS": 1},
        1,
    )

    released = (await api.gql(RELEASE, {"x": "Gone@Example.COM"}))["releaseAddress"]
    assert released == {
        "address": "gone@example.com",
        "errorCount": 0,
        "lastErrorAt": None,
        "quarantined": False,
        "quarantinedAt": None,
        "quarantineReason": None,
        "denylisted": False,
    }
    assert (await api.gql(QUARANTINED))["quarantinedAddresses"]["totalCount"] == 0
    assert await status(api, "gone@example.com") == released
    assert await exclusions_of_a_new_delivery(api, ["gone@example.com"]) == ({}, 2)

    error = await api.error(RELEASE, {"x": "gone@example.com"})
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert "gone@example.com is not in quarantine" in error["message"]


async def test_a_soft_error_quarantine_shows_its_count_and_reason(
    make_server: Callable[..., Any],
) -> None:
    async for api in api_for(await make_server(quarantine_threshold=2, quarantine_gap_hours=0)):
        ids = await sent_to(api, ["full@example.com"])
        message_id = ids["full@example.com"]
        await report_all(api, event(message_id, "soft_bounce", reason="MAILBOX_FULL", at=at(0)))
        assert (await status(api, "full@example.com") or {})["quarantined"] is False
        await report_all(api, event(message_id, "soft_bounce", reason="MAILBOX_FULL", at=at(1)))
        node = await status(api, "full@example.com")
        assert node is not None
        assert (node["errorCount"], node["quarantined"], node["quarantineReason"]) == (
            2,
            True,
            "SOFT_ERRORS",
        )


async def test_only_administrators_read_or_change_the_addresses(api: Api) -> None:
    operations = [
        (QUARANTINED, {}),
        (DENYLISTED, {}),
        (ADDRESS_STATUS, {"x": "a@example.com"}),
        (RELEASE, {"x": "a@example.com"}),
        (DENYLIST, {"x": "a@example.com"}),
        (UNDENYLIST, {"x": "a@example.com"}),
        (DENYLIST, {"x": ""}),  # the role is checked before the input
    ]
    for query, variables in operations:
        for role in ("reader", "preparer", "starter", "approver"):
            error = await api.error(query, variables, as_=role)
            assert error["extensions"]["code"] == "FORBIDDEN"
            assert "the ADMINISTRATION role is required" in error["message"]
        body = await api.raw(query, variables)  # no token at all
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await status(api, "a@example.com") is None  # nothing was written


async def test_the_deny_list_excludes_until_the_address_is_removed(api: Api) -> None:
    added = (await api.gql(DENYLIST, {"x": " Blocked@Example.com"}))["denylistAddress"]
    assert (added["address"], added["denylisted"], added["quarantined"], added["errorCount"]) == (
        "blocked@example.com",
        True,
        False,
        0,
    )
    again = (await api.gql(DENYLIST, {"x": "blocked@example.com"}))["denylistAddress"]
    assert again == added  # idempotent
    listed = (await api.gql(DENYLISTED))["denylistedAddresses"]
    assert (listed["totalCount"], addresses([listed])) == (1, ["blocked@example.com"])
    assert (await api.gql(QUARANTINED))["quarantinedAddresses"]["totalCount"] == 0
    assert await exclusions_of_a_new_delivery(api, ["blocked@example.com"]) == (
        {"DENYLISTED": 1},
        1,
    )

    removed = (await api.gql(UNDENYLIST, {"x": "BLOCKED@example.com"}))["removeFromDenylist"]
    assert removed == {**added, "denylisted": False}
    assert (await api.gql(DENYLISTED))["denylistedAddresses"]["totalCount"] == 0
    assert await exclusions_of_a_new_delivery(api, ["blocked@example.com"]) == ({}, 2)

    error = await api.error(UNDENYLIST, {"x": "blocked@example.com"})
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert "not on the deny list" in error["message"]


async def test_the_deny_list_and_the_quarantine_are_independent(api: Api) -> None:
    ids = await sent_to(api, ["both@example.com"])
    await report_all(api, event(ids["both@example.com"], "hard_bounce", reason="USER_UNKNOWN"))
    both = (await api.gql(DENYLIST, {"x": "both@example.com"}))["denylistAddress"]
    assert (both["denylisted"], both["quarantined"], both["errorCount"]) == (True, True, 1)
    # The deny list wins over quarantine in preparation.
    assert await exclusions_of_a_new_delivery(api, ["both@example.com"]) == ({"DENYLISTED": 1}, 1)

    await api.gql(UNDENYLIST, {"x": "both@example.com"})  # still in quarantine
    assert await exclusions_of_a_new_delivery(api, ["both@example.com"]) == (
        {"QUARANTINED_ADDRESS": 1},
        1,
    )
    await api.gql(DENYLIST, {"x": "both@example.com"})
    released = (await api.gql(RELEASE, {"x": "both@example.com"}))["releaseAddress"]
    assert (released["denylisted"], released["quarantined"]) == (True, False)  # still deny-listed
    assert await exclusions_of_a_new_delivery(api, ["both@example.com"]) == ({"DENYLISTED": 1}, 1)


async def test_an_sms_number_is_normalised_as_preparation_stores_it(api: Api) -> None:
    added = (await api.gql(DENYLIST, {"x": "+33 6 12-34-56 78"}))["denylistAddress"]
    assert added["address"] == "+33612345678"
    assert (await status(api, "+33612345678")) == added
    data = await api.gql(
        "mutation($p: [ProfileInput!]!) { importProfiles(profiles: $p) { profiles { id } } }",
        {"p": [{"phone": "+33 6 12 34 56 78"}, {"phone": "06 98 76 54 32"}]},
    )
    ids = [p["id"] for p in data["importProfiles"]["profiles"]]
    created = await flows.create_delivery(api, ids, channel="SMS", subject=None, body="Sale!")
    await flows.prepare(api, created["id"])
    summary = (await api.gql(EXCLUSIONS, {"id": created["id"]}))["delivery"]
    assert summary == {"exclusions": [{"reason": "DENYLISTED", "count": 1}], "kpis": {"toSend": 1}}


async def test_the_lists_page_by_cursor_with_a_total_and_search(
    make_server: Callable[..., Any],
) -> None:
    async for api in api_for(await make_server(quarantine_threshold=2, quarantine_gap_hours=0)):
        names = ["b1", "a2", "c_3", "B4", "a5", "d6", "e7"]
        ids = await sent_to(api, [f"{n}@example.com" for n in names])
        # Quarantined at three moments; several share a moment (ties are ordered by address).
        earlier, later = at(-60), at(-30)
        await report_all(
            api,
            *[
                event(ids[f"{n}@example.com"], "hard_bounce", reason="USER_UNKNOWN", at=earlier)
                for n in ("b1", "a2", "c_3")
            ],
        )
        await report_all(
            api,
            *[
                event(ids[f"{n}@example.com"], "hard_bounce", reason="REFUSED", at=later)
                for n in ("b4", "a5", "d6")
            ],
        )
        e7 = ids["e7@example.com"]
        await report_all(
            api, event(e7, "soft_bounce", at=at(-2)), event(e7, "soft_bounce", at=at(-1))
        )
        expected = [
            "e7@example.com",
            "a5@example.com",
            "b4@example.com",
            "d6@example.com",
            "a2@example.com",
            "b1@example.com",
            "c_3@example.com",
        ]
        pages = await every_page(api, QUARANTINED, first=3)
        assert [len(p["edges"]) for p in pages] == [3, 3, 1]
        # backwards from the end, through the ties of a shared moment: the same order
        backwards: list[str] = []
        before = None
        while True:
            page = (await api.gql(BACKWARDS, {"l": 2, "b": before}))["quarantinedAddresses"]
            backwards = [e["node"]["address"] for e in page["edges"]] + backwards
            if not page["pageInfo"]["hasPreviousPage"]:
                break
            before = page["pageInfo"]["startCursor"]
        assert backwards == expected
        assert pages[0]["totalCount"] == 7
        assert addresses(pages) == expected
        nodes = [e["node"] for p in pages for e in p["edges"]]
        assert [n["quarantineReason"] for n in nodes] == ["SOFT_ERRORS"] + ["REFUSED"] * 3 + [
            "USER_UNKNOWN"
        ] * 3

        # Search: a case-insensitive substring; % and _ are plain characters.
        found = await every_page(api, QUARANTINED, first=1, search="B")
        assert (found[0]["totalCount"], addresses(found)) == (
            2,
            ["b4@example.com", "b1@example.com"],
        )
        found = await every_page(api, QUARANTINED, first=10, search="_")
        assert addresses(found) == ["c_3@example.com"]
        found = await every_page(api, QUARANTINED, first=10, search="%")
        assert (found[0]["totalCount"], addresses(found)) == (0, [])

        # The deny list, in address order; an address added behind the cursor shifts nothing.
        for name in ("z9", "x7", "y8", "w6", "Y10"):
            await api.gql(DENYLIST, {"x": f"{name}@example.org"})
        first = (await api.gql(DENYLISTED, {"f": 2}))["denylistedAddresses"]
        assert addresses([first]) == ["w6@example.org", "x7@example.org"]
        await api.gql(DENYLIST, {"x": "a0@example.org"})
        rest = (await api.gql(DENYLISTED, {"f": 10, "a": first["pageInfo"]["endCursor"]}))[
            "denylistedAddresses"
        ]
        assert rest["totalCount"] == 6
        assert addresses([rest]) == ["y10@example.org", "y8@example.org", "z9@example.org"]
        found = await every_page(api, DENYLISTED, first=1, search="Y")
        assert addresses(found) == ["y10@example.org", "y8@example.org"]


async def test_bad_input_and_unknown_addresses_write_nothing(api: Api) -> None:
    bad = ["", "   ", "a" * 310 + "@example.com", "not an address", "12", "x@y", "+33 6 (12) x"]
    for address in bad:
        for mutation in (DENYLIST, RELEASE, UNDENYLIST):
            error = await api.error(mutation, {"x": address})
            assert error["extensions"]["code"] == "BAD_USER_INPUT", (address, error)
    assert "longer than 320" in (await api.error(DENYLIST, {"x": "a" * 321}))["message"]
    for mutation in (RELEASE, UNDENYLIST):
        error = await api.error(mutation, {"x": "nobody@example.com"})
        assert error["extensions"]["code"] == "NOT_FOUND"
    assert await status(api, "nobody@example.com") is None
    for query in (QUARANTINED, DENYLISTED):
        assert next(iter((await api.gql(query)).values()))["totalCount"] == 0

    wrong: list[tuple[dict[str, Any], str]] = [
        ({"s": "x" * 321}, "'search' is longer than 320"),
        ({"a": "not-a-cursor"}, "not a valid cursor"),
        ({"f": 501}, "'first' must be between 0 and 500"),
    ]
    for variables, message in wrong:
        for query in (QUARANTINED, DENYLISTED):
            error = await api.error(query, variables)
            assert error["extensions"]["code"] == "BAD_USER_INPUT"
            assert message in error["message"]
    # A cursor of one list is refused by the other.
    await api.gql(DENYLIST, {"x": "one@example.com"})
    await api.gql(DENYLIST, {"x": "two@example.com"})
    cursor = (await api.gql(DENYLISTED, {"f": 1}))["denylistedAddresses"]["pageInfo"]["endCursor"]
    error = await api.error(QUARANTINED, {"a": cursor})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_release_is_never_undone_by_concurrent_feedback(
    make_server: Callable[..., Any],
) -> None:
    """Feedback reads and rewrites address states; run it against releases of the same
    addresses at once. In either order the address ends out of quarantine (a soft error after
    a release counts 1 of 2); a stale write would put it back."""
    async for api in api_for(await make_server(quarantine_threshold=2, quarantine_gap_hours=0)):
        emails = [f"race{i}@example.com" for i in range(8)]
        ids = await sent_to(api, emails)
        for step in (0, 1):
            await report_all(api, *[event(ids[e], "soft_bounce", at=at(step - 10)) for e in emails])
        listed = (await api.gql(QUARANTINED, {"f": 20}))["quarantinedAddresses"]
        assert listed["totalCount"] == len(emails)

        third = [event(ids[e], "soft_bounce", at=at(-5)) for e in emails]
        results = await asyncio.gather(
            api.feedback(third), *[api.gql(RELEASE, {"x": e}) for e in emails]
        )
        assert results[0].status_code == 200
        for email in emails:
            node = await status(api, email)
            assert node is not None
            assert node["quarantined"] is False, node
            assert node["errorCount"] in (0, 1), node
