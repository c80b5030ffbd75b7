"""KPI reads on a big delivery: `kpis` (stored counters) and `computeStats` (a recount).

    .venv/bin/python bench/kpi_query.py                      # 1,000,000 sending logs, 20 runs
    .venv/bin/python bench/kpi_query.py --logs 100000 --runs 50

On a fresh PostgreSQL database with the server's schema (`python -m server operator create`
applies the migrations), a delivery is created through GraphQL, then its sending logs are
inserted straight into sending_log by generate_series (90 % SENT, 4 % PENDING, 4 % FAILED, 2 %
IGNORED and excluded), with tracking logs for 20 % of the recipients (opens, a quarter of
them also a click), and the delivery's counters set to match. Then, through the real server
(`python -m server serve`, a subprocess) over HTTP, each query `--runs` times after 2 warm-up
calls, timed at the client (request to parsed answer):
- `kpis(deliveryId:)`: the counters on the delivery row; target < 50 ms;
- `computeStats(deliveryId:)`: the recount from the logs, stored; target < 1 s.
Baselines, same run, raw asyncpg on one connection: the SELECT of the counters row, and the
recount's two SQL queries alone (models/stats.py).
"""

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import harness
import httpx
from harness import Client, command_line, environment, operator_token, pg, pg_database

KPIS = "toSend processed sent pending failed opens clicks"
RECOUNT = [
    "SELECT status, COUNT(*) AS n FROM sending_log WHERE delivery_id = $1 AND excluded = FALSE"
    " GROUP BY status",
    # Only recipients whose log is SENT (SPEC §5): every recipient with tracking logs, less
    # those whose log is not SENT (models/tracking.py, when most logs are SENT, as here).
    "SELECT COUNT(DISTINCT sending_log_id) AS opens,"
    " COUNT(DISTINCT CASE WHEN kind = 'CLICK' THEN sending_log_id END) AS clicks"
    " FROM tracking_log WHERE delivery_id = $1",
    "SELECT COUNT(DISTINCT t.sending_log_id) AS opens,"
    " COUNT(DISTINCT CASE WHEN t.kind = 'CLICK' THEN t.sending_log_id END) AS clicks"
    " FROM sending_log s JOIN tracking_log t ON t.sending_log_id = s.id WHERE s.delivery_id = $1"
    " AND s.status IN ('TO_SEND', 'PENDING', 'FAILED', 'IGNORED')",
]
COUNTERS = (
    "SELECT to_send, processed, sent, pending, failed, opens, clicks FROM delivery WHERE id = $1"
)
# Status of log g by g % 50: a fixed mix, so the recount has every kind of row to count.
STATUS = (
    "CASE WHEN g % 50 = 0 THEN 'IGNORED' WHEN g % 25 = 1 THEN 'PENDING'"
    " WHEN g % 25 = 2 THEN 'FAILED' ELSE 'SENT' END"
)


async def fill(url: str, delivery_id: int, n: int) -> dict[str, int]:
    """n sending logs + tracking logs for one delivery, counters set; the expected KPIs."""
    conn = await asyncpg.connect(pg(url))
    try:
        first = await conn.fetchval("SELECT COALESCE(MAX(id), 0) + 1 FROM sending_log")
        await conn.execute(
            "INSERT INTO sending_log (delivery_id, address, status, excluded, failure_type,"
            " message_id, retries)"
            f" SELECT $1::int, 'user' || g || '@example.com', {STATUS}, g % 50 = 0,"
            " CASE WHEN g % 25 = 2 THEN 'HARD' END,"
            " CASE WHEN g % 50 <> 0 THEN 'd' || $1::int || '.' || g || '@bench.local' END, 0"
            " FROM generate_series(1, $2) g",
            delivery_id,
            n,
        )
        # Opens for 1 log in 5 (some twice: one row, 2 hits), a click for 1 in 20:
        # (log id - first + 1) = g.
        await conn.execute(
            "INSERT INTO tracking_log (delivery_id, sending_log_id, kind, url, at, last_at, hits)"
            " SELECT $1::int, $2::int + g - 1, 'OPEN', NULL, now(), now(),"
            " CASE WHEN g % 10 = 0 THEN 2 ELSE 1 END"
            " FROM generate_series(5, $3::int, 5) g"
            " UNION ALL SELECT $1, $2 + g - 1, 'CLICK', 'https://example.com/offer',"
            " now(), now(), 1"
            " FROM generate_series(20, $3, 20) g",
            delivery_id,
            first,
            n,
        )
        await conn.execute("VACUUM ANALYZE sending_log")
        await conn.execute("VACUUM ANALYZE tracking_log")
        by_status = {r["status"]: r["n"] for r in await conn.fetch(RECOUNT[0], delivery_id)}
        every = await conn.fetchrow(RECOUNT[1], delivery_id)
        not_sent = await conn.fetchrow(RECOUNT[2], delivery_id)
        track = {k: every[k] - not_sent[k] for k in ("opens", "clicks")}
        sent, pending, failed = (by_status.get(s, 0) for s in ("SENT", "PENDING", "FAILED"))
        expected = {
            "to_send": sum(by_status.values()),
            "processed": sent + pending + failed,
            "sent": sent,
            "pending": pending,
            "failed": failed,
            "opens": track["opens"],
            "clicks": track["clicks"],
        }
        await conn.execute(
            "UPDATE delivery SET status = 'SENT', to_send = $2, excluded = $3, processed = $4,"
            " sent = $5, pending = $6, failed = $7, opens = $8, clicks = $9 WHERE id = $1",
            delivery_id,
            expected["to_send"],
            n - expected["to_send"],
            *(expected[k] for k in ("processed", "sent", "pending", "failed", "opens", "clicks")),
        )
    finally:
        await conn.close()
    return expected


