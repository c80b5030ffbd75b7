"""Validation alone, in process: the server's (graphql_schema/validation.py) beside
graphql-core's `validate`, with the server's rules, on the documents of valid_documents.py.

    .venv/bin/python bench/validation_only.py     # CPU ms, best and median of 30

Each run validates a fresh parse, so no cache is involved.
"""

import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import graphql  # noqa: E402
from valid_documents import CASES  # noqa: E402

from graphql_schema.caches import STRAWBERRY_RULES  # noqa: E402
from graphql_schema.schema import SchemaOptions, build_schema, limit_rules  # noqa: E402
from graphql_schema.validation import validate  # noqa: E402

SCHEMA: graphql.GraphQLSchema = build_schema()._schema  # type: ignore[attr-defined]
RULES = (*graphql.specified_rules, *limit_rules(SchemaOptions()), *STRAWBERRY_RULES)


def timed(validator: Callable[..., Any], text: str, runs: int = 30) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        document = graphql.parse(text)
        started = time.process_time()
        validator(SCHEMA, document, RULES)
        times.append(time.process_time() - started)
    return min(times) * 1000, statistics.median(times) * 1000


def main() -> None:
    print(f"{' '.join(sys.argv)}  (load {os.getloadavg()[0]:.1f})")
    print(f"{'document':<40} {'ours ms min / median':>22} {'graphql-core min / median':>27}")
    for label, text, _name, _variables in CASES:
        ours, theirs = timed(validate, text), timed(graphql.validate, text)
        print(
            f"{label:<40} {ours[0]:>11.2f} / {ours[1]:<8.2f} {theirs[0]:>14.2f} / {theirs[1]:.2f}"
        )


if __name__ == "__main__":
    main()
