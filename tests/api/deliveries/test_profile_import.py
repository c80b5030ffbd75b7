"""importProfiles as an upsert (issue 11, finding 9): a field left out keeps its value, null
clears it, and concurrent imports that share new emails all succeed, on SQLite and PostgreSQL."""

import asyncio
import random
from typing import Any

from tests.support.client import Api

IMPORT = (
    "mutation($p: [ProfileInput!]!) { importProfiles(profiles: $p) { created updated"
    " profiles { id email phone firstName lastName } } }"
)
PROFILE = "query($id: ID!) { profile(id: $id) { email phone firstName lastName } }"


async def imported(api: Api, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return (await api.gql(IMPORT, {"p": rows}))["importProfiles"]  # type: ignore[no-any-return]


async def test_finding_9_a_reimport_keeps_the_fields_it_leaves_out_and_clears_explicit_nulls(
    api: Api,
) -> None:
    first = await imported(
        api,
        [
            {"email": "bob@example.com", "firstName": "Bob", "lastName": "Stone", "phone": "+1"},
            {"email": "ann@example.com", "firstName": "Ann", "lastName": "Lee"},
        ],
    )
    assert (first["created"], first["updated"]) == (2, 0)
    bob, ann = (p["id"] for p in first["profiles"])

    again = await imported(
        api,
        [
            {"email": "ann@example.com", "lastName": None},  # clears the last name only
            {"email": "new@example.com", "firstName": "New"},  # new: what is left out is null
            {"email": " bob@example.com "},  # trimmed: Bob, and nothing to change
            {"phone": "+2"},  # no email: always a new profile
        ],
    )
    assert (again["created"], again["updated"]) == (2, 2)
    assert [p["id"] for p in again["profiles"][:3:2]] == [ann, bob]
    assert again["profiles"] == [
        {
            "id": ann,
            "email": "ann@example.com",
            "phone": None,
            "firstName": "Ann",
            "lastName": None,
        },
        {
            "id": again["profiles"][1]["id"],
            "email": "new@example.com",
            "phone": None,
            "firstName": "New",
            "lastName": None,
        },
        {
            "id": bob,
            "email": "bob@example.com",
            "phone": "+1",
            "firstName": "Bob",
            "lastName": "Stone",
        },
        {
            "id": again["profiles"][3]["id"],
            "email": None,
            "phone": "+2",
            "firstName": None,
            "lastName": None,
        },
    ]
    stored = (await api.gql(PROFILE, {"id": bob}))["profile"]
    assert stored == {
        "email": "bob@example.com",
        "phone": "+1",
        "firstName": "Bob",
        "lastName": "Stone",
    }

    await imported(api, [{"email": "bob@example.com", "firstName": None, "phone": "+3"}])
    stored = (await api.gql(PROFILE, {"id": bob}))["profile"]
    assert stored == {
        "email": "bob@example.com",
        "phone": "+3",
        "firstName": None,
        "lastName": "Stone",
    }


async def test_finding_9_concurrent_imports_with_overlapping_new_emails_all_succeed(
    api: Api,
) -> None:
    """Six imports at once over HTTP, each of the same 300 new emails (in its own order) and 50
    of its own: each succeeds, each shared email is created once, and the profiles hold the
    values of one of the imports."""
    shared = [f"shared{i}@example.com" for i in range(300)]
    imports = []
    for n in range(6):
        emails = [*shared, *(f"own{n}-{i}@example.com" for i in range(50))]
        random.Random(n).shuffle(emails)
        imports.append([{"email": e, "firstName": f"import{n}"} for e in emails])
    results = await asyncio.gather(*(imported(api, rows) for rows in imports))
    assert sum(r["created"] for r in results) == 300 + 6 * 50
    assert sum(r["updated"] for r in results) == 5 * 300
    ids: dict[str, set[str]] = {}
    for result, rows in zip(results, imports, strict=True):
        assert result["created"] + result["updated"] == 350
        assert [p["email"] for p in result["profiles"]] == [r["email"] for r in rows]
        for profile in result["profiles"]:
            ids.setdefault(profile["email"], set()).add(profile["id"])
    assert all(len(found) == 1 for found in ids.values())  # one profile per email
    names = set()
    for email in shared[:20]:
        (profile_id,) = ids[email]
        names.add((await api.gql(PROFILE, {"id": profile_id}))["profile"]["firstName"])
    assert names <= {f"import{n}" for n in range(6)}
