"""CPU per execution of the list pages a front end reads, the server's schema beside the bare
strawberry baseline: no HTTP, so that other processes on a busy machine do not count.

    .venv/bin/python bench/page_cpu.py                 # 300 executions per row
    .venv/bin/python bench/page_cpu.py --runs 1000

The server: `build_schema()` (the limits, the caches, the cost check, the role checks), on a
fresh migrated SQLite file with 60 prepared deliveries to 60 profiles (each delivery has 60
sending logs, each profile a history of 60 messages), executed as an administrator, two ways:
- "cached": the same page asked again with nothing changed, served by the result cache
  (graphql_schema/results.py: one read of the database's version, then the kept answer);
- "executed": a write to the database before each request (outside the measured time), so
  that every request is a miss and the page is executed: the cost of a page while a send runs.
The baseline: bench/bare_strawberry.py's schema with strawberry's parser and validation caches,
the same shapes served from memory. Each figure is the mean CPU time of this process per
`schema.execute` (`time.process_time`, which the database's work in this process counts in),
after a warm-up. bench/http_query.py measures the same pages over HTTP, which on a shared
machine measures the neighbours too.

Queries (the same text on both):
- page: the 50-delivery dashboard page (id label status, the eleven KPIs, totalCount, pageInfo);
- logs: a sending-logs page of 50 (seven fields each);
- history: a profile's history, 50 messages (six fields each).
"""

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import bare_strawberry  # noqa: E402
from harness import migrated_sqlite  # noqa: E402
from http_query import QUERIES  # noqa: E402
from strawberry.extensions import ParserCache, ValidationCache  # noqa: E402

from graphql_schema.context import Context  # noqa: E402
from graphql_schema.schema import build_schema  # noqa: E402
from models.audit import COMMAND_LINE  # noqa: E402
from models.enums import FeedbackMode, Role  # noqa: E402
from models.operator import create_operator  # noqa: E402
from models.sql import Sql  # noqa: E402

PAGES = ("page", "logs", "history")
BODY = '<p>Hello</p><a href="https://example.com/offer">Offer</a>'


def context(operator: Any) -> Context:
    async def nothing(*_: object) -> None:
        return None

    return Context(
        operator=operator,
        token_given=True,
        default_mode=FeedbackMode.LEGACY,
        changed=nothing,  # type: ignore[arg-type]
        wake_engine=nothing,
        progress=None,  # type: ignore[arg-type]  # no subscription runs here
    )


async def seed(schema: Any, ctx: Context) -> None:
    profiles = [{"email": f"reader{i}@example.com"} for i in range(60)]
    mutation = "mutation($p: [ProfileInput!]!) { importProfiles(profiles: $p) { created } }"
    result = await schema.execute(mutation, {"p": profiles}, context_value=ctx)
    assert not result.errors, result.errors
    for i in range(60):
        draft = {
            "label": f"page bench {i}",
            "channel": "EMAIL",
            "subject": "Hello",
            "body": BODY,
            "audience": {"allProfiles": True},
        }
        created = await schema.execute(
            "mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) { id } }",
            {"i": draft},
            context_value=ctx.for_operation(),
        )
        assert not created.errors, created.errors
        prepared = await schema.execute(
            "mutation($id: ID!) { prepareDelivery(id: $id) { id } }",
            {"id": created.data["createDelivery"]["id"]},  # type: ignore[index]
            context_value=ctx.for_operation(),
        )
        assert not prepared.errors, prepared.errors


async def touch() -> None:
    """A write that changes nothing a page shows, but moves the database's version."""
    await Sql().execute("UPDATE delivery SET label = label WHERE id = 1")


async def cpu_per_execution(
    schema: Any, query: str, ctx: Any, runs: int, *, write_before: bool = False
) -> float:
    fresh = getattr(ctx, "for_operation", lambda: ctx)
    for _ in range(30):
        result = await schema.execute(query, context_value=fresh())
        assert not result.errors, result.errors
    spent = 0.0
    for _ in range(runs):
        if write_before:
            await touch()
        start = time.process_time()
        await schema.execute(query, context_value=fresh())
        spent += time.process_time() - start
    return spent / runs * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    bare = bare_strawberry.strawberry.Schema(
        query=bare_strawberry.Query,
        extensions=[lambda: ParserCache(maxsize=256), lambda: ValidationCache(maxsize=256)],
    )
    async with migrated_sqlite("page-cpu-"):
        operator, _ = await create_operator("bench", [Role.ADMINISTRATION], COMMAND_LINE)
        schema = build_schema()
        ctx = context(operator)
        await seed(schema, ctx)
        print(f"{' '.join(sys.argv)}  ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")
        print(
            f"{'query':<8} {'cached us':>10} {'executed us':>12} {'bare+cache us':>14}"
            f" {'cached vs bare':>15} {'executed vs bare':>17}"
        )
        for name in PAGES:
            query = QUERIES[name]
            cached = await cpu_per_execution(schema, query, ctx, args.runs)
            executed = await cpu_per_execution(schema, query, ctx, args.runs, write_before=True)
            baseline = await cpu_per_execution(bare, query, None, args.runs)
            print(
                f"{name:<8} {cached:>10.0f} {executed:>12.0f} {baseline:>14.0f}"
                f" {baseline / cached:>14.2f}x {baseline / executed:>16.2f}x"
            )


if __name__ == "__main__":
    asyncio.run(main())
