"""The claim of a delivery sent in each recipient's time zone (issue 17, section 3).

    .venv/bin/python bench/claim_due.py                        # SQLite and PostgreSQL
    .venv/bin/python bench/claim_due.py --logs 100000 --db sqlite

One database, `--logs` profiles spread evenly over 24 zones (UTC-11 to UTC+14) and two
deliveries IN_PROGRESS to all of them: one sent in each recipient's zone (a contact date at
09:00 tomorrow: 24 send times spread over a day), and the baseline, a delivery sent at once,
claimed in the same run. It times the preparation's `create_logs` of each (the zoned one also
reads the profiles' zones and gives each message its send time, `models/send_time.py`), then
`--claims` claims of `--batch` messages
(`models/relay.py: claim_batch`, what the dispatcher runs each pass; each batch is then marked
SENT, untimed, as the engine's record does) at four moments of the day: before the first
zone's time (nothing due: the claim a waiting delivery pays on every pass), just after the
first zone's time, after half the zones' and after the last one's. It prints the plan of the
claim's inner SELECT.
"""

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import harness
from harness import command_line, pg_database
from tortoise import Tortoise
from tortoise.backends.base.executor import EXECUTOR_CACHE

from models import relay, send_time
from models.delivery import Delivery
from models.enums import Channel, DeliveryStatus, FeedbackMode
from models.preparation import create_logs
from models.sql import Sql, in_list
from server.db import apply_migrations, tortoise_config

ZONES = [
    "Pacific/Pago_Pago", "Pacific/Honolulu", "America/Anchorage", "America/Los_Angeles",
    "America/Denver", "America/Chicago", "America/New_York", "America/Halifax",
    "America/Sao_Paulo", "Atlantic/South_Georgia", "Atlantic/Cape_Verde", "UTC",
    "Europe/Paris", "Europe/Athens", "Europe/Moscow", "Asia/Dubai", "Asia/Karachi",
    "Asia/Dhaka", "Asia/Bangkok", "Asia/Shanghai", "Asia/Tokyo", "Australia/Brisbane",
    "Pacific/Noumea", "Pacific/Kiritimati",
]  # fmt: skip


@contextlib.asynccontextmanager
async def database(kind: str) -> AsyncIterator[str]:
    if kind == "postgres":
        async with pg_database("claimdue") as url:
            yield url
    else:
        with tempfile.TemporaryDirectory(prefix="claimdue-") as tmp:
            yield f"sqlite://{tmp}/claim.sqlite3"


async def fill(sql: Sql, count: int) -> None:
    """`count` profiles, zone i % 24, in one INSERT ... SELECT."""
    await sql.execute("CREATE TEMPORARY TABLE zones (k INTEGER PRIMARY KEY, name TEXT)")
    await sql.many("INSERT INTO zones (k, name) VALUES (?, ?)", list(enumerate(ZONES)))
    series = (
        "SELECT generate_series(0, ? - 1) AS i"
        if sql.postgres
        else "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < ? - 1)"
        " SELECT i FROM c"
    )
    now = sql.ts(datetime.now(UTC))
    await sql.execute(
        "INSERT INTO profile (email, time_zone, created_at, updated_at)"
        f" SELECT 'p' || CAST(s.i AS TEXT) || '@example.com', z.name, ?, ? FROM ({series}) AS s"
        " JOIN zones z ON z.k = s.i % 24",
        [now, now, count],
    )


async def delivery(sql: Sql, label: str, zoned: bool, contact: datetime) -> tuple[Delivery, float]:
    """A delivery IN_PROGRESS to every profile, its logs written by the preparation's own
    `create_logs` (timed: the seconds it took)."""
    d = await Delivery.create(
        label=label,
        channel=Channel.EMAIL,
        subject="s",
        body="<p>Hi</p>",
        feedback_mode=FeedbackMode.LEGACY,
        status=DeliveryStatus.IN_PROGRESS,
        validity_period=3600,
        scheduled_at=contact,
        send_in_recipient_time_zone=zoned,
        audience={"all": True},
    )
    start = time.perf_counter()
    await create_logs(sql, d)
    took = time.perf_counter() - start
    await d.save()
    return d, took


