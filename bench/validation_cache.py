"""The query limits and the validation cache: time per `schema.execute`, with and without each.

    .venv/bin/python bench/validation_cache.py                  # 5,000 executions per row
    .venv/bin/python bench/validation_cache.py --runs 20000

strawberry issue 4635: `QueryDepthLimiter` (and `MaxAliasesLimiter`) passed as factories, as
strawberry asks, build a new validation-rule class on every request; `ValidationCache` keys on
the rule classes, so it misses every time and each request pays the whole validation again.
graphql_schema/schema.py builds the rule classes once per schema instead, and adds a parse
cache (graphql_schema/caches.py: both caches take documents up to 2 KiB). This bench runs the
same document through `schema.execute` (no HTTP, no database) under each set-up, after a
warm-up, and prints the mean CPU time of this process per execution (`time.process_time`:
other processes on a busy machine do not count), the executions per second that makes, and the
validation cache's hits and misses during the timed runs. Two documents:

- `simple`: `{ me { name roles } }`, resolved in full from an operator in the context;
- `dashboard`: the dashboard's delivery query plus a sending-log page (two root fields, 33
  fields in all), sent without an operator, so that it is parsed and validated in full and
  then stops at its two root resolvers (UNAUTHENTICATED) without touching a database.

Baseline: the same schema with neither limits nor cache (what every request cost before).
"""

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import strawberry  # noqa: E402
from strawberry.extensions import (  # noqa: E402
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.validation_cache import _get_validate_cache  # noqa: E402

from graphql_schema.caches import CACHE_SIZE, known_documents  # noqa: E402
from graphql_schema.context import Context  # noqa: E402
from graphql_schema.errors import ErrorCodes  # noqa: E402
from graphql_schema.schema import (  # noqa: E402
    Mutation,
    Query,
    Schema,
    SchemaOptions,
    build_schema,
    limit_rules,
)
from models.enums import FeedbackMode  # noqa: E402
from models.operator import Operator  # noqa: E402

KPIS = (
    "kpis { toSend processed sent pending failed deliveredRate bouncesAndErrorsRate"
    " opens clicks openRate clickThroughRate statsComputedAt }"
)
DOCUMENTS = {
    "simple": "{ me { name roles } }",
    "dashboard": (
        "query($id: ID!, $first: Int) { delivery(id: $id) { id label status channel"
        f" failureMessage {KPIS} }} sendingLogs(deliveryId: $id, first: $first) {{ totalCount"
        " pageInfo { hasNextPage endCursor } edges { node { id address status failureType"
        " failureReason retries eventAt } } } }"
    ),
}
VARIABLES: dict[str, Any] = {"id": "1", "first": 10}

Factory = Callable[[], SchemaExtension]


def stock_limiters() -> list[type[SchemaExtension] | Factory]:
    """The limits as strawberry documents them: factories, so new rule classes each request."""
    options = SchemaOptions()
    return [
        ErrorCodes,
        lambda: QueryDepthLimiter(max_depth=options.max_depth),
        lambda: MaxAliasesLimiter(max_alias_count=options.max_aliases),
        lambda: MaxTokensLimiter(max_token_count=options.max_tokens),
        lambda: ValidationCache(maxsize=CACHE_SIZE),
    ]


def rules_once() -> list[type[SchemaExtension] | Factory]:
    """The server's limits (rule classes built once) with the validation cache alone."""
    options = SchemaOptions()
    rules = limit_rules(options)
    return [
        ErrorCodes,
        lambda: MaxTokensLimiter(max_token_count=options.max_tokens),
        lambda: AddValidationRules(rules),
        lambda: ValidationCache(maxsize=CACHE_SIZE),
    ]


def plain(extensions: list[type[SchemaExtension] | Factory]) -> strawberry.Schema:
    return Schema(query=Query, mutation=Mutation, extensions=extensions)


SETUPS: dict[str, Callable[[], strawberry.Schema]] = {
    "baseline: no limits, no cache": lambda: plain([ErrorCodes]),
    "validation cache, no limits": lambda: plain(
        [ErrorCodes, lambda: ValidationCache(maxsize=CACHE_SIZE)]
    ),
    "limits as strawberry documents them + validation cache": lambda: plain(stock_limiters()),
    "limits' rules built once + validation cache": lambda: plain(rules_once()),
    "the server: limits + parse and validation caches": lambda: build_schema(),
    "the server in production mode (+ no introspection)": lambda: build_schema(
        SchemaOptions(production=True)
    ),
}


def context(document: str) -> Context:
    async def nothing(*_: object) -> None:
        return None

    operator = None
    if document == "simple":
        operator = Operator(
            id=1,
            name="bench",
            roles=["ADMINISTRATION"],
            token_hash="-",
            created_at=datetime.now(UTC),
        )
    return Context(
        operator=operator,
        token_given=False,
        default_mode=FeedbackMode.LEGACY,
        changed=nothing,
        wake_engine=nothing,
        progress=None,  # type: ignore[arg-type]  # no subscription runs here
    )


async def measure(
    schema: strawberry.Schema, document: str, runs: int
) -> tuple[float, int, int, bool]:
    """(CPU µs per execution, cache hits, cache misses, every result as expected)."""
    query, ctx = DOCUMENTS[document], context(document)
    for _ in range(200):  # warm-up: fills the cache where there is one
        await schema.execute(query, variable_values=VARIABLES, context_value=ctx)
    before = _validations()
    ok = True
    start = time.process_time()
    for _ in range(runs):
        result = await schema.execute(query, variable_values=VARIABLES, context_value=ctx)
        ok = ok and _expected(document, result)
    elapsed = time.process_time() - start
    after = _validations()
    return elapsed / runs * 1e6, after[0] - before[0], after[1] - before[1], ok


def _validations() -> tuple[int, int]:
    """(hits, misses) of validation: strawberry's ValidationCache (the set-ups that use it)
    and the server's own (graphql_schema/caches.py known_documents)."""
    strawberry_cache = _get_validate_cache(CACHE_SIZE).cache_info()
    return (
        strawberry_cache.hits + known_documents.reused["validation"],
        strawberry_cache.misses + known_documents.computed["validation"],
    )


def _expected(document: str, result: Any) -> bool:
    if document == "simple":
        return not result.errors and result.data == {
            "me": {"name": "bench", "roles": ["ADMINISTRATION"]}
        }
    codes = {e.extensions.get("code") for e in result.errors or []}
    return codes == {"UNAUTHENTICATED"}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5000, help="timed executions per row")
    parser.add_argument("--repeat", type=int, default=3, help="rows are the median of this many")
    args = parser.parse_args()
    python = sys.version.split()[0]
    print(f"{args.runs} executions per run, median of {args.repeat} runs, Python {python}")
    header = ("document", "set-up", "CPU µs", "exec/s", "vs base", "hits", "misses")
    print("{:<10} {:<58} {:>8} {:>8} {:>8} {:>6} {:>6}".format(*header))
    for document in DOCUMENTS:
        baseline = None
        for name, make in SETUPS.items():
            schema = make()
            rows = [await measure(schema, document, args.runs) for _ in range(args.repeat)]
            micros = statistics.median(r[0] for r in rows)
            hits, misses, ok = rows[-1][1], rows[-1][2], all(r[3] for r in rows)
            baseline = baseline or micros
            print(
                f"{document:<10} {name:<58} {micros:>8.1f} {1e6 / micros:>8,.0f}"
                f" {baseline / micros:>7.2f}x {hits:>6} {misses:>6}"
                + ("" if ok else "  WRONG RESULTS")
            )


if __name__ == "__main__":
    asyncio.run(main())
