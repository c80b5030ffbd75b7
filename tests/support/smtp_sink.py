"""A real SMTP server for tests: aiosmtpd in its own thread, recording every message it gets
and answering as the test scripts it (per-address replies, a dropped connection, STARTTLS and
AUTH with a self-signed certificate)."""

import asyncio
import contextlib
import datetime
import email
import ipaddress
import ssl
import threading
from collections import Counter
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from enum import IntEnum
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.server import free_port


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def message_id(self) -> str:
        return str(self.message["X-Delivery-Message-Id"])


@dataclass
class Script:
    """How the sink answers. `once[address]`: replies given to that address's next RCPTs, one
    each, then 250; `always[address]`: the reply to every RCPT; `data[address]`: the reply to
    DATA for a message to it; `drop_at`: the n-th DATA (from 1) is recorded, then the
    connection is closed without an answer (the message in flight); `close_after`: the
    connection is closed just after the n-th DATA was answered 250 (between two messages).
    `pipelining`: EHLO advertises PIPELINING (RFC 2920); `mail[n]`: the reply to the n-th MAIL
    FROM (from 1); `drop_at_mail`, `drop_at_rcpt`: the n-th MAIL FROM or RCPT TO closes the
    connection unanswered (the pipelined group lost); `data_command[address]`: the reply to
    the DATA command itself (not 354) for a message to it."""

    once: dict[str, list[str]] = field(default_factory=dict)
    always: dict[str, str] = field(default_factory=dict)
    data: dict[str, str] = field(default_factory=dict)
    drop_at: int | None = None
    close_after: int | None = None
    pipelining: bool = False
    mail: dict[int, str] = field(default_factory=dict)
    drop_at_mail: int | None = None
    drop_at_rcpt: int | None = None
    data_command: dict[str, str] = field(default_factory=dict)


class _Handler:
    def __init__(self, sink: "SmtpSink") -> None:
        self.sink = sink

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self.sink.lock:
            self.sink.sessions += 1
        if self.sink.script.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        # The client pipelined if its RCPT TO came in with this MAIL FROM, before our reply.
        waiting = bytes(server._reader._buffer)
        action = self.sink.mail(b"RCPT TO:" in waiting.upper())
        if action == "drop":
            server.transport.close()
            await asyncio.sleep(3600)  # cancelled when the connection is lost: never answers
        if action is not None:
            return action
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        reply = self.sink.reply_for(address)
        if reply == "drop":
            server.transport.close()
            await asyncio.sleep(3600)  # cancelled when the connection is lost: never answers
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for address in envelope.rcpt_tos:
            if address in self.sink.script.data:
                return self.sink.script.data[address]
        received = Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        action = self.sink.record(received)
        if action == "drop":
            server.transport.close()
            await asyncio.sleep(3600)  # cancelled when the connection is lost: never answers
        if action == "close":  # runs once the reply is written, before the next command
            asyncio.get_running_loop().call_soon(server.transport.close)
        return "250 OK: queued"


class _Server(SMTP):
    """aiosmtpd's session, with the DATA command itself scripted (it has no hook before 354)."""

    async def smtp_DATA(self, arg: str) -> None:
        sink: SmtpSink = self.event_handler.sink
        if self.envelope is not None and self.session is not None and not arg:
            for address in self.envelope.rcpt_tos:
                if address in sink.script.data_command:
                    await self.push(sink.script.data_command[address])
                    return
        await super().smtp_DATA(arg)


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _Server(self.handler, **self.SMTP_kwargs)


