"""Benchmark of the inbound SMTP listener: bounces per second over SMTP, beside the same
messages read in process.

    .venv/bin/python bench/inbound.py                         # 4,000 bounces, 8 SMTP clients
    .venv/bin/python bench/inbound.py --bounces 2000 --clients 4

1. The real server in a subprocess (`python -m server serve`, a temporary SQLite file,
   MTA_URL=capture://, FEEDBACK_MODE=EFS, BOUNCE_DOMAIN and INBOUND_SMTP set): N profiles, one
   delivery to all of them relayed (capture reports nothing), every sending log id read back.
2. One bounce per log, built before any clock starts: half RFC 3464 DSNs as Postfix writes
   them (5.1.1 and 4.2.2 in turn), half the real-world non-DSN bounces of
   tests/support/samples/bounces (qmail, Yahoo, Exchange ...: Mailman's detectors), each to its
   log's
   VERP address.
3. Baselines, in this process: (a) reading every message (`read_report`, the listener's parse:
   DSN, ARF, auto-reply, flufl.bounce); (b) reading it and applying its event with
   `apply_feedback` on a copy of the database, one message per transaction as the listener does:
   the work without SMTP.
4. The same messages sent to the listener by C concurrent SMTP clients (aiosmtplib), each on one
   connection, one transaction per message (MAIL FROM:<>, RCPT TO:<verp>, DATA), as an MTA
   with connection caching sends them. The time runs from the first MAIL to the last answer.
"""

import argparse
import asyncio
import contextlib
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path

import aiosmtplib
import httpx
from harness import (
    ROOT,
    Client,
    ServerProcess,
    command_line,
    environment,
    free_port,
    machine,
    operator_token,
    running_server,
    sending_logs,
    sent_to_all,
)
from tortoise import Tortoise

from models.feedback import Event, apply_feedback
from models.verp import verp_address
from server.db import tortoise_config
from server.inbound.reports import message_key, parse, read_report

DOMAIN = "bounces.bench"
BODY = '<p>Hello</p><a href="https://example.com/offer">Offer</a>'
SAMPLES = sorted((ROOT / "tests" / "support" / "samples" / "bounces").glob("*.txt"))


def dsn(i: int) -> bytes:
    status, diagnostic = (
        ("5.1.1", "550 5.1.1 User unknown") if i % 2 else ("4.2.2", "452 4.2.2 Mailbox full")
    )
    return (
        f"From: MAILER-DAEMON@relay.bench (Mail Delivery System)\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nAuto-Submitted: auto-replied\r\n"
        f"Date: {formatdate()}\r\nMessage-ID: <bench-{i}@relay.bench>\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        f"--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n"
        f"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; relay.bench\r\n"
        f"\r\nFinal-Recipient: rfc822; u{i}@example.com\r\nAction: failed\r\n"
        f"Status: {status}\r\nDiagnostic-Code: smtp; {diagnostic}\r\n\r\n"
        f"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nSubject: Hello\r\n\r\n--B--\r\n"
    ).encode()


