"""The cost of one record: what the engine pays each time it writes down what the MTA accepted.

    .venv/bin/python bench/record_cost.py                      # SQLite and PostgreSQL
    .venv/bin/python bench/record_cost.py --per 25 --records 400

While the MTA holds a batch, the engine records what it accepted every
RELAY_RECORD_INTERVAL_SECONDS (0.1 s), instead of once per batch (docs/engine.md). So the extra
cost of a send is about (its duration / 0.1 s) records, each one transaction that locks the
delivery row, moves the logs, adds to the counters and reads the status back. This measures
the CPU time (this process, both threads) and the wall time of `models.relay.record_relayed`
for `--records` records of `--per` messages each, on a fresh database with one confirmed
delivery whose logs are all claimed. Run it on two checkouts to compare their records.
"""

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator

import harness
from harness import command_line, pg_database
from tortoise import Tortoise
from tortoise.backends.base.executor import EXECUTOR_CACHE

from models import lifecycle, relay
from models.audit import Actor
from models.delivery import utcnow
from models.enums import Channel, FeedbackMode
from models.profile import ProfileData, import_profiles
from server.db import apply_migrations, tortoise_config

BODY = '<p>Hi</p><a href="https://example.com/unsubscribe">Unsubscribe</a>'


@contextlib.asynccontextmanager
async def database(kind: str) -> AsyncIterator[str]:
    if kind == "postgres":
        async with pg_database("record") as url:
            yield url
    else:
        with tempfile.TemporaryDirectory(prefix="record-") as tmp:
            yield f"sqlite://{tmp}/record.sqlite3"


async def measure(kind: str, per: int, records: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per record."""
    EXECUTOR_CACHE.clear()  # tortoise caches INSERTs per connection name, whatever the dialect
    async with database(kind) as url:
        await apply_migrations(url)
        await Tortoise.init(config=tortoise_config(url))
        try:
            by = Actor(1, "bench")
            emails = [f"r{i}@example.com" for i in range(per * records)]
            ids: list[int] = []
            for start in range(0, len(emails), 10_000):
                chunk = emails[start : start + 10_000]
                imported = await import_profiles([ProfileData(email=e) for e in chunk])
                ids += [p.id for p in imported.profiles]
            draft = lifecycle.DeliveryDraft(
                label="record cost", channel=Channel.EMAIL, subject="s", body=BODY, profile_ids=ids
            )
            delivery = await lifecycle.create_delivery(draft, FeedbackMode.LEGACY, by)
            await lifecycle.prepare_delivery(delivery.id, by)
            await lifecycle.confirm_send(delivery.id, by, utcnow())
            claimed = await relay.claim_batch(delivery.id, len(ids), 600, "bench.local")
            logs = [c.log_id for c in claimed]
            cpu0, wall0 = time.process_time(), time.perf_counter()
            for i in range(records):
                await relay.record_relayed(
                    delivery.id, FeedbackMode.LEGACY, logs[i * per : (i + 1) * per]
                )
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        finally:
            await Tortoise.close_connections()
    return 1000 * cpu / records, 1000 * wall / records


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--per", type=int, default=25, help="messages per record")
    parser.add_argument("--records", type=int, default=400)
    args = parser.parse_args()
    print(f"machine: {harness.machine()}; command: {command_line()}")
    for kind in args.db.split(","):
        cpu, wall = await measure(kind, args.per, args.records)
        print(
            f"{kind}: {args.records} records of {args.per} messages:"
            f" CPU {cpu:.2f} ms, wall {wall:.2f} ms per record"
        )


if __name__ == "__main__":
    asyncio.run(main())