async def claims(
    sql: Sql, d: Delivery, count: int, batch: int, now: datetime | None
) -> tuple[float, int]:
    """(median ms, messages claimed in all). After each claim, untimed, the batch is recorded
    as the engine does within seconds (SENT, lease dropped): a claim does not walk past the
    leases of earlier batches, which only a dead worker leaves behind."""
    times, got = [], 0
    for _ in range(count):
        start = time.perf_counter()
        claimed = await relay.claim_batch(
            d.id, batch, 600, "bench.local", now=now, timed=now is not None
        )
        times.append(1000 * (time.perf_counter() - start))
        got += len(claimed)
        ids = [c.log_id for c in claimed]
        for first in range(0, len(ids), 500):
            chunk = ids[first : first + 500]
            await sql.execute(
                "UPDATE sending_log SET status = 'SENT', claimed_until = NULL WHERE id IN "
                + in_list(chunk),
                chunk,
            )
    return statistics.median(times), got


async def plan(sql: Sql, d: Delivery, now: datetime) -> str:
    inner = (
        "SELECT id FROM sending_log WHERE delivery_id = ? AND status = 'TO_SEND'"
        " AND due_at IS NOT NULL AND due_at <= ? AND (claimed_until IS NULL OR claimed_until < ?)"
        " ORDER BY due_at, id LIMIT 1000"
    )
    params = [d.id, send_time.to_ms(now), relay.now_ms()]
    if sql.postgres:
        rows = await sql.rows("EXPLAIN " + inner, params)
        return " / ".join(r["QUERY PLAN"].strip() for r in rows[:3])
    rows = await sql.rows("EXPLAIN QUERY PLAN " + inner, params)
    return " / ".join(str(r["detail"]) for r in rows)


async def measure(kind: str, logs: int, count: int, batch: int, zoned_first: bool) -> None:
    EXECUTOR_CACHE.clear()  # tortoise caches INSERTs per connection name, whatever the dialect
    async with database(kind) as url:
        await apply_migrations(url)
        await Tortoise.init(config=tortoise_config(url))
        try:
            sql = Sql()
            start = time.perf_counter()
            await fill(sql, logs)
            tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
            contact = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 9, tzinfo=UTC)
            if zoned_first:  # the second preparation writes into a larger table
                zoned, zoned_s = await delivery(sql, "zoned", True, contact)
                baseline, base_s = await delivery(sql, "baseline", False, contact)
            else:
                baseline, base_s = await delivery(sql, "baseline", False, contact)
                zoned, zoned_s = await delivery(sql, "zoned", True, contact)
            await sql.execute("ANALYZE")
            print(f"{kind}: {logs:,} profiles written in {time.perf_counter() - start:.1f} s;"
                  f" preparation's create_logs: sent at once {base_s:.1f} s,"
                  f" in each zone {zoned_s:.1f} s ({zoned_s / base_s:.2f}x)")  # fmt: skip
            dues = sorted(ms for ms, _ in zoned.send_times or [])
            minute = timedelta(minutes=1)
            moments = {
                "nothing due yet": send_time.from_ms(dues[0]) - minute,
                "first zone due": send_time.from_ms(dues[0]) + minute,
                "half the zones due": send_time.from_ms(dues[len(dues) // 2]) + minute,
                "every zone due": send_time.from_ms(dues[-1]) + minute,
            }
            base_ms, base_got = await claims(sql, baseline, count, batch, None)
            print(f"  baseline (sent at once): {base_ms:.2f} ms per claim ({base_got} claimed)")
            for name, now in moments.items():
                ms, got = await claims(sql, zoned, count, batch, now)
                print(
                    f"  in each zone, {name}: {ms:.2f} ms per claim ({got} claimed),"
                    f" {ms / base_ms:.2f}x baseline"
                )
            print("  plan:", await plan(sql, zoned, moments["half the zones due"]))
        finally:
            await Tortoise.close_connections()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--logs", type=int, default=1_000_000)
    parser.add_argument("--claims", type=int, default=20, help="claims per moment")
    parser.add_argument("--batch", type=int, default=1000, help="messages per claim")
    parser.add_argument(
        "--zoned-first", action="store_true", help="prepare the zoned delivery before the baseline"
    )
    args = parser.parse_args()
    print(f"machine: {harness.machine()}; command: {command_line()}")
    for kind in args.db.split(","):
        await measure(kind, args.logs, args.claims, args.batch, args.zoned_first)


if __name__ == "__main__":
    asyncio.run(main())
