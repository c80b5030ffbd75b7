"""SMTP PIPELINING (RFC 2920) over an aiosmtplib session: one write for MAIL FROM, RCPT TO and
DATA, their replies read in order.

aiosmtplib reads one reply per command it wrote and drops bytes that arrive while no command
of its own waits (its protocol says so: pipelined replies "will be lost"). For the length of
one pipelined transaction `Replies` stands in for its protocol on the transport, keeps every
reply in arrival order, and hands the transport back; connection loss, end of file and write
flow control still reach aiosmtplib's protocol, so the client closes as it always does.
"""

import asyncio
from collections import deque
from types import TracebackType

from aiosmtplib import SMTP, SMTPResponse, SMTPServerDisconnected
from aiosmtplib.errors import SMTPReadTimeoutError, SMTPResponseException
from aiosmtplib.protocol import (
    MAX_LINE_LENGTH,
    MAX_RESPONSE_LENGTH,
    PERIOD_REGEX,
    SMTPProtocol,
    normalize_message_line_endings,
)


def offers_pipelining(client: SMTP) -> bool:
    """Whether this session may pipeline: its EHLO was answered and advertised PIPELINING."""
    return not client.is_ehlo_or_helo_needed and client.supports_extension("pipelining")


def dot_stuffed(data: bytes) -> bytes:
    """The message as aiosmtplib's DATA sends it: CRLF line endings, leading dots doubled,
    then the lone dot that ends it."""
    return PERIOD_REGEX.sub(b"..", normalize_message_line_endings(data)) + b".\r\n"


class Replies(asyncio.Protocol):
    """The replies to a pipelined group, in order: `with Replies(client, timeout) as r`."""

    def __init__(self, client: SMTP, timeout: float | None) -> None:
        self.timeout = timeout  # for each reply, as aiosmtplib's for each command
        inner = client.protocol
        if inner is None or inner.transport is None:
            raise SMTPServerDisconnected("Server not connected")
        self.inner: SMTPProtocol = inner
        self.transport = inner.transport
        self.replies: deque[SMTPResponse] = deque()
        self.lines: list[bytes] = []  # of a multi-line reply not yet complete
        self.buffer = bytearray()
        self.error: Exception | None = None
        self.waiter: asyncio.Future[None] | None = None

    def __enter__(self) -> "Replies":
        self.transport.set_protocol(self)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        # Whatever was not read is dropped, as aiosmtplib drops unsolicited bytes.
        self.transport.set_protocol(self.inner)

    def write(self, data: bytes) -> None:
        self.inner.write(data)  # raises SMTPServerDisconnected once the transport closes

    async def next(self) -> SMTPResponse:
        """The next reply in order; raises once the connection is gone and none is left."""
        try:
            async with asyncio.timeout(self.timeout):
                while not self.replies:
                    if self.error is not None:
                        raise self.error
                    self.waiter = asyncio.get_running_loop().create_future()
                    await self.waiter
        except TimeoutError as error:
            raise SMTPReadTimeoutError("Timed out waiting for server response") from error
        return self.replies.popleft()

    # ---- asyncio.Protocol -------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.error is not None:
            return
        self.buffer += data
        while (end := self.buffer.find(b"\n")) >= 0:
            line = bytes(self.buffer[: end + 1])
            del self.buffer[: end + 1]
            if len(line) > MAX_LINE_LENGTH:
                return self._fail(SMTPResponseException(-1, "Response too long"))
            try:
                code = int(line[:3])
            except ValueError:
                text = line.decode("utf-8", errors="ignore")
                return self._fail(SMTPResponseException(-1, f"Malformed SMTP response: {text}"))
            self.lines.append(line[4:].strip(b" \t\r\n"))
            if line[3:4] != b"-":
                message = b"\n".join(self.lines).decode("utf-8", "surrogateescape")
                self.replies.append(SMTPResponse(code, message))
                self.lines = []
        if len(self.buffer) > MAX_RESPONSE_LENGTH:
            return self._fail(SMTPResponseException(-1, "Response too long"))
        self._wake()

    def eof_received(self) -> bool:
        self._fail(SMTPServerDisconnected("Unexpected EOF received"))
        return self.inner.eof_received()  # False: the transport closes

    def connection_lost(self, exc: Exception | None) -> None:
        lost = SMTPServerDisconnected("Connection lost")
        lost.__cause__ = exc
        self._fail(lost)
        self.inner.connection_lost(exc)  # aiosmtplib's client closes

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def _fail(self, error: Exception) -> None:
        self.error = self.error or error
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)
