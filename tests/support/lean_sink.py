"""A lean SMTP sink in a process of its own, for sends of 100,000 messages over SMTP.

A bare asyncio protocol that speaks the SMTP a relay needs (EHLO/HELO, MAIL, RCPT, DATA, RSET,
NOOP, QUIT; no TLS, no AUTH), answers 250 to every message and keeps only its
X-Delivery-Message-Id. aiosmtpd (tests/support/smtp_sink.py) parses and keeps each message and costs
about 0.8 ms of CPU per message, this protocol about a tenth of that (bench/lean_sink.py), and
on two CPUs the sink shares them with the workers it counts for. `lean_sink()` is
a `CountingSink` whose process runs this protocol.
"""

import asyncio
import contextlib
import multiprocessing
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.support.smtp_sink import CountingSink

HEADER = b"X-Delivery-Message-Id:"
END_OF_DATA = b"\r\n.\r\n"
EHLO = b"250-sink.test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-PIPELINING\r\n250 SIZE 33554432\r\n"
# Without PIPELINING (RFC 2920), for benches that compare the two.
EHLO_PLAIN = EHLO.replace(b"250-PIPELINING\r\n", b"")
REPLIES = {
    b"HELO": b"250 sink.test\r\n",
    b"MAIL": b"250 OK\r\n",
    b"RCPT": b"250 OK\r\n",
    b"RSET": b"250 OK\r\n",
    b"NOOP": b"250 OK\r\n",
    b"DATA": b"354 End data with <CR><LF>.<CR><LF>\r\n",
}


class LeanSession(asyncio.Protocol):
    """One SMTP session: `received(message_id)` is called for each message, just before its
    250 is written. Commands are read from the buffer in turn, so a pipelined group (RFC 2920)
    is answered reply by reply, in order. `delay`: each reply leaves that many seconds after
    its command came (a network's round trip), still in order; `pipelining`: EHLO offers it."""

    def __init__(self, received: Any, delay: float = 0.0, pipelining: bool = True) -> None:
        self.received, self.delay = received, delay
        self.ehlo = EHLO if pipelining else EHLO_PLAIN
        self.buffer = b""
        self.in_data = False
        self.transport: Any = None
        self.outbox: deque[tuple[bytes, bytes | None]] = deque()  # delayed replies, in order

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(b"220 sink.test ESMTP lean sink\r\n")

    def reply(self, data: bytes, message_id: bytes | None = None) -> None:
        """Write a reply (b"" closes), now or after the delay; a message counts when its 250
        leaves."""
        if not self.delay:
            self.send(data, message_id)
            return
        self.outbox.append((data, message_id))
        asyncio.get_running_loop().call_later(self.delay, self.send_oldest)

    def send_oldest(self) -> None:
        self.send(*self.outbox.popleft())  # the oldest, whichever timer fires: order is kept

    def send(self, data: bytes, message_id: bytes | None) -> None:
        if self.transport.is_closing():
            return
        if not data:
            self.transport.close()
            return
        if message_id is not None:
            self.received(message_id)
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.buffer:
            if self.in_data:
                # The body ends with CRLF.CRLF; an empty body is just ".\r\n".
                end = 0 if self.buffer.startswith(b".\r\n") else self.buffer.find(END_OF_DATA)
                if end < 0:
                    return
                content, skip = self.buffer[:end], 3 if end == 0 else len(END_OF_DATA)
                self.buffer = self.buffer[end + skip :]
                self.in_data = False
                start = content.find(HEADER)
                message_id = b""
                if start >= 0:
                    start += len(HEADER)
                    message_id = content[start : content.find(b"\r\n", start)].strip()
                self.reply(b"250 OK: queued\r\n", message_id)
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                return
            line, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
            verb = line[:4].upper()
            if verb == b"EHLO":
                self.reply(self.ehlo)
            elif verb == b"QUIT":
                self.reply(b"221 Bye\r\n")
                self.reply(b"")
                self.buffer = b""
                return
            else:
                self.reply(REPLIES.get(verb, b"502 5.5.2 Command not recognized\r\n"))
                self.in_data = verb == b"DATA"


def _serve(
    port: int, total: Any, ready: Any, stop: Any, out: str, delay: float, pipelining: bool
) -> None:
    with contextlib.suppress(ImportError):  # uvloop: a faster sink, so the workers set the pace
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    ids: list[bytes] = []

    def received(message_id: bytes) -> None:
        ids.append(message_id)
        with total.get_lock():
            total.value += 1

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: LeanSession(received, delay, pipelining), "127.0.0.1", port
        )
        ready.set()
        await loop.run_in_executor(None, stop.wait)
        server.close()

    asyncio.run(main())
    Path(out).write_bytes(b"\n".join(ids))


def lean_sink(directory: Path, delay: float = 0.0, pipelining: bool = True) -> "CountingSink":
    """A CountingSink (url(), received, wait_for(), and ids once stopped) whose process runs
    this protocol instead of aiosmtpd (with each reply `delay` seconds late, PIPELINING offered
    or not)."""
    from tests.support.smtp_sink import (
        CountingSink,  # here: the sink's own process needs none of it
    )

    sink = CountingSink(directory)
    context = multiprocessing.get_context("spawn")
    sink._process = context.Process(
        target=_serve,
        args=(sink.port, sink.total, sink._ready, sink._stop, str(sink._out), delay, pipelining),
        daemon=True,
    )
    return sink