async def timed(call: Callable[[], Awaitable[Any]], runs: int) -> list[float]:
    for _ in range(2):
        await call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        await call()
        times.append(time.perf_counter() - start)
    return times


def summary(name: str, times: list[float], target_ms: float | None) -> str:
    ordered = sorted(times)
    median = statistics.median(ordered) * 1000
    p95 = ordered[min(len(ordered) - 1, round(0.95 * len(ordered)) - 1)] * 1000
    verdict = ""
    if target_ms is not None:
        ok = "met" if p95 < target_ms else "MISSED"
        verdict = f"  target < {target_ms:g} ms: {ok} (by p95)"
    return (
        f"{name:<38} median {median:8.1f} ms  p95 {p95:8.1f} ms"
        f"  min {ordered[0] * 1000:8.1f} ms  max {ordered[-1] * 1000:8.1f} ms{verdict}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--logs", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    print(f"machine: {harness.machine()}; PostgreSQL on the same machine")
    print(f"command: {command_line()}")
    async with pg_database("kbench") as url:
        with tempfile.TemporaryDirectory(prefix="bench-kpi-") as tmp_name:
            workdir = Path(tmp_name)
            env = environment(
                DATABASE_URL=url, MTA_URL="capture://", FEEDBACK_SECRET=uuid.uuid4().hex
            )
            token = operator_token(env, workdir)  # also applies the migrations
            with harness.running_server(env, workdir) as server:
                async with httpx.AsyncClient(base_url=server.base_url, timeout=120) as http:
                    client = Client(http, token)
                    data = await client.gql(
                        "mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) { id } }",
                        {
                            "i": {
                                "label": "kpi bench",
                                "channel": "EMAIL",
                                "subject": "Hello",
                                "body": "<p>Hello</p>",
                                "audience": {"allProfiles": True},
                            }
                        },
                    )
                    delivery_id = data["createDelivery"]["id"]
                    start = time.perf_counter()
                    expected = await fill(url, int(delivery_id), args.logs)
                    print(
                        f"setup: {args.logs:,} sending logs + tracking logs inserted by SQL in"
                        f" {time.perf_counter() - start:.1f} s; counters {expected}"
                    )
                    want = {
                        "toSend": expected["to_send"],
                        "processed": expected["processed"],
                        "sent": expected["sent"],
                        "pending": expected["pending"],
                        "failed": expected["failed"],
                        "opens": expected["opens"],
                        "clicks": expected["clicks"],
                    }
                    variables = {"d": delivery_id}

                    async def kpis() -> None:
                        got = await client.gql(
                            f"query($d: ID!) {{ kpis(deliveryId: $d) {{ {KPIS} }} }}", variables
                        )
                        assert got["kpis"] == want, got

                    async def compute() -> None:
                        got = await client.gql(
                            f"mutation($d: ID!) {{ computeStats(deliveryId: $d) {{ {KPIS} }} }}",
                            variables,
                        )
                        assert got["computeStats"] == want, got

                    kpis_times = await timed(kpis, args.runs)
                    compute_times = await timed(compute, args.runs)
            conn = await asyncpg.connect(pg(url))
            try:

                async def raw() -> None:
                    for query in RECOUNT:
                        await conn.fetch(query, int(delivery_id))

                async def raw_counters() -> None:
                    await conn.fetchrow(COUNTERS, int(delivery_id))

                raw_times = await timed(raw, args.runs)
                raw_counter_times = await timed(raw_counters, args.runs)
            finally:
                await conn.close()
    print(f"{args.runs} runs each after 2 warm-ups, client-side (HTTP request -> parsed answer):")
    print(summary("kpis (counters)", kpis_times, 50))
    print(summary("computeStats (recount + store)", compute_times, 1000))
    print(summary("baseline: raw counters SELECT", raw_counter_times, None))
    print(summary("baseline: raw recount SQL (asyncpg)", raw_times, None))
    ratio = statistics.median(compute_times) / statistics.median(raw_times)
    print(f"computeStats / raw recount (medians): {ratio:.2f}x")
    cpus = os.cpu_count()
    print(f"({cpus} CPUs; server, PostgreSQL and this client share them)")


if __name__ == "__main__":
    asyncio.run(main())
