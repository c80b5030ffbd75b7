"""CPU of one `importProfiles` request of 10,000 profiles through the server's schema, with
ProfileInput built straight from the coerced values (graphql_schema/plain_inputs.py) and, as the
baseline in the same run, with strawberry's own field-by-field conversion.

    .venv/bin/python bench/import_request.py        # CPU ms, best and median of 5, each way

In process, as an administrator on a migrated SQLite file; every run updates the same 10,000
profiles (the first run of each way, which creates them, is not counted).
"""

import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from harness import migrated_sqlite  # noqa: E402
from page_cpu import context  # noqa: E402

from graphql_schema.profiles.types import ProfileInput  # noqa: E402
from graphql_schema.schema import build_schema  # noqa: E402
from models.audit import COMMAND_LINE  # noqa: E402
from models.enums import Role  # noqa: E402
from models.operator import create_operator  # noqa: E402

IMPORT = "mutation($p: [ProfileInput!]!) { importProfiles(profiles: $p) { created updated } }"
PROFILES = {"p": [{"email": f"b{i}@example.com", "firstName": "x" * 100} for i in range(10_000)]}


async def main(runs: int = 5) -> None:
    async with migrated_sqlite("import-request-"):
        operator, _ = await create_operator("bench", [Role.ADMINISTRATION], COMMAND_LINE)
        schema, ctx = build_schema(), context(operator)
        definition = ProfileInput.__strawberry_definition__  # type: ignore[attr-defined]
        direct = definition.from_input
        print(f"{' '.join(sys.argv)}  ({time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC)")
        for label, hook in (("built directly", direct), ("strawberry's conversion", None)):
            definition.from_input = hook
            times = []
            for run in range(runs + 1):
                started = time.process_time()
                result = await schema.execute(IMPORT, PROFILES, context_value=ctx.for_operation())
                assert not result.errors, result.errors
                if run:
                    times.append(time.process_time() - started)
            best, median = min(times) * 1000, statistics.median(times) * 1000
            print(f"{label:<25} CPU ms {best:7.1f} best, {median:7.1f} median")
        definition.from_input = direct


if __name__ == "__main__":
    asyncio.run(main())
