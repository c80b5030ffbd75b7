"""How long the server takes to refuse the documents of issue 11 (findings 2 and 3).

    .venv/bin/python bench/adversary_documents.py            # 5 runs of each, CPU ms

In process, on the server's schema (graphql_schema.schema.build_schema) with the default
limits, and with MAX_QUERY_TOKENS set back to 5,000 (the default when the issue was filed) for
the documents that the token limit now stops first. Each run sends a new document (the same
text with a random comment), so that neither the parse nor the validation cache helps: this is
the CPU an attacker makes the server spend per request. No database: every one of them is
refused before anything runs.

Baseline, same run: parsing and validating the same text with graphql-core as it comes (its
specified rules, its own budgets of 500,000 comparisons and 50,000 fragment steps, no token
limit), which is what the server paid before issue 11 just to validate a document (the two
documents of finding 2 were then also executed: 14.8 s of CPU for the second, by the issue).
"""

import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from graphql import parse, specified_rules, validate
from graphql.validation import validation_context
from graphql.validation.rules import overlapping_fields_can_be_merged as overlap

from graphql_schema.schema import SchemaOptions, build_schema
from tests.support.adversary import NESTED_HISTORY, PAGES_OF_TRAILS, REPEATED

INNER = " ".join(["edges { node { id } }"] * 20)
NESTED_REPEATS = "{ " + " ".join([f"deliveries {{ {INNER} }}"] * 20) + " }"

CASES = [
    ("finding 2: 30 x 7 levels of profile { history ... }", NESTED_HISTORY, 1000),
    (
        "finding 2: 30 x deliveries(first: 500) { ... auditTrail(500) }",
        PAGES_OF_TRAILS,
        1000,
    ),
    ("finding 3: 480 x deliveries { ... } (default token limit)", REPEATED, 1000),
    ("finding 3: 480 x deliveries { ... } (MAX_QUERY_TOKENS=5000)", REPEATED, 5000),
    ("20 x deliveries { 20 x edges ... } (MAX_QUERY_TOKENS=5000)", NESTED_REPEATS, 5000),
]


def as_it_comes(schema: object, document: str) -> float:
    """CPU seconds to parse and validate `document` with graphql-core's own defaults."""
    budgets = overlap.MAX_COMPLEXITY_BUDGET, validation_context.MAX_FRAGMENT_WORK
    overlap.MAX_COMPLEXITY_BUDGET, validation_context.MAX_FRAGMENT_WORK = 500_000, 50_000
    try:
        started = time.process_time()
        validate(schema, parse(document), specified_rules)  # type: ignore[arg-type]
        return time.process_time() - started
    finally:
        overlap.MAX_COMPLEXITY_BUDGET, validation_context.MAX_FRAGMENT_WORK = budgets


async def main(runs: int = 5) -> None:
    schemas = {t: build_schema(SchemaOptions(max_tokens=t)) for t in {c[2] for c in CASES}}
    print(
        f"{'document':<64} {'chars':>6} {'CPU ms min':>10} {'median':>7}"
        f" {'baseline ms':>11}  answer"
    )
    for label, document, tokens in CASES:
        baseline = as_it_comes(schemas[tokens]._schema, document)  # type: ignore[attr-defined]
        times, message = [], ""
        for _ in range(runs):
            text = f"{document} # {uuid.uuid4().hex}"
            started = time.process_time()
            result = await schemas[tokens].execute(text)
            times.append(time.process_time() - started)
            assert result.errors and result.data is None, result
            message = result.errors[0].message
        print(
            f"{label:<64} {len(document):>6} {min(times) * 1000:>10.1f}"
            f" {statistics.median(times) * 1000:>7.1f} {baseline * 1000:>11.1f}  {message[:60]}"
        )


if __name__ == "__main__":
    asyncio.run(main())
