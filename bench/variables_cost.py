"""CPU of a request whose variables hold a list far over its bound, beside the same request
within it, and beside what graphql-core's coercion of that list alone costs (what the server
spent on it before graphql_schema/input_bounds.py checked the bound first).

    .venv/bin/python bench/variables_cost.py      # CPU ms, best and median of 10

In process, on the server's schema, as an operator without a role on a migrated SQLite file
(its createDelivery is refused either way: FORBIDDEN).
"""

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import graphql  # noqa: E402
from graphql.execution.values import get_variable_values  # noqa: E402
from harness import migrated_sqlite  # noqa: E402
from page_cpu import context  # noqa: E402

from graphql_schema.schema import build_schema  # noqa: E402
from models.audit import COMMAND_LINE  # noqa: E402
from models.operator import create_operator  # noqa: E402

STATUSES = "query($s: [DeliveryStatus!]) { deliveries(first: 1, statuses: $s) { totalCount } }"
CREATE = "mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) { id } }"


def draft(ids: int) -> dict[str, Any]:
    audience = {"profileIds": [str(n) for n in range(1, ids + 1)]}
    return {"i": {"label": "x", "channel": "EMAIL", "body": "b", "audience": audience}}


CASES = [
    ("10 statuses (within the bound)", STATUSES, {"s": ["SENT"] * 10}),
    ("100,000 statuses (800 KB of JSON)", STATUSES, {"s": ["SENT"] * 100_000}),
    ("240,000 statuses (1.9 MB, under the body limit)", STATUSES, {"s": ["SENT"] * 240_000}),
    ("createDelivery, 100,000 profileIds, no role", CREATE, draft(100_000)),
]


async def timed(run: Callable[[], Awaitable[Any]], runs: int = 10) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        started = time.process_time()
        await run()
        times.append(time.process_time() - started)
    return min(times) * 1000, statistics.median(times) * 1000


async def main() -> None:
    async with migrated_sqlite("variables-cost-"):
        operator, _ = await create_operator("bench", [], COMMAND_LINE)
        schema, ctx = build_schema(), context(operator)
        core = schema._schema  # type: ignore[attr-defined]
        print(f"{' '.join(sys.argv)}  ({time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC)")
        print(f"{'variables':<50} {'server ms min / median':>24} {'coercion alone':>16}")
        for label, document, variables in CASES:
            operation = graphql.parse(document).definitions[0]
            definitions = operation.variable_definitions  # type: ignore[attr-defined]

            async def request(text: str = document, values: dict[str, Any] = variables) -> None:
                await schema.execute(text, values, context_value=ctx.for_operation())

            async def coercion(
                values: dict[str, Any] = variables, declared: Any = definitions
            ) -> None:
                get_variable_values(core, declared, values)

            server, alone = await timed(request), await timed(coercion)
            print(f"{label:<50} {server[0]:>10.1f} / {server[1]:<11.1f} {alone[1]:>16.1f}")


if __name__ == "__main__":
    asyncio.run(main())
