"""The CPU a test's SMTP sink costs per message: aiosmtpd's (tests/support/smtp_sink.py
CountingSink,
the baseline) against the lean protocol of tests/support/lean_sink.py, measured in the same run.

    .venv/bin/python bench/lean_sink.py --messages 20000 --connections 4

Each sink runs in its own process. The same client load goes to each, one after the other and
then again (ABAB, so that a change of load on a shared machine shows): `connections` aiosmtplib
connections, each sending its share of pre-built messages (the size and shape of the server's),
one transaction per message. Reported: the sink process's CPU seconds (/proc) per 1,000
messages, and wall time. Both sinks must have counted every message id exactly once.
"""

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiosmtplib
from harness import command_line, cpu_seconds, machine

from tests.support.lean_sink import lean_sink
from tests.support.smtp_sink import CountingSink

BODY = ("<p>Hello F1, our spring offer is here: https://example.com/offer</p>\r\n" * 30).encode()


def message(i: int) -> bytes:
    return (
        b"From: Bench <bench@example.org>\r\nTo: u%d@example.com\r\nSubject: Hello\r\n"
        b"X-Delivery-Message-Id: m-%08d\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n" % (i, i)
    ) + BODY


async def send(port: int, messages: list[bytes], connections: int) -> float:
    async def one_connection(share: list[bytes]) -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await smtp.connect()
        for i, data in enumerate(share):
            await smtp.sendmail("bench@example.org", [f"u{i}@example.com"], data)
        await smtp.quit()

    started = time.perf_counter()
    await asyncio.gather(*(one_connection(messages[c::connections]) for c in range(connections)))
    return time.perf_counter() - started


async def measure(kind: str, messages: list[bytes], connections: int, folder: Path) -> Any:
    sink = lean_sink(folder) if kind == "lean" else CountingSink(folder)
    with sink:
        pid = sink._process.pid
        assert pid is not None
        before = cpu_seconds(pid)
        wall = await send(sink.port, messages, connections)
        await sink.wait_for(len(messages), timeout=60)
        cpu = cpu_seconds(pid) - before
    assert len(sink.ids) == len(messages) and set(sink.ids.values()) == {1}, kind
    return cpu, wall


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    messages = [message(i) for i in range(args.messages)]
    print(f"{command_line()}\n{machine()}, {args.messages} messages of {len(messages[0])} bytes,")
    print(f"{args.connections} client connections; sink CPU s per 1,000 messages, wall s")
    with tempfile.TemporaryDirectory() as folder:
        for kind in ("aiosmtpd", "lean", "aiosmtpd", "lean"):
            cpu, wall = await measure(kind, messages, args.connections, Path(folder))
            per_1k = 1000 * cpu / args.messages
            print(f"  {kind:9s} sink CPU {per_1k:6.3f} s per 1,000 messages, wall {wall:6.1f} s")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
