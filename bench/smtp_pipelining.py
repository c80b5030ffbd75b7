"""Benchmark of SMTP PIPELINING (RFC 2920) against an MTA across a network: messages/s with and
without it, the same sink offering it or not.

    .venv/bin/python bench/smtp_pipelining.py --messages 5000 --delay-ms 2 --runs 2

The sink is tests/support/lean_sink.py in its own process, each reply written `--delay-ms`
after its command came (a LAN's round trip; a pipelined group's three replies leave together).
Each run is bench/smtp_relay.py's server run (`python -m server serve`, SQLite, confirmSend ->
the sink has all N messages), once with PIPELINING offered and once without, in turns (the
order swapped each run), a fresh sink for each.
"""

import argparse
import asyncio
import os
import platform
import sys
import tempfile
from pathlib import Path

import aiosmtplib
from harness import command_line, machine
from smtp_relay import Sink, server_run

from tests.support.lean_sink import lean_sink


async def one(n: int, pool: int, batch: int, delay: float, pipelining: bool) -> str:
    with (
        tempfile.TemporaryDirectory(prefix="bench-pipe-") as tmp,
        lean_sink(Path(tmp), delay=delay, pipelining=pipelining) as lean,
    ):
        sink = Sink(lean.port, lean.total, lean._process)
        run = await server_run(sink, n, pool, batch, "LEGACY")
    rate = n / run.relay_s
    return (
        f"pipelining={'on ' if pipelining else 'off'} pool={pool}: {n} messages in"
        f" {run.relay_s:.2f} s = {rate:,.0f} msgs/s (server CPU {run.server_cpu_s:.2f} s ="
        f" {1e6 * run.server_cpu_s / n:.0f} us/message; sink CPU {run.sink_cpu_s:.2f} s)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--pool", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--delay-ms", type=float, default=2.0, help="each reply this late")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    print(
        f"machine: {machine()}, Python {platform.python_version()},"
        f" aiosmtplib {aiosmtplib.__version__}"
    )
    print(f"command: {command_line()}")
    print(f"sink: lean, each reply {args.delay_ms} ms late; load {os.getloadavg()[0]:.2f}")
    for i in range(args.runs):
        for pipelining in (True, False) if i % 2 == 0 else (False, True):
            line = await one(
                args.messages, args.pool, args.batch_size, args.delay_ms / 1000, pipelining
            )
            print(f"run {i + 1}: {line}; load {os.getloadavg()[0]:.2f}")
            sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
