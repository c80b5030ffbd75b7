"""Benchmark of tracking storage (issue 11, finding 13): one row per recipient and open or link.

    .venv/bin/python bench/tracking_hits.py                   # SQLite and PostgreSQL
    .venv/bin/python bench/tracking_hits.py --db sqlite --recipients 2000

For each database, in this process (migrated fresh database, models registered, no HTTP):
1. a delivery of N recipients is prepared (its sending logs are what hits must match);
2. baseline: the statement the recorder used before, a plain multi-row INSERT ... SELECT ...
   WHERE EXISTS, stores one open per recipient in batches of 500 (TRACKING_BATCH_SIZE); those
   rows are then deleted;
3. `record_hits` (INSERT ... ON CONFLICT DO UPDATE) stores the same opens: every key is new;
4. `record_hits` again, same keys: every row is updated (hits + 1, last_at);
and then the finding's probe over HTTP against the real server (`python -m server serve`,
SQLite): 5,000 GETs of one recipient's pixel, 20 at a time, beside 5,000 GETs of /health by the
same client (the baseline: the HTTP cost alone); after a graceful stop, the rows and hits stored.
"""

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from harness import (
    Client,
    command_line,
    environment,
    machine,
    operator_token,
    pg_database,
    running_server,
    sending_logs,
)
from tortoise import Tortoise
from tortoise.backends.base.executor import EXECUTOR_CACHE

from models import lifecycle
from models.audit import ENGINE
from models.enums import Channel, FeedbackMode
from models.profile import MAX_IMPORT, ProfileData, import_profiles
from models.sql import Sql
from models.tracking import Hit, Tally, Token, TokenKind, TrackingKind, record_hits, tracking_url
from server.db import apply_migrations, tortoise_config

BATCH = 500
BODY = '<p>Hi</p><a href="https://example.com/offer">Offer</a>'
SECRET = "bench-tracking-secret"


async def previous_insert(sql: Sql, hits: list[Hit]) -> int:
    """The recorder's statement before finding 13: one row per hit."""
    at = "CAST(? AS TIMESTAMPTZ)" if sql.postgres else "?"
    row = f"(CAST(? AS INTEGER), CAST(? AS INTEGER), ?, ?, {at})"
    params: list[Any] = []
    for hit in hits:
        params += [hit.delivery_id, hit.log_id, hit.kind.value, hit.url, sql.ts(hit.at)]
    inserted = await sql.rows(
        "INSERT INTO tracking_log (delivery_id, sending_log_id, kind, url, at)"
        " SELECT v.column1, v.column2, v.column3, v.column4, v.column5"
        " FROM (VALUES " + ",".join([row] * len(hits)) + ") AS v"
        " WHERE EXISTS (SELECT 1 FROM sending_log s"
        " WHERE s.id = v.column2 AND s.delivery_id = v.column1) RETURNING id",
        params,
    )
    return len(inserted)


async def storage(url: str, n: int) -> list[tuple[str, float, int]]:
    await apply_migrations(url)
    EXECUTOR_CACHE.clear()  # tortoise caches INSERTs per connection name, not per dialect
    await Tortoise.init(config=tortoise_config(url))
    try:
        profile_ids = []
        for start in range(0, n, MAX_IMPORT):
            rows = [
                ProfileData(f"t{i}@example.com") for i in range(start, min(n, start + MAX_IMPORT))
            ]
            profile_ids += [p.id for p in (await import_profiles(rows)).profiles]
        draft = lifecycle.DeliveryDraft(
            label="bench", channel=Channel.EMAIL, body=BODY, subject="Hi",
            profile_ids=profile_ids,
        )  # fmt: skip
        delivery = await lifecycle.create_delivery(draft, FeedbackMode.LEGACY, ENGINE)
        await lifecycle.prepare_delivery(delivery.id, ENGINE)
        sql = Sql()
        # As if relayed: only a message handed to the MTA records hits (HANDED_OVER).
        await sql.execute(
            "UPDATE sending_log SET message_id = 'bench.' || CAST(id AS TEXT)"
            " WHERE delivery_id = ?",
            [delivery.id],
        )
        logs = [
            r["id"]
            for r in await sql.rows(
                "SELECT id FROM sending_log WHERE delivery_id = ?", [delivery.id]
            )
        ]
        now = datetime.now(UTC)
        hits = [Hit(delivery.id, log, TrackingKind.OPEN, now) for log in logs]
        figures = []

        async def run(label: str, store: Any) -> None:
            started = time.perf_counter()
            stored = 0
            for start in range(0, len(hits), BATCH):
                stored += await store(hits[start : start + BATCH])
            figures.append((label, time.perf_counter() - started, stored))

        await run("previous plain INSERT (baseline), new rows", lambda b: previous_insert(sql, b))
        await sql.execute("DELETE FROM tracking_log WHERE delivery_id = ?", [delivery.id])
        tallies = lambda b: record_hits(sql, [Tally.of(h) for h in b])  # noqa: E731
        await run("record_hits, new rows (insert)", tallies)
        await run("record_hits, the same keys (update)", tallies)
        rows = await sql.rows(
            "SELECT COUNT(*) AS n, SUM(hits) AS h FROM tracking_log WHERE delivery_id = ?",
            [delivery.id],
        )
        assert (int(rows[0]["n"]), int(rows[0]["h"])) == (n, 2 * n), rows
    finally:
        await Tortoise.close_connections()
    return figures