def bounce(i: int, mix: str) -> bytes:
    if mix == "dsn" or (mix == "half" and i % 2 == 0):
        return dsn(i)
    raw = (
        SAMPLES[(i // 2 if mix == "half" else i) % len(SAMPLES)]
        .read_bytes()
        .replace(b"\r\n", b"\n")
    )
    # A Message-ID of its own, so that each copy is a bounce of its own, not a duplicate.
    return f"Message-ID: <sample-{i}@bench>\n".encode() + raw.replace(b"\n", b"\r\n")


async def sent_delivery(client: Client, n: int) -> tuple[str, list[int]]:
    delivery_id = await sent_to_all(client, n, "inbound bench", BODY)
    logs = await sending_logs(client, delivery_id, "id")
    return delivery_id, sorted(int(log["id"]) for log in logs)


def read_all(messages: list[bytes]) -> tuple[float, float]:
    """Wall and CPU seconds to read every message."""
    start, cpu = time.perf_counter(), time.process_time()
    for raw in messages:
        message = parse(raw)
        read_report(message)
        message_key(message, raw)
    return time.perf_counter() - start, time.process_time() - cpu


async def read_and_apply(
    copy: Path, messages: list[bytes], log_ids: list[int]
) -> tuple[float, float]:
    await Tortoise.init(config=tortoise_config(f"sqlite://{copy}"))
    try:
        start, cpu = time.perf_counter(), time.process_time()
        for raw, log_id in zip(messages, log_ids, strict=True):
            message = parse(raw)
            report = read_report(message)
            event = Event(
                f"mail-{message_key(message, raw)}-{log_id}",
                "",
                report.type,
                datetime.now(UTC),
                report.reason,
                log_id=log_id,
            )
            result = await apply_feedback([event], datetime.now(UTC))
            assert result.accepted == 1, result
        return time.perf_counter() - start, time.process_time() - cpu
    finally:
        await Tortoise.close_connections()


async def over_smtp(
    port: int, secret: str, messages: list[bytes], log_ids: list[int], clients: int
) -> float:
    queue = list(reversed(list(zip(messages, log_ids, strict=True))))

    async def client() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60)
        async with smtp:
            await smtp.ehlo()
            while queue:
                raw, log_id = queue.pop()
                await smtp.mail("")
                await smtp.rcpt(verp_address(secret, DOMAIN, log_id))
                reply = await smtp.data(raw)
                if reply.code != 250:
                    raise RuntimeError(f"DATA answered {reply}")

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - start


def per_bounce(seconds: float, n: int) -> str:
    return f"{seconds / n * 1e6:6,.0f} us CPU per bounce"


async def measure(
    server: ServerProcess, token: str, db: Path, secret: str, port: int, args: argparse.Namespace
) -> None:
    base = server.base_url
    n = args.bounces
    async with httpx.AsyncClient(base_url=base, timeout=600) as http:
        client = Client(http, token)
        start = time.perf_counter()
        delivery_id, log_ids = await sent_delivery(client, n)
        print(
            f"setup:    {n:,} recipients imported, prepared and relayed"
            f" in {time.perf_counter() - start:.1f} s"
        )
        copy = db.with_name("baseline.sqlite3")
        with (
            contextlib.closing(sqlite3.connect(db)) as src,
            contextlib.closing(sqlite3.connect(copy)) as dst,
        ):
            src.backup(dst)
        messages = [bounce(i, args.mix) for i in range(n)]
        size = sum(map(len, messages)) / n
        print(
            f"bounces:  {n:,}, mix {args.mix} (DSNs; real-world non-DSN bounces from"
            f" {len(SAMPLES)} samples), {size:,.0f} bytes on average"
        )

        parse_s, parse_cpu = read_all(messages)
        print(
            f"baseline (a): {n / parse_s:6,.0f} bounces/s  {per_bounce(parse_cpu, n)}"
            f"  read in process ({parse_s:.2f} s)"
        )
        apply_s, apply_cpu = await read_and_apply(copy, messages, log_ids)
        print(
            f"baseline (b): {n / apply_s:6,.0f} bounces/s  {per_bounce(apply_cpu, n)}"
            f"  read and applied in process, one transaction each ({apply_s:.2f} s)"
        )
        cpu = server.cpu_seconds()
        smtp_s = await over_smtp(port, secret, messages, log_ids, args.clients)
        smtp_cpu = server.cpu_seconds() - cpu
        print(
            f"listener:     {n / smtp_s:6,.0f} bounces/s  {per_bounce(smtp_cpu, n)} (server)"
            f"  over SMTP, {args.clients} clients ({smtp_s:.2f} s) = {apply_s / smtp_s:.2f} x (b)"
        )
        data = await client.gql(
            "query($id: ID!) { delivery(id: $id) { kpis { failed pending sent } } }",
            {"id": delivery_id},
        )
        print(f"kpis after: {data['delivery']['kpis']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--bounces", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=8, help="concurrent SMTP connections")
    parser.add_argument(
        "--mix",
        choices=["half", "dsn", "samples"],
        default="half",
        help="DSNs and real-world non-DSN bounces half and half, DSNs only, or samples only",
    )
    args = parser.parse_args()
    print(
        f"machine: {machine()}, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )
    print(f"command: {command_line()}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-inbound-"))
    try:
        db = tmp / "server.sqlite3"
        secret = uuid.uuid4().hex
        port = free_port()
        env = environment(
            DATABASE_URL=f"sqlite://{db}",
            MTA_URL="capture://",
            FEEDBACK_SECRET=secret,
            FEEDBACK_MODE="EFS",
            BOUNCE_DOMAIN=DOMAIN,
            INBOUND_SMTP=f"127.0.0.1:{port}",
            ENGINE_TICK_SECONDS="0.05",
        )
        token = operator_token(env, tmp)
        with running_server(env, tmp) as server:
            asyncio.run(measure(server, token, db, secret, port, args))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
