"""Schema-driven fuzzing of `/graphql` with schemathesis (issue 6, docs/testing.md).

schemathesis reads the live server's schema by introspection and generates queries and
mutations for every root field (positive cases: valid documents with arbitrary arguments;
negative cases: documents the schema must refuse). Each case goes to a real uvicorn server over
HTTP as an administrator (so resolvers really run, on seeded deliveries as well as on made-up
ids), as an operator without roles, with no token and with a bad token. Every answer must be:

- not a 5xx;
- a GraphQL response (a JSON object with `data` and/or `errors`) that schemathesis finds
  consistent with the schema, and whose `data` has the shape and types the query asked for;
- free of unexpected errors: each error carries one of the contract's codes, never
  INTERNAL_SERVER_ERROR (that code means a resolver raised something it did not expect);
- refused when the case is negative or carries no valid token.

Each stream has a fixed seed (the same cases every run) and counts its cases: fewer than the
planned total fails the test. FUZZ_SCALE multiplies the counts; FUZZ_SEED picks other cases.
"""

import asyncio
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import graphql
import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.graphql import nodes
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.support import flows
from tests.support.client import Api
from tests.support.server import api_for

CONTRACT_CODES = {"UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "BAD_USER_INPUT", "INVALID_STATE"}
SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
SEED = int(os.environ.get("FUZZ_SEED", "0"))
# Shrinking a failure to its smallest form can take minutes: off unless asked for.
PHASES = [Phase.explicit, Phase.generate] + (
    [Phase.shrink] if os.environ.get("FUZZ_SHRINK") else []
)

# Cases per stream: (who calls, generation mode, how many at FUZZ_SCALE=1).
STREAMS: list[tuple[str, GenerationMode, int]] = [
    ("admin", GenerationMode.POSITIVE, 600),
    ("admin", GenerationMode.NEGATIVE, 150),
    ("reader", GenerationMode.POSITIVE, 100),
    ("anonymous", GenerationMode.POSITIVE, 100),
    ("bad-token", GenerationMode.POSITIVE, 50),
]
MINIMUM_CASES = 1000
# Revoking or rotating operators by made-up ids would revoke the fuzzer's own operators (ids 1
# to 5) halfway through; tests/api/access/test_operator_revocation.py covers their refusals instead.
CHANGES_THE_FUZZERS_TOKENS = ("Mutation.revokeOperator", "Mutation.rotateOperatorToken")


@pytest.fixture
def db_kind() -> str:
    """SQLite only: the fuzzer looks for bad answers, not for dialect differences."""
    return "sqlite"


def fuzz_settings(examples: int) -> hypothesis.settings:
    return hypothesis.settings(
        max_examples=max(1, int(examples * SCALE)),
        deadline=None,
        database=None,
        phases=PHASES,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


@dataclass
class Tally:
    cases: int = 0
    served: Counter[str] = field(default_factory=Counter)  # data and no error, by operation
    by_operation: Counter[str] = field(default_factory=Counter)
    by_code: Counter[str] = field(default_factory=Counter)
    messages: Counter[str] = field(default_factory=Counter)


def id_values(known: list[str]) -> st.SearchStrategy[Any]:
    """IDs: mostly rows that exist (so resolvers get past NOT_FOUND), sometimes anything."""
    existing = st.sampled_from(known).map(nodes.String)
    return st.one_of(
        existing,
        existing,
        existing,
        st.integers(min_value=-(2**63), max_value=2**63).map(str).map(nodes.String),
        st.text(max_size=12).map(nodes.String),
    )


def shaped_like(schema: graphql.GraphQLSchema, query: str, data: Any) -> list[str]:
    """Problems with `data` as an answer to `query`: graphql-core re-serialises it field by
    field (by response key, so aliases work) and reports wrong types, bad enum values and
    nulls in non-null positions."""
    if data is None:
        return []
    document = graphql.parse(query)

    def by_key(source: Any, info: graphql.GraphQLResolveInfo[Any], **_: Any) -> Any:
        return source.get(info.path.key) if isinstance(source, dict) else None

    result = graphql.execute_sync(
        schema,
        document,
        root_value=data,
        field_resolver=by_key,
        variable_values={},
    )
    if result.errors:
        return [e.message for e in result.errors]
    return [] if result.data == data else [f"re-serialised {result.data!r} != {data!r}"]


def label(who: str, mode: GenerationMode, case: schemathesis.Case[Any]) -> str:
    return f"{who} {mode.value} {case.operation.label}"


def check_answer(
    who: str,
    mode: GenerationMode,
    case: schemathesis.Case[Any],
    response: Any,
    client_schema: graphql.GraphQLSchema,
    tally: Tally,
) -> None:
    assert response.status_code < 500, f"{response.status_code} for {case.body!r}"
    case.validate_response(response, checks=[response_schema_conformance])
    body = response.json()
    assert isinstance(body, dict), body
    assert "data" in body or "errors" in body, body
    assert set(body) <= {"data", "errors", "extensions"}, body
    errors = body.get("errors") or []
    assert isinstance(errors, list), body
    for error in errors:
        assert isinstance(error.get("message"), str), error
        code = (error.get("extensions") or {}).get("code")
        tally.by_code[str(code)] += 1
        tally.messages[f"{code}: {error['message'][:60]}"] += 1
        assert code in CONTRACT_CODES, f"{code} for {case.body!r}: {error}"
    data = body.get("data")
    if not errors:
        tally.served[label(who, mode, case)] += 1
    if mode is GenerationMode.NEGATIVE:
        assert errors, f"a document the schema must refuse was served: {case.body!r} -> {body}"
    if who in ("anonymous", "bad-token"):
        assert errors, body
        assert data is None or all(v is None for v in data.values()), body
        codes = {e["extensions"]["code"] for e in errors}
        assert codes <= {"UNAUTHENTICATED", "BAD_USER_INPUT"}, body
    if mode is GenerationMode.POSITIVE and isinstance(case.body, str):
        problems = shaped_like(client_schema, case.body, data)
        assert not problems, f"{case.body!r} -> {data!r}: {problems}"


def fuzz(base_url: str, tokens: dict[str, str], known_ids: list[str]) -> Tally:
    """Runs in a worker thread (blocking HTTP) while the server serves on the test's loop."""
    schemathesis.graphql.scalar("ID", id_values(known_ids))
    schema = schemathesis.graphql.from_url(
        f"{base_url}/graphql", headers={"Authorization": f"Bearer {tokens['admin']}"}
    ).exclude(name=list(CHANGES_THE_FUZZERS_TOKENS))
    client_schema = schema.client_schema
    tally = Tally()
    session = requests.Session()

    def stream(index: int, who: str, mode: GenerationMode, examples: int) -> None:
        headers = {}
        if who == "bad-token":
            headers["Authorization"] = "Bearer not-a-token"
        elif who != "anonymous":
            headers["Authorization"] = f"Bearer {tokens[who]}"

        @hypothesis.seed(SEED * 100 + index)
        @fuzz_settings(examples)
        @given(case=schema.as_strategy(generation_mode=mode))
        def run(case: schemathesis.Case[Any]) -> None:
            # A field without arguments cannot be made invalid: schemathesis falls back to a
            # positive case, and says so in the case's metadata.
            effective = case.meta.generation.mode if case.meta else mode
            tally.cases += 1
            tally.by_operation[label(who, effective, case)] += 1
            response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
            check_answer(who, effective, case, response, client_schema, tally)

        run()

    for index, (who, mode, examples) in enumerate(STREAMS):
        stream(index, who, mode, examples)
    return tally


async def seed_deliveries(api: Api) -> list[str]:
    """Deliveries in most states (sent, draft, ready, awaiting approval, scheduled, stopped) and
    their profiles, so that the fuzzer's ids find rows; returns the ids worth drawing. The sent
    ones come first: hypothesis draws the first ids most, and those cannot be deleted."""
    ids = []
    for mode in ("EFS", "LEGACY"):
        sent, _ = await flows.sent_delivery(
            api, [f"fuzz-{mode}{i}@example.com" for i in range(3)], feedbackMode=mode
        )
        ids.append(sent["id"])
    profiles = await flows.import_profiles(api, [f"fuzz{i}@example.com" for i in range(6)])
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    ids += [(await flows.create_delivery(api, profiles[:2]))["id"] for _ in range(2)]
    for extra in ({}, {"requireApproval": True}, {"scheduledAt": later}, {"scheduledAt": later}):
        delivery_id = (await flows.create_delivery(api, profiles, **extra))["id"]
        await flows.prepare(api, delivery_id)
        ids.append(delivery_id)
    for delivery_id in ids[-2:]:
        await flows.confirm(api, delivery_id)
    await api.gql("mutation($id: ID!) { stopDelivery(id: $id) { id } }", {"id": ids[-1]})
    top = max(int(i) for i in [*ids, *profiles])
    return [str(i) for i in range(1, top + 1)]


async def test_graphql_fuzz_never_errs_unexpectedly(make_server: Callable[..., Any]) -> None:
    running = await make_server(auth_failure_limit=1_000_000)
    async for api in api_for(running):
        known = await seed_deliveries(api)
        tally = await asyncio.to_thread(fuzz, running.base_url, dict(api.tokens), known)
        # Still alive and consistent after the run.
        assert (await api.gql("{ me { name } }"))["me"]["name"]
    print(f"\nGraphQL fuzz: {tally.cases} cases, {tally.served.total()} served without error")
    for name, count in sorted(tally.by_operation.items()):
        print(f"  {tally.served[name]:4d}/{count:4d}  {name}")
    print("  error codes:", dict(tally.by_code))
    for message, count in tally.messages.most_common(40):
        print(f"  {count:5d}  {message}")
    planned = sum(int(max(1, n * SCALE)) for _, _, n in STREAMS)
    assert tally.cases >= min(planned, MINIMUM_CASES), f"only {tally.cases} cases ran"