async def probe(gets: int) -> list[str]:
    """The finding's probe against the real server: 5,000 GETs of one pixel."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        db = workdir / "probe.sqlite3"
        env = environment(
            DATABASE_URL=f"sqlite://{db}", MTA_URL="capture://", FEEDBACK_SECRET=SECRET
        )
        token = operator_token(
            env, workdir, ["ADMINISTRATION", "PREPARE_DELIVERIES", "START_DELIVERIES"]
        )
        lines = []
        with running_server(env, workdir) as server:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
                client = Client(http, token)
                await client.gql(
                    "mutation($p: [ProfileInput!]!) { importProfiles(profiles: $p) { created } }",
                    {"p": [{"email": "probe@example.com"}]},
                )
                created = await client.gql(
                    "mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) { id } }",
                    {"i": {"label": "probe", "channel": "EMAIL", "subject": "Hi", "body": BODY,
                           "audience": {"profileIds": ["1"]}}},
                )  # fmt: skip
                delivery_id = created["createDelivery"]["id"]
                await client.gql(f'mutation {{ prepareDelivery(id: "{delivery_id}") {{ id }} }}')
                # Sent (capture://): only a message handed to the MTA records hits.
                confirm = "mutation($d: ID!) { confirmSend(deliveryId: $d) { id } }"
                await client.gql(confirm, {"d": delivery_id})
                for _ in range(200):
                    (sent,) = await sending_logs(client, delivery_id, "status")
                    if sent["status"] != "TO_SEND":
                        break
                    await asyncio.sleep(0.05)
                (log,) = await sending_logs(client, delivery_id, "id")
                token_ = Token(TokenKind.OPEN, int(delivery_id), int(log["id"]))
                pixel = tracking_url(server.base_url, SECRET, token_).removeprefix(server.base_url)
                limit = asyncio.Semaphore(20)

                async def get(path: str) -> int:
                    async with limit:
                        return (await http.get(path)).status_code

                for label, path in (("/health (baseline)", "/health"), ("the pixel", pixel)):
                    cpu, started = server.cpu_seconds(), time.perf_counter()
                    statuses = await asyncio.gather(*(get(path) for _ in range(gets)))
                    seconds = time.perf_counter() - started
                    assert set(statuses) == {200}, set(statuses)
                    lines.append(
                        f"  {gets:,} GETs of {label:20} {seconds:6.2f} s, {gets / seconds:7,.0f}"
                        f" req/s, server CPU {server.cpu_seconds() - cpu:5.2f} s"
                    )
        with sqlite3.connect(db) as conn:
            rows, hits = conn.execute("SELECT COUNT(*), SUM(hits) FROM tracking_log").fetchone()
        lines.append(f"  stored after a graceful stop: {rows} row(s), {hits:,} hits")
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--gets", type=int, default=5_000)
    parser.add_argument("--db", default="sqlite,postgres")
    args = parser.parse_args()
    print(f"$ {command_line()}\n{machine()}, Python {sys.version.split()[0]}")
    for db in args.db.split(","):
        if db == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                figures = await storage(f"sqlite://{Path(tmp) / 'bench.sqlite3'}", args.recipients)
        else:
            async with pg_database("bench_tracking") as url:
                figures = await storage(url, args.recipients)
        print(f"\n{db}: {args.recipients:,} opens in batches of {BATCH}")
        for label, seconds, stored in figures:
            print(f"  {label:45} {seconds:6.3f} s  {stored / seconds:9,.0f} hits/s")
    print("\nthe probe (SQLite, real server):")
    print("\n".join(await probe(args.gets)))


if __name__ == "__main__":
    asyncio.run(main())
