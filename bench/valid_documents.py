"""CPU of the costliest valid documents within the default limits, beside `{ me { name } }`.

    .venv/bin/python bench/valid_documents.py             # 20 runs of each, CPU ms

In process, on the server's schema (build_schema(): the limits, the caches, the cost check)
as an administrator on a migrated SQLite file. Each run sends a new text (the small one with
a random comment; the others are longer than the caches take), so no cache helps: what an
operator's token can make the server spend per request. Beside each, the same text parsed
and validated by graphql-core's specified rules alone: what the server adds to that.

- many operations: 125 x `query Qi { me { id } }` run with operationName Q0 (bench/http_query.py
  `worst`: the costliest valid document found);
- many operations with variables: `query Qi($vi: ID!) { delivery(id: $vi) { id } }`;
- one operation, wide: 30 aliases (the alias limit) of a delivery with 20 fields, about
  1,000 tokens, executed (the deliveries do not exist: null each).
"""

import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from graphql import parse, specified_rules, validate  # noqa: E402
from harness import migrated_sqlite  # noqa: E402
from http_query import KPIS, QUERIES, filled, tokens  # noqa: E402
from page_cpu import context  # noqa: E402

from graphql_schema.caches import CACHED_QUERY_CHARS  # noqa: E402
from graphql_schema.schema import build_schema  # noqa: E402
from models.audit import COMMAND_LINE  # noqa: E402
from models.enums import Role  # noqa: E402
from models.operator import create_operator  # noqa: E402

# 30 aliases (MAX_QUERY_ALIASES) of a delivery with these fields: about 1,000 tokens
WIDE = (
    f"id label status subject channel version createdAt updatedAt requireApproval kpis {{ {KPIS} }}"
)
CASES = [
    ("{ me { name } }", QUERIES["me"], None, None),
    ("125 operations (worst)", QUERIES["worst"], "Q0", None),
    (
        "operations with a variable each",
        filled(lambda i: f"query Q{i}($v{i}: ID!) {{ delivery(id: $v{i}) {{ id }} }} "),
        "Q0",
        {"v0": "1"},
    ),
    (
        "one operation, aliased wide selections",
        "{ " + " ".join(f"d{i}: delivery(id: {i + 1}) {{ {WIDE} }}" for i in range(30)) + " }",
        None,
        None,
    ),
]


def as_it_comes(schema: object, document: str) -> float:
    started = time.process_time()
    validate(schema, parse(document), specified_rules)  # type: ignore[arg-type]
    return time.process_time() - started


async def main(runs: int = 20) -> None:
    async with migrated_sqlite("valid-documents-"):
        operator, _ = await create_operator("bench", [Role.ADMINISTRATION], COMMAND_LINE)
        schema, ctx = build_schema(), context(operator)
        print(f"{' '.join(sys.argv)}  ({time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC)")
        print(
            f"{'document':<40} {'tokens':>6} {'chars':>6} {'CPU ms min':>10} {'median':>7}"
            f" {'graphql-core parse+validate ms':>31}"
        )
        for label, document, name, variables in CASES:
            times, baseline = [], []
            for run in range(runs):
                # a new text each time, its tokens at new places: a comment after them, or
                # one of a fixed length before, would leave a syntax tree equal to the last
                # one, which a cache keyed on the tree's value finds (strawberry's did).
                # Over CACHED_QUERY_CHARS no cache keeps it anyway.
                text = (
                    document
                    if len(document) > CACHED_QUERY_CHARS
                    else f"# {uuid.uuid4().hex} {'x' * run}\n{document}"
                )
                started = time.process_time()
                result = await schema.execute(
                    text, variables, context_value=ctx.for_operation(), operation_name=name
                )
                times.append(time.process_time() - started)
                assert not result.errors, result.errors
                baseline.append(as_it_comes(schema._schema, text))  # type: ignore[attr-defined]
            print(
                f"{label:<40} {tokens(document):>6} {len(document):>6}"
                f" {min(times) * 1000:>10.1f} {statistics.median(times) * 1000:>7.1f}"
                f" {statistics.median(baseline) * 1000:>31.1f}"
            )


if __name__ == "__main__":
    asyncio.run(main())
