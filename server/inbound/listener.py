"""The inbound SMTP listener (`INBOUND_SMTP=host:port`): bounces and feedback-loop reports that
come back to each message's VERP envelope sender (docs/bounces.md).

It takes mail only for a valid VERP address of BOUNCE_DOMAIN (models/verp.py): anything else is
refused with 550 at RCPT, before any data, and nothing is recorded. A message over
INBOUND_MAX_BYTES gets 552. Each refusal is one warning line that says what was refused and
why. An accepted message is read (server/inbound/reports.py) and becomes one feedback event per
recipient, applied through the same intake as the webhooks (quarantine, the SPEC §4 tables, the
validity period, the deny list). The event id comes from the message (its Message-ID, else its
bytes), so the same bounce delivered twice is one event. The answer to DATA comes after the
commit: if the database cannot take it, the answer is 451 and the sending MTA tries again later.
Concurrent sessions share commits (`GroupCommit`): under load one transaction carries many
bounces, and a bounce that comes alone waits for nothing.
"""

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, AnyStr

from aiosmtpd.smtp import SMTP, Envelope, Session

from models.delivery import utcnow
from models.feedback import MAX_EVENTS, Event, FeedbackResult
from models.reasons import IGNORED_REPORT
from models.verp import read_verp_address
from server.inbound.reports import Report, message_key, parse, read_report
from server.settings import Settings

log = logging.getLogger("server.inbound")

Intake = Callable[[list[Event]], Awaitable[FeedbackResult]]
MAX_RECIPIENTS = 100  # VERP addresses in one transaction (a report names one message)
TIMEOUT_SECONDS = 60.0  # an idle session is closed


def parse_listen(value: str) -> tuple[str, int]:
    """`host:port` (`[::1]:2525` for IPv6); port 0 picks a free one."""
    host, _, port = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"INBOUND_SMTP must be host:port, not {value!r}")
    return host, int(port)


def peer_of(session: Session) -> str:
    peer = session.peer
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer)


_SIMPLE_PATH = re.compile(r"^\s*<([A-Za-z0-9.+=_-]*@[A-Za-z0-9.-]+|)>(.*)$")


class _Smtp(SMTP):
    """aiosmtpd's session, with a log line when it refuses an oversized message itself, and a
    fast path for the plain `<local@domain>` paths bounces come with (aiosmtpd parses every
    path with the email package's RFC 5322 parser: most of the cost of a MAIL or RCPT)."""

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        simple = _SIMPLE_PATH.match(arg)
        if simple is not None:  # as aiosmtpd returns them: "<>" for the null path
            return simple.group(1) or "<>", simple.group(2).strip()
        return super()._getaddr(arg)

    async def push(self, status: AnyStr) -> None:
        text = status if isinstance(status, str) else status.decode("ascii", "replace")
        if text.startswith("552"):
            log.warning(
                "inbound: refused a message from %s: larger than INBOUND_MAX_BYTES (%s bytes)",
                peer_of(self.session) if self.session else "?",
                self.data_size_limit,
            )
        await super().push(status)


@dataclass(frozen=True)
class Outcome:
    """What became of one session's events."""

    new: int = 0
    duplicates: int = 0
    unknown: int = 0


class GroupCommit:
    """Hands the events of concurrent sessions to the intake together. While a transaction
    runs, the events that arrive wait, then all go in the next one (up to MAX_EVENTS): the
    commits, not the sessions, set the pace. Each caller gets its own events' outcome, or the
    exception of the transaction that carried them."""

    def __init__(self, intake: Intake) -> None:
        self.intake = intake
        self.waiting: list[tuple[list[Event], asyncio.Future[Outcome]]] = []
        self.draining: asyncio.Task[None] | None = None

    async def __call__(self, events: list[Event]) -> Outcome:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self.waiting.append((events, future))
        if self.draining is None:
            self.draining = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self.waiting:
                batch: list[tuple[list[Event], asyncio.Future[Outcome]]] = []
                size = 0
                while self.waiting and (not batch or size + len(self.waiting[0][0]) <= MAX_EVENTS):
                    events, future = self.waiting.pop(0)
                    batch.append((events, future))
                    size += len(events)
                try:
                    result = await self.intake([e for events, _ in batch for e in events])
                except Exception as error:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                told: set[str] = set()  # a bounce sent twice at once is new once
                for events, future in batch:
                    ids = {e.event_id for e in events}
                    new = ids & result.recorded - told
                    told |= new
                    unknown = ids & result.unmatched
                    outcome = Outcome(len(new), len(ids - new - unknown), len(unknown))
                    if not future.done():
                        future.set_result(outcome)
        finally:
            self.draining = None