class SmtpSink:
    def __init__(
        self,
        script: Script | None = None,
        *,
        tls: tuple[Path, Path] | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.script = script or Script()
        self.port = free_port()
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.refusals: Counter[str] = Counter()  # address -> RCPTs refused
        self.logins: list[tuple[str, bool]] = []
        self.sessions = 0  # EHLOs answered
        self.rcpts = 0
        self.pipelined: list[bool] = []  # per MAIL FROM: did RCPT TO come with it?
        self._datas = 0
        kwargs: dict[str, Any] = {}
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            kwargs.update(tls_context=context, require_starttls=True)
        if credentials is not None:
            self.credentials = credentials
            kwargs.update(authenticator=self._authenticate, auth_required=True)
        self.controller = _Controller(
            _Handler(self),
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="sink.test",
            **kwargs,
        )

    def url(self, user: str | None = None, password: str | None = None, **options: Any) -> str:
        auth = f"{user}:{password}@" if user is not None else ""
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"smtp://{auth}127.0.0.1:{self.port}" + (f"?{query}" if query else "")

    def __enter__(self) -> "SmtpSink":
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    # ---- called in the sink's thread -------------------------------------------------------

    def reply_for(self, address: str) -> str | None:
        """The scripted reply to this RCPT TO ("drop": none, the connection closes)."""
        with self.lock:
            self.rcpts += 1
            if self.rcpts == self.script.drop_at_rcpt:
                return "drop"
            queued = self.script.once.get(address)
            reply = queued.pop(0) if queued else self.script.always.get(address)
            if reply is not None:
                self.refusals[address] += 1
            return reply

    def mail(self, pipelined: bool) -> str | None:
        """The scripted reply to this MAIL FROM ("drop": none, the connection closes)."""
        with self.lock:
            self.pipelined.append(pipelined)
            n = len(self.pipelined)
            return "drop" if n == self.script.drop_at_mail else self.script.mail.get(n)

    def record(self, received: Received) -> str | None:
        """Keep the message; says whether to drop the connection now or close it after the
        reply."""
        with self.lock:
            self.received.append(received)
            self._datas += 1
            if self._datas == self.script.drop_at:
                return "drop"
            return "close" if self._datas == self.script.close_after else None

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        ok = (data.login.decode(), data.password.decode()) == self.credentials
        with self.lock:
            self.logins.append((data.login.decode(), ok))
        return AuthResult(success=ok, handled=False)

    # ---- read by the test -----------------------------------------------------------------

    def messages(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    async def wait_for(self, count: int, timeout: float = 15) -> list[Received]:
        """Poll until at least `count` messages arrived."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            got = self.messages()
            if len(got) >= count:
                return got
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"the sink got {len(got)} messages, expected {count}")
            await asyncio.sleep(0.05)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and localhost) that is its own CA: (cert, key) files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sink.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "sink-cert.pem", directory / "sink-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


# ---- a sink in its own process, for sends too large to keep in memory -----------------------


class Mode(IntEnum):
    """How the counting sink answers a new connection (CountingSink.set_mode). Leaving UP
    closes every open session, as a relay that restarts would (answers already written are
    flushed first, so a message the sink counted was answered 250)."""

    UP = 0  # a working SMTP server
    DOWN = 1  # the port is closed: connection refused
    REFUSE = 2  # accepts, answers `421` and hangs up (an MTA that is shutting down or overloaded)
    HANG = 3  # accepts and never says a word (past the client's timeout)


HEADER = b"X-Delivery-Message-Id:"
REFUSAL = b"421 4.3.2 sink.test Service not available, closing transmission channel\r\n"


def _run_counting_sink(
    port: int, total: Any, mode: Any, applied: Any, ready: Any, stop: Any, out: str, delay: float
) -> None:
    with contextlib.suppress(ImportError):  # uvloop: a faster sink, so the workers set the pace
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    ids = asyncio.run(_serve_counting_sink(port, total, mode, applied, ready, stop, delay))
    Path(out).write_bytes(b"\n".join(ids))


async def _serve_counting_sink(
    port: int, total: Any, mode: Any, applied: Any, ready: Any, stop: Any, delay: float
) -> list[bytes]:

    loop = asyncio.get_running_loop()
    ids: list[bytes] = []
    sessions: set[asyncio.BaseTransport] = set()

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            if delay:
                await asyncio.sleep(delay)
            # Counted when answered: a message whose answer never left was not taken.
            content: bytes = envelope.original_content
            start = content.find(HEADER)
            if start >= 0:
                start += len(HEADER)
                ids.append(content[start : content.find(b"\r\n", start)].strip())
            with total.get_lock():
                total.value += 1
            return "250 OK: queued"

    handler = Handler()

    class Session(SMTP):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sessions.add(transport)
            super().connection_made(transport)

        def connection_lost(self, error: Exception | None) -> None:
            if self.transport is not None:
                sessions.discard(self.transport)
            super().connection_lost(error)

    class Refuse(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            transport.write(REFUSAL)  # type: ignore[attr-defined]  (uvloop: not a WriteTransport)
            transport.close()

    class Hang(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            sessions.add(transport)

        def connection_lost(self, error: Exception | None) -> None:
            sessions.discard(self.transport)

    def factory() -> asyncio.BaseProtocol:
        current = mode.value
        if current == Mode.REFUSE:
            return Refuse()
        if current == Mode.HANG:
            return Hang()
        return Session(handler, hostname="sink.test", loop=loop)

    async def listen() -> asyncio.AbstractServer:
        return await loop.create_server(factory, "127.0.0.1", port, reuse_address=True)

    server: asyncio.AbstractServer | None = await listen()
    current = Mode.UP
    applied.value = current
    ready.set()
    while not stop.is_set():
        wanted = Mode(mode.value)
        if wanted != current:
            if current == Mode.UP or wanted == Mode.DOWN:
                for transport in list(sessions):
                    transport.close()  # flushes what was already answered, then hangs up
                sessions.clear()
            if wanted == Mode.DOWN and server is not None:
                server.close()
                await server.wait_closed()
                server = None
            elif wanted != Mode.DOWN and server is None:
                server = await listen()
            current = wanted
            applied.value = current
        await asyncio.sleep(0.005)
    if server is not None:
        server.close()
    return ids


class CountingSink:
    """An SMTP server in a process of its own that keeps only each message's delivery message
    id: it counts relays across worker processes (the test's own process stays free) for sends
    of 100,000 messages. `delay` makes every DATA answer that much later: a slow MTA.
    `set_mode` stops it (connection refused), makes it answer `421` or hang on connect, and
    starts it again on the same port (tests/support/faults.py)."""

    def __init__(self, directory: Path, delay: float = 0.0) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.port = free_port()
        self.total = context.Value("q", 0)
        self._mode, self._applied = context.Value("i", Mode.UP), context.Value("i", -1)
        self._ready, self._stop = context.Event(), context.Event()
        self._out = directory / f"sink-{self.port}.ids"
        self._process = context.Process(
            target=_run_counting_sink,
            args=(
                self.port,
                self.total,
                self._mode,
                self._applied,
                self._ready,
                self._stop,
                str(self._out),
                delay,
            ),
            daemon=True,
        )
        self.ids: Counter[str] = Counter()

    def url(self, **options: Any) -> str:
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"smtp://127.0.0.1:{self.port}" + (f"?{query}" if query else "")

    def __enter__(self) -> "CountingSink":
        self._process.start()
        if not self._ready.wait(30):
            raise RuntimeError("the counting sink did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        """Stops the sink and reads what it got into `ids` (message id -> times received)."""
        self._stop.set()
        self._process.join(30)
        if self._out.exists():
            text = self._out.read_text()
            self.ids = Counter(text.split("\n") if text else [])

    @property
    def received(self) -> int:
        return int(self.total.value)

    @property
    def mode(self) -> Mode:
        return Mode(self._applied.value)

    async def set_mode(self, mode: Mode, timeout: float = 5) -> None:
        """Switch, and return once the sink behaves so (the port closed for DOWN)."""
        self._mode.value = mode
        deadline = asyncio.get_running_loop().time() + timeout
        while self._applied.value != mode:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"the counting sink did not switch to {mode.name}")
            await asyncio.sleep(0.005)

    async def wait_for(self, count: int, timeout: float = 60) -> int:
        deadline = asyncio.get_running_loop().time() + timeout
        while (got := self.received) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"the counting sink got {got} messages, expected {count}")
            await asyncio.sleep(0.01)
        return got
