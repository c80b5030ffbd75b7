"""Benchmark of the CSV upload of profiles (issue 16 §3): POST /profiles/import against a raw
sqlite3 baseline in the same run.

    .venv/bin/python bench/csv_import.py                 # 1,000,000 profiles on SQLite
    .venv/bin/python bench/csv_import.py --n 100000 --json 20000

1. A CSV file of N new profiles (email, firstName, lastName, phone) is written to a temporary
   folder (about 75 bytes a row).
2. baseline: Python's sqlite3 alone, on a fresh migrated database file: csv.reader over the
   file, `INSERT ... ON CONFLICT (email) DO UPDATE` with executemany, a commit every 5,000
   rows; no validation, no HTTP. The floor of what any import through this stack could cost.
3. the upload: `python -m server serve` (a subprocess, its own fresh SQLite file), and the file
   streamed to it with httpx (`Content-Type: text/csv`, chunked) as an operator with
   PREPARE_DELIVERIES; then the same file again (every row an update).
   Both use WAL and `--synchronous` (FULL, the server's default, or NORMAL: see docs/bulk.md).
4. `--export` (on by default): a delivery to every profile is prepared (N sending logs) and
   `GET /deliveries/{id}/sending-logs.csv` read whole, with the server's memory (VmRSS) before
   and the most seen during it, beside a raw sqlite3 SELECT of the same rows through csv.writer.
5. for reference, `importProfiles` over JSON (chunks of 10,000) on `--json` new profiles.
Times are wall clock; rows/s is N / seconds. The server's CPU time is read from /proc.
"""

import argparse
import asyncio
import csv
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from harness import (
    Client,
    ServerProcess,
    command_line,
    environment,
    import_profiles,
    machine,
    operator_token,
    rss_kib,
    running_server,
)

from server.db import apply_migrations

CHUNK = 256 * 1024  # bytes the client sends at a time


def write_file(path: Path, n: int, prefix: str) -> None:
    with path.open("w", newline="") as out:
        out.write("email,firstName,lastName,phone\n")
        for start in range(0, n, 10_000):
            out.write(
                "".join(
                    f"{prefix}{i}@example.com,First{i},Last{i},+3361{i:07d}\n"
                    for i in range(start, min(n, start + 10_000))
                )
            )


def raw_sqlite(database: Path, csv_path: Path, synchronous: str) -> tuple[float, float, int]:
    """The baseline: sqlite3's executemany upsert, commit per 5,000 rows."""
    sql = (
        "INSERT INTO profile (email, first_name, last_name, phone, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (email) DO UPDATE SET"
        " first_name = excluded.first_name, last_name = excluded.last_name,"
        " phone = excluded.phone, updated_at = excluded.updated_at"
    )
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")  # the server's pragmas (tortoise's defaults)
    conn.execute(f"PRAGMA synchronous={synchronous}")
    now = "2026-01-01 00:00:00+00:00"
    started, cpu = time.perf_counter(), time.process_time()
    rows = 0
    with csv_path.open(newline="") as source:
        reader = csv.reader(source)
        next(reader)
        batch: list[tuple[str, ...]] = []
        for email, first, last, phone in reader:
            batch.append((email, first, last, phone, now, now))
            if len(batch) == 5000:
                conn.execute("BEGIN")
                conn.executemany(sql, batch)
                conn.execute("COMMIT")
                rows += len(batch)
                batch = []
        if batch:
            conn.execute("BEGIN")
            conn.executemany(sql, batch)
            conn.execute("COMMIT")
            rows += len(batch)
    seconds = time.perf_counter() - started
    conn.close()
    return seconds, time.process_time() - cpu, rows


def peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


async def file_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            yield chunk


async def upload(base_url: str, token: str, path: Path) -> tuple[float, dict[str, object]]:
    async with httpx.AsyncClient(base_url=base_url, timeout=600) as http:
        started = time.perf_counter()
        response = await http.post(
            "/profiles/import",
            content=file_chunks(path),
            headers={"Content-Type": "text/csv", "Authorization": f"Bearer {token}"},
        )
        seconds = time.perf_counter() - started
    response.raise_for_status()
    return seconds, response.json()