class Handler:
    """aiosmtpd's hooks: check each recipient, then read and apply the message."""

    def __init__(self, key: str, domain: str, intake: Intake) -> None:
        self.key, self.domain = key, domain
        self.commit = GroupCommit(intake)

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if read_verp_address(self.key, self.domain, address) is None:
            log.warning(
                "inbound: refused RCPT TO:<%s> from %s: not a bounce address of ours",
                address[:200],
                peer_of(session),
            )
            return "550 5.1.1 No such mailbox here"
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            log.warning("inbound: refused a recipient from %s: too many", peer_of(session))
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        report, key = read(raw)
        now = utcnow()
        log_ids = sorted(
            {
                log_id
                for address in envelope.rcpt_tos
                if (log_id := read_verp_address(self.key, self.domain, address)) is not None
            }
        )
        events = [
            Event(f"mail-{key}-{log_id}", "", report.type, now, report.reason, log_id=log_id)
            for log_id in log_ids
        ]
        try:
            outcome = await self.commit(events)
        except Exception:
            log.exception(
                "inbound: a %s report from %s could not be applied", report.kind, peer_of(session)
            )
            return "451 4.3.0 Cannot record this report now, try again later"
        log.info(
            "inbound: %s from %s for sending log(s) %s: %s%s (%d new, %d duplicate, %d unknown)",
            report.kind,
            peer_of(session),
            ",".join(map(str, log_ids)),
            report.type.value,
            f" {report.reason.value}" if report.reason else "",
            outcome.new,
            outcome.duplicates,
            outcome.unknown,
        )
        return "250 OK: report recorded"


def read(raw: bytes) -> tuple[Report, str]:
    """The report a message is, and its idempotency key. A message that cannot be read at
    all is recorded as ignored (and logged), never a bounce."""
    try:
        message = parse(raw)
        return read_report(message), message_key(message, raw)
    except Exception:
        log.exception("inbound: a message could not be read; recorded as ignored")
        return Report.bounce("unreadable", IGNORED_REPORT), message_key(parse(b""), raw)


class InboundListener:
    def __init__(self, settings: Settings, intake: Intake) -> None:
        if not settings.inbound_smtp:
            raise ValueError("the inbound listener needs INBOUND_SMTP=host:port")
        if not settings.bounce_domain:
            raise ValueError(
                "INBOUND_SMTP needs BOUNCE_DOMAIN: the listener takes mail only for the VERP"
                " addresses of that domain"
            )
        self.host, self.port = parse_listen(settings.inbound_smtp)
        self.domain, self.max_bytes = settings.bounce_domain, settings.inbound_max_bytes
        self.handler = Handler(settings.feedback_secret, settings.bounce_domain, intake)
        self.server: asyncio.Server | None = None

    def _session(self) -> SMTP:
        return _Smtp(
            self.handler,
            data_size_limit=self.max_bytes,
            hostname=self.domain,
            ident="delivery-server inbound",
            timeout=TIMEOUT_SECONDS,
        )

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(self._session, self.host, self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        log.info(
            "inbound SMTP listening on %s:%s for bounces and reports to bounces+...@%s",
            self.host,
            self.port,
            self.domain,
        )

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            # Python 3.12+ waits for open sessions too: give them a moment, not their timeout.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.server.wait_closed(), 5)
            self.server = None
