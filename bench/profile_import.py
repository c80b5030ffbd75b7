"""Benchmark of importProfiles (issue 11, finding 9): the bulk upsert against the code before it.

    .venv/bin/python bench/profile_import.py           # 10,000 profiles, SQLite and PostgreSQL
    .venv/bin/python bench/profile_import.py --n 2000 --db sqlite

For each database, on a fresh one (migrated, models registered in this process, no HTTP):
1. baseline: the previous implementation (kept below as `previous_import`: a bulk INSERT of the
   new rows, then one `save()` per existing row) imports N new profiles, then N again with a
   first name each (all updates);
2. the current `models.profile.import_profiles` does the same with other emails;
3. the current code runs 6 imports at once, each of the same N/6 new emails (shuffled) plus
   N/6 of its own: every one must succeed (on PostgreSQL the previous code failed here).
Times are wall-clock seconds of the call, best of `--repeat` runs.
"""

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from harness import command_line, machine, pg_database
from tortoise import Tortoise
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.transactions import in_transaction

from models.profile import DATA_FIELDS, Profile, ProfileData, import_profiles
from server.db import apply_migrations, tortoise_config


async def previous_import(rows: list[ProfileData]) -> tuple[int, int]:
    """importProfiles as it was before finding 9 (models/profile.py at 3abac41, validation
    left out): omitted fields were written as null, new rows went in with bulk_create and
    existing ones were updated one `save()` at a time; every profile was read back as an
    ORM object for the answer, as now."""
    seen = {row.email for row in rows if row.email}
    created = updated = 0
    async with in_transaction():
        existing = {p.email: p for p in await Profile.filter(email__in=list(seen))}
        fresh: list[Profile] = []
        for row in rows:
            given = row.given()  # then, a field left out was null
            values = {"email": row.email, **{name: given.get(name) for name in DATA_FIELDS}}
            profile = existing.get(row.email)
            if profile is None:
                fresh.append(Profile(**values))
            else:
                profile.update_from_dict(values)
                await profile.save()
                updated += 1
        if fresh:
            await Profile.bulk_create(fresh, batch_size=1000)
            for p in await Profile.filter(email__in=[p.email for p in fresh]):
                existing[p.email] = p
        created = len(fresh)
    assert len([existing[row.email] for row in rows]) == len(rows)
    return created, updated


async def current_import(rows: list[ProfileData]) -> tuple[int, int]:
    result = await import_profiles(rows)
    return result.created, result.updated


def rows_of(emails: list[str], first_name: str | None = None) -> list[ProfileData]:
    if first_name is None:
        return [ProfileData(email) for email in emails]
    return [ProfileData(email, first_name=first_name) for email in emails]


async def timed(work: Awaitable[Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await work
    return time.perf_counter() - started, result


RUNS: dict[str, Callable[[list[ProfileData]], Awaitable[tuple[int, int]]]] = {
    "previous code (baseline)": previous_import,
    "bulk upsert": current_import,
}


async def measure(url: str, n: int, repeat: int) -> list[tuple[str, float, str]]:
    await apply_migrations(url)
    EXECUTOR_CACHE.clear()  # tortoise caches INSERTs per connection name, not per dialect
    await Tortoise.init(config=tortoise_config(url))
    figures: list[tuple[str, float, str]] = []
    try:
        for label, run in RUNS.items():
            best_new = best_again = float("inf")
            for _ in range(repeat):
                emails = [f"{uuid.uuid4().hex[:10]}-{i}@example.com" for i in range(n)]
                seconds, counts = await timed(run(rows_of(emails)))
                assert counts == (n, 0), counts
                best_new = min(best_new, seconds)
                seconds, counts = await timed(run(rows_of(emails, "Again")))
                assert counts == (0, n), counts
                best_again = min(best_again, seconds)
            figures.append((f"{label}: {n:,} new", best_new, f"{n / best_new:,.0f}/s"))
            figures.append((f"{label}: {n:,} existing", best_again, f"{n / best_again:,.0f}/s"))
        shared = [f"{uuid.uuid4().hex[:10]}-shared{i}@example.com" for i in range(n // 6)]
        imports = []
        for k in range(6):
            emails = [
                *shared,
                *(f"{uuid.uuid4().hex[:10]}-own{i}@example.com" for i in range(n // 6)),
            ]
            random.Random(k).shuffle(emails)
            imports.append(rows_of(emails, f"import{k}"))
        at_once = (current_import(rows) for rows in imports)
        seconds, results = await timed(asyncio.gather(*at_once, return_exceptions=True))
        failed = [r for r in results if isinstance(r, BaseException)]
        created = sum(r[0] for r in results if not isinstance(r, BaseException))
        figures.append(
            (
                f"bulk upsert: 6 at once, {n // 6:,} shared + {n // 6:,} own each",
                seconds,
                f"{len(failed)} failed; created {created:,} (expected {7 * (n // 6):,})",
            )
        )
    finally:
        await Tortoise.close_connections()
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--db", default="sqlite,postgres")
    args = parser.parse_args()
    print(f"$ {command_line()}\n{machine()}, Python {sys.version.split()[0]}")
    for db in args.db.split(","):
        if db == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                figures = await measure(
                    f"sqlite://{Path(tmp) / 'bench.sqlite3'}", args.n, args.repeat
                )
        else:
            async with pg_database("bench_import") as url:
                figures = await measure(url, args.n, args.repeat)
        print(f"\n{db}:")
        for label, seconds, note in figures:
            print(f"  {label:55} {seconds:7.3f} s  {note}")


if __name__ == "__main__":
    asyncio.run(main())