async def export(server: ServerProcess, token: str, n: int, database: Path) -> None:
    """A delivery to every profile, prepared (n sending logs), then its sending logs exported:
    rows/s and the server's peak memory before and after, beside a raw sqlite3 dump of the
    same rows to CSV."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=3600) as http:
        client = Client(http, token)
        created = await client.gql(
            "mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) { id } }",
            {
                "i": {
                    "label": "export bench",
                    "channel": "EMAIL",
                    "subject": "Hello",
                    "body": "<p>Hello</p>",
                    "audience": {"allProfiles": True},
                }
            },
        )
        delivery_id = created["createDelivery"]["id"]
        started = time.perf_counter()
        await client.gql(
            "mutation($id: ID!) { prepareDelivery(id: $id) { kpis { toSend } } }",
            {"id": delivery_id},
        )
        print(f"  (prepareDelivery of {n:,} logs: {time.perf_counter() - started:.1f} s)")
        before = rss_kib(server.process.pid)
        largest = before
        cpu = server.cpu_seconds()
        started, rows, size = time.perf_counter(), -1, 0
        async with http.stream(
            "GET",
            f"/deliveries/{delivery_id}/sending-logs.csv",
            headers={"Authorization": f"Bearer {token}"},
        ) as response:
            response.raise_for_status()
            async for chunk in response.aiter_bytes():
                rows += chunk.count(b"\n")
                size += len(chunk)
                largest = max(largest, rss_kib(server.process.pid))
        seconds = time.perf_counter() - started
        used = server.cpu_seconds() - cpu
        assert rows == n, rows
        print(
            f"  GET sending-logs.csv, {rows:,} rows        {seconds:7.2f} s  "
            f"{rows / seconds:>9,.0f} rows/s  (server CPU {used:.1f} s, {size / 1e6:.0f} MB)"
        )
        print(
            f"  server memory (VmRSS) before the export {before / 1024:,.0f} MiB,"
            f" the most seen during it {largest / 1024:,.0f} MiB"
        )
    seconds, used, count = raw_export(database, int(delivery_id))
    assert count == n, count
    print(
        f"  raw sqlite3 SELECT to csv.writer (baseline) {seconds:7.2f} s  "
        f"{count / seconds:>9,.0f} rows/s  (CPU {used:.1f} s)"
    )


def raw_export(database: Path, delivery_id: int) -> tuple[float, float, int]:
    started, cpu = time.perf_counter(), time.process_time()
    conn = sqlite3.connect(database)
    count = 0
    with open(os.devnull, "w") as sink:
        out = csv.writer(sink)
        for row in conn.execute(
            "SELECT id, address, profile_id, status, excluded, failure_type, failure_reason,"
            " message_id, retries, event_at, complained_at, unsubscribed_at FROM sending_log"
            " WHERE delivery_id = ? ORDER BY id",
            [delivery_id],
        ):
            out.writerow(row)
            count += 1
    conn.close()
    return time.perf_counter() - started, time.process_time() - cpu, count


async def json_import(base_url: str, token: str, n: int) -> float:
    profiles = [
        {"email": f"json{i}@example.com", "firstName": f"F{i}", "lastName": f"L{i}"}
        for i in range(n)
    ]
    async with httpx.AsyncClient(base_url=base_url, timeout=600) as http:
        started = time.perf_counter()
        await import_profiles(Client(http, token), profiles)
        return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--json", type=int, default=50_000, help="profiles for importProfiles")
    parser.add_argument("--export", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--synchronous",
        default="FULL",
        choices=("FULL", "NORMAL"),
        help="SQLite's synchronous pragma for both (FULL: the server's default)",
    )
    args = parser.parse_args()
    print(
        f"$ {command_line()}\n{machine()}, Python {sys.version.split()[0]},"
        f" SQLite {sqlite3.sqlite_version} (synchronous={args.synchronous}),"
        f" load average {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        csv_path = folder / "profiles.csv"
        write_file(csv_path, args.n, "p")
        size = csv_path.stat().st_size
        print(f"file: {args.n:,} rows, {size / 1e6:.1f} MB")

        baseline_db = folder / "baseline.sqlite3"
        await apply_migrations(f"sqlite://{baseline_db}")
        for label in ("new profiles", "same (updates)"):
            seconds, used, rows = raw_sqlite(baseline_db, csv_path, args.synchronous)
            assert rows == args.n
            print(
                f"  raw sqlite3 executemany, {label:15} {seconds:7.2f} s"
                f"  {rows / seconds:>9,.0f} rows/s  (CPU {used:.1f} s)"
            )

        server_db = folder / "server.sqlite3"
        env = environment(
            DATABASE_URL=f"sqlite://{server_db}?synchronous={args.synchronous}",
            MTA_URL="capture://",
            PROFILE_IMPORT_MAX_BYTES=str(max(size * 2, 1024 * 1024)),
        )
        token = operator_token(env, folder, ("ADMINISTRATION",))  # the export needs it
        with running_server(env, folder) as server:
            cpu = server.cpu_seconds()
            seconds, report = await upload(server.base_url, token, csv_path)
            used = server.cpu_seconds() - cpu
            assert report["created"] == args.n and report["rejectedCount"] == 0, report
            print(
                f"  POST /profiles/import, new profiles     {seconds:7.2f} s  "
                f"{args.n / seconds:>9,.0f} rows/s  (server CPU {used:.1f} s)"
            )
            print(f"  server peak memory (VmHWM) {peak_kib(server.process.pid) / 1024:,.0f} MiB")
            cpu = server.cpu_seconds()
            seconds, report = await upload(server.base_url, token, csv_path)
            used = server.cpu_seconds() - cpu
            assert report["updated"] == args.n, report
            print(
                f"  POST /profiles/import, same (updates)   {seconds:7.2f} s  "
                f"{args.n / seconds:>9,.0f} rows/s  (server CPU {used:.1f} s)"
            )
            if args.export:
                await export(server, token, args.n, server_db)
            if args.json:
                seconds = await json_import(server.base_url, token, args.json)
                print(
                    f"  importProfiles over JSON, {args.json:,} new   {seconds:7.2f} s  "
                    f"{args.json / seconds:>9,.0f} rows/s"
                )


if __name__ == "__main__":
    asyncio.run(main())
