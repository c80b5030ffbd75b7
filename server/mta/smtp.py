"""`smtp://`: relays each message over SMTP to a real MTA (docs/smtp.md).

    smtp://[user:password@]host[:port][?starttls=auto|require|off&pool=4&rate=0&timeout=30
                                        &cafile=/path/ca.pem&verify=true&helo=client.example]

One SMTP transaction per recipient (MAIL FROM, RCPT TO, DATA), so that each reply is that
recipient's answer. Transactions run over a pool of connections opened on first use and kept
across batches; a batch is split across the pool and its shares are sent concurrently, under
one token bucket. A reply is the message's fate: 2xx accepted; 4xx refused for now (a soft
bounce, which the engine retries on the product's plan); 5xx refused for good (a hard bounce);
the reason comes from the RFC 3463 table `REASONS` below.

A connection that fails hands back the message in hand and the rest of its share as `unsent`
(the engine claims them again): what the MTA answered 250 is never sent again, and the only
message that can arrive twice is the one whose DATA was sent but not answered. A connection
closed between two transactions is re-opened once at MAIL FROM, which sends nothing twice.
Each failure is transient (the engine waits for the MTA) or permanent (the delivery fails):
see `SessionError` and docs/smtp.md. Before each transaction the share asks the batch's gate
(`Handover.may_send`): a stop or a pause ends the share there.
"""

import asyncio
import contextlib
import logging
import re
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated
from urllib.parse import parse_qsl, unquote, urlsplit

from aiosmtplib import (
    SMTP,
    SMTPAuthenticationError,
    SMTPConnectError,
    SMTPDataError,
    SMTPException,
    SMTPRecipientRefused,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
    SMTPStatus,
)
from annotated_types import Ge, Gt, Le
from pydantic import (
    BaseModel,
    ConfigDict,
    FilePath,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic import Field as PydanticField

from models.enums import Channel, FailureReason, FeedbackType
from models.proofs import ProofMessage, ProofOutcome, Relayed
from models.reasons import Verdict, check_table
from models.relay import Claimed
from models.template import field_values
from server.mta.base import Content, FeedbackSink, Handover, RelayError
from server.mta.compose import Compiled, Composer
from server.mta.pipelining import Replies, dot_stuffed, offers_pipelining
from server.settings import Settings

log = logging.getLogger(__name__)
URL_FORM = "smtp://[user:password@]host[:port][?option=value&...]"


# ---- SMTP replies -> SPEC §4 reasons ---------------------------------------------------------

FR = FailureReason
# RFC 3463 enhanced status codes, looked up as "class.subject.detail", then "class.subject",
# then "class". The reply's basic code sets the class: 4xx soft (retried), 5xx hard. Each 5xx
# reason is one SPEC §4 allows for a hard failure, each 4xx one it allows for a soft failure.
REASONS: dict[str, FailureReason] = {
    # --- 4xx: refused for now (soft bounce, retried on the plan) ---
    "4": FR.UNDEFINED,
    "4.1.2": FR.INVALID_DOMAIN,  # bad destination system address (the domain)
    "4.2.1": FR.ACCOUNT_DISABLED,  # mailbox disabled, not accepting messages
    "4.2.2": FR.MAILBOX_FULL,  # mailbox full
    "4.3.2": FR.UNREACHABLE,  # system not accepting network messages
    "4.4": FR.UNREACHABLE,  # network and routing: no answer, bad connection, congestion...
    "4.7": FR.REFUSED,  # security or policy: greylisting, rate limits, reputation
    # --- 5xx: refused for good (hard bounce: the address goes into quarantine) ---
    "5": FR.REFUSED,
    "5.1": FR.USER_UNKNOWN,  # bad mailbox: unknown (5.1.1), bad syntax (5.1.3), moved (5.1.6)
    "5.1.2": FR.UNREACHABLE,  # bad destination domain (INVALID_DOMAIN is soft-only in SPEC §4)
    "5.1.7": FR.REFUSED,  # our sender's mailbox syntax
    "5.1.8": FR.REFUSED,  # our sender's domain
    "5.1.10": FR.UNREACHABLE,  # the domain accepts no mail (null MX, RFC 7505)
    "5.2.1": FR.ACCOUNT_DISABLED,  # mailbox disabled
    "5.2.2": FR.REFUSED,  # mailbox full, reported as permanent (MAILBOX_FULL is soft-only)
    "5.4": FR.UNREACHABLE,  # network and routing: unable to route, loop, expired
    "5.7": FR.REFUSED,  # security or policy: not authorised, blocked, spam, DMARC...
}
# Replies without an enhanced status code: the basic code alone (RFC 5321 §4.2.3).
BASIC_REASONS: dict[int, FailureReason] = {
    551: FR.USER_UNKNOWN,  # user not local
    553: FR.USER_UNKNOWN,  # mailbox name not allowed
}
check_table(
    "SMTP replies (REASONS, server/mta/smtp.py)",
    ((k, Verdict.HARD if k[0] == "5" else Verdict.SOFT, r) for k, r in REASONS.items()),
)
check_table(
    "SMTP replies (BASIC_REASONS, server/mta/smtp.py)",
    ((k, Verdict.HARD if k >= 500 else Verdict.SOFT, r) for k, r in BASIC_REASONS.items()),
)
# Replies about the session, not the recipient: the connection stops and the message is
# handed back unsent (421: the server is closing; 503: out of sequence; 530: auth required).
SESSION_CODES = frozenset({421, 503, 530})
# Of those, and of the replies to MAIL FROM, the ones that waiting will not cure: the delivery
# fails (530: we were expected to authenticate; other 5xx to MAIL FROM: our sender refused).
TRANSIENT_SESSION_CODES = frozenset({421, 503})
_ENHANCED = re.compile(r"\s*[245]\.(\d{1,3})\.(\d{1,3})(?!\d)")


def classify(code: int, message: str) -> tuple[FeedbackType, FailureReason]:
    """The feedback for a refusal: its type from the reply's class, its reason from the
    enhanced status code at the start of the reply text (or the basic code)."""
    hard = 500 <= code <= 599
    kind = FeedbackType.HARD_BOUNCE if hard else FeedbackType.SOFT_BOUNCE
    cls = "5" if hard else "4"
    enhanced = _ENHANCED.match(message)
    if enhanced:
        subject, detail = enhanced.groups()
        for key in (f"{cls}.{subject}.{detail}", f"{cls}.{subject}"):
            if key in REASONS:
                return kind, REASONS[key]
    elif code in BASIC_REASONS:
        return kind, BASIC_REASONS[code]
    return kind, REASONS[cls]


# ---- Configuration from MTA_URL ---------------------------------------------------------------


class StartTls(StrEnum):
    AUTO = "auto"  # upgrade when the server offers STARTTLS
    REQUIRE = "require"  # no STARTTLS, no sending (the default with a user)
    OFF = "off"  # never (a local relay on a trusted network)


@dataclass(frozen=True)
class Complaint:
    """What an option's error says about a bad value (pydantic's own messages name types and
    bounds in its words; an operator reading MTA_URL's error wants ours)."""

    text: str


HOSTNAME = r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$"
HOST = "must be a host name"
SECONDS = "must be a number of seconds, more than 0 and at most 3600"


class SmtpConfig(BaseModel):
    """MTA_URL, validated: the URL's parts, and its query-string options (each option's bounds
    and the sentence that refuses a bad value sit on its field)."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    host: str
    port: int = 25
    user: str | None = None
    password: str | None = PydanticField(default=None, repr=False)
    starttls: Annotated[StartTls, Complaint("must be auto, require or off")] = StartTls.AUTO
    pool: Annotated[int, Ge(1), Le(64), Complaint("must be a whole number from 1 to 64")] = 4
    # messages per second across the pool; 0 = no limit
    rate: Annotated[
        float, Ge(0), Le(1_000_000), Complaint("must be messages per second, 0 (no limit) or more")
    ] = 0.0
    # seconds, for connecting and for each command
    timeout: Annotated[
        float,
        Gt(0),
        Le(3600),
        Complaint("must be a number of seconds, more than 0 and at most 3600"),
    ] = 30.0
    cafile: Annotated[FilePath | None, Complaint("is not a readable file")] = None
    verify: Annotated[bool, Complaint("must be true or false")] = True
    # the name given in EHLO (default: this host's FQDN)
    helo: Annotated[
        str | None, PydanticField(pattern=HOSTNAME), Complaint("must be a host name")
    ] = None

    @field_validator("starttls", mode="before")
    @classmethod
    def _any_case(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("pool", mode="before")
    @classmethod
    def _digits(cls, value: object) -> object:
        """A pool is counted in connections: "4", not "4.0" or " 4"."""
        if isinstance(value, str) and not value.isdigit():
            raise ValueError("not a whole number")
        return value

    @model_validator(mode="after")
    def _tls_options(self) -> "SmtpConfig":
        if self.starttls is StartTls.OFF and (self.cafile or not self.verify):
            raise ValueError("cafile and verify are for TLS, and starttls=off")
        if self.cafile and not self.verify:
            raise ValueError("give cafile (to trust a certificate) or verify=false")
        return self

    @classmethod
    def options(cls) -> list[str]:
        return [name for name in cls.model_fields if name not in URL_PARTS]

    @classmethod
    def from_url(cls, url: str) -> "SmtpConfig":
        """Parse and check MTA_URL. Error messages never repeat the URL (it may hold a
        password): they name the part that is wrong."""
        parts = urlsplit(url)
        if parts.scheme.lower() != "smtp":
            raise ValueError(f"MTA_URL must look like {URL_FORM}")
        if parts.path not in ("", "/") or parts.fragment:
            raise ValueError(f"MTA_URL takes no path or fragment: {URL_FORM}")
        if not parts.hostname:
            raise ValueError(f"MTA_URL has no host: {URL_FORM}")
        try:
            port = parts.port or 25
        except ValueError:
            raise ValueError("MTA_URL: the port must be a number from 1 to 65535") from None
        user = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        if password is not None and not user:
            raise ValueError("MTA_URL has a password but no user: smtp://user:password@host")
        if user and not password:
            raise ValueError("MTA_URL has a user but no password: smtp://user:password@host")
        raw: dict[str, str] = {}
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            key = name.lower()
            if key not in cls.options():
                known = ", ".join(cls.options())
                raise ValueError(f"MTA_URL: unknown smtp option {name!r} (known: {known})")
            if key in raw:
                raise ValueError(f"MTA_URL: smtp option {key!r} is given twice")
            raw[key] = value
        # A password never travels in clear by default.
        raw.setdefault("starttls", StartTls.REQUIRE if user else StartTls.AUTO)
        try:
            return cls(host=parts.hostname, port=port, user=user, password=password, **raw)
        except ValidationError as error:
            raise ValueError(_option_error(error, raw)) from None

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def describe(self) -> str:
        """For logs: everything but the password."""
        user = f"{self.user}@" if self.user else ""
        return (
            f"smtp://{user}{self.where} (starttls={self.starttls}, pool={self.pool},"
            f" rate={self.rate or 'unlimited'}, timeout={self.timeout})"
        )

    def tls_context(self) -> ssl.SSLContext | None:
        if self.starttls is StartTls.OFF:
            return None
        try:
            context = ssl.create_default_context(cafile=self.cafile)
        except (OSError, ssl.SSLError) as error:
            raise ValueError(f"MTA_URL: smtp option cafile cannot be loaded: {error}") from None
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


URL_PARTS = ("host", "port", "user", "password")


def _option_error(error: ValidationError, raw: dict[str, str]) -> str:
    """The first problem, in the words of the option's Complaint; never the URL itself."""
    first = error.errors()[0]
    name = str(first["loc"][0]) if first["loc"] else ""
    if name in raw:
        field = SmtpConfig.model_fields[name]
        complaint = next((m.text for m in field.metadata if isinstance(m, Complaint)), "is wrong")
        return f"MTA_URL: smtp option {name}={raw[name]!r} {complaint}"
    cause = first.get("ctx", {}).get("error")
    return f"MTA_URL: {cause if cause is not None else first['msg']}"


# ---- Rate limit -------------------------------------------------------------------------------


class TokenBucket:
    """`rate` messages per second across the pool, with bursts of up to one second's worth.
    A caller that finds the bucket empty books the next token and sleeps until it is due, so
    concurrent senders are served in turn at the rate."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.clock = rate, clock
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.at = clock()

    def reserve(self) -> float:
        """Take a token; returns how long to wait before using it."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate) - 1
        self.at = now
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    async def take(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


# ---- Connections ------------------------------------------------------------------------------


class SessionError(RelayError):
    """The connection cannot go on: the message in hand and the rest of the share are unsent.
    Its text is what an operator reads in the delivery's failure message: never a password.
    Transient unless `permanent` (see RelayError)."""


def _reply(error: BaseException) -> str:
    if isinstance(error, SMTPResponseException):
        return f"{error.code} {error.message}"
    return str(error) or type(error).__name__


def _chain(error: BaseException) -> list[BaseException]:
    """The error and what caused it (aiosmtplib wraps socket and TLS errors)."""
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _connect_failure(config: "SmtpConfig", error: BaseException) -> SessionError:
    """Why a connection could not be opened, transient or permanent (docs/smtp.md)."""
    where = config.where
    chain = _chain(error)
    if isinstance(error, SMTPAuthenticationError):
        permanent = error.code >= 500
        return SessionError(
            f"SMTP {where}: authentication as {config.user!r} failed: {_reply(error)}",
            cause="authentication refused" if permanent else "authentication unavailable for now",
            permanent=permanent,
        )
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain):
        return SessionError(
            f"SMTP {where}: cannot connect: {_reply(error)}",
            cause="the MTA's certificate is not trusted",
            permanent=True,
        )
    if isinstance(error, SMTPResponseException):  # the greeting, EHLO or STARTTLS refused
        busy = error.code == 421 or error.code < 500
        return SessionError(
            f"SMTP {where}: cannot connect: {_reply(error)}",
            cause=f"the MTA {'is busy' if busy else 'refused us'} ({error.code})",
            permanent=not busy,
        )
    timeout = any(isinstance(e, TimeoutError) for e in chain)
    if isinstance(error, SMTPException) and not isinstance(
        error, SMTPServerDisconnected | SMTPConnectError | TimeoutError
    ):  # aiosmtplib's own checks: STARTTLS or AUTH required but not offered
        offered = "STARTTLS" if "STARTTLS" in str(error) else "authentication"
        return SessionError(
            f"SMTP {where}: cannot connect: {_reply(error)}",
            cause=f"{offered} required but not offered by the MTA",
            permanent=True,
        )
    if timeout:
        cause = "timed out"
    elif any(isinstance(e, socket.gaierror) for e in chain):
        cause = "the MTA's host name does not resolve"
    elif any(isinstance(e, ConnectionRefusedError) for e in chain):
        cause = "connection refused"
    elif any(isinstance(e, ssl.SSLError) for e in chain):
        cause = "TLS handshake failed"
    elif any(isinstance(e, SMTPServerDisconnected | ConnectionError) for e in chain):
        cause = "connection lost"
    else:
        cause = "cannot connect"
    return SessionError(f"SMTP {where}: cannot connect: {_reply(error)}", cause=cause)


def _session_reply(config: "SmtpConfig", what: str, error: SMTPResponseException) -> SessionError:
    """A reply that ends the session: 421 and other 4xx are transient, 5xx permanent but 503."""
    transient = error.code in TRANSIENT_SESSION_CODES or error.code < 500
    if error.code == 421:
        cause = "the MTA is busy (421)"
    elif transient:
        cause = f"the MTA ended the session ({error.code})"
    elif error.code == 530:
        cause = "the MTA requires authentication"
    else:
        cause = f"the MTA refused our sender ({error.code})"
    text = f"SMTP {config.where}: the MTA {what}: {_reply(error)}"
    return SessionError(text, cause=cause, permanent=not transient)


def _lost(config: "SmtpConfig", error: BaseException) -> SessionError:
    timeout = any(isinstance(e, TimeoutError) for e in _chain(error))
    return SessionError(
        f"SMTP {config.where}: connection lost: {_reply(error)}",
        cause="timed out" if timeout else "connection lost",
    )


Refusal = tuple[int, str]

# An address made of dot-atoms alone (RFC 5322: no quotes, comments, brackets or spaces), as
# nearly every recipient's and VERP sender's is: aiosmtplib's MAIL and RCPT would parse it with
# email.utils.parseaddr (about 11 us each, a tenth of a relay's CPU) only to give it back as it
# is, between angle brackets (tests/rules/test_mta_rules.py checks that they do). Such an
# address goes on the command line as it is; any other goes through aiosmtplib's own parser.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
DOT_ATOM_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\Z")


async def _mail_from(client: SMTP, sender: str) -> None:
    """aiosmtplib's `client.mail(sender)`, without its address parser for a dot-atom address
    on a session that has said EHLO already: the same command, the same refusal."""
    if client.is_ehlo_or_helo_needed or not DOT_ATOM_ADDRESS.match(sender):
        await client.mail(sender)
        return
    response = await client.execute_command(b"MAIL", b"FROM:<" + sender.encode("ascii") + b">")
    if response.code != SMTPStatus.completed:
        raise SMTPSenderRefused(response.code, response.message, sender)


async def _rcpt_to(client: SMTP, recipient: str) -> None:
    """aiosmtplib's `client.rcpt(recipient)`, likewise."""
    if client.is_ehlo_or_helo_needed or not DOT_ATOM_ADDRESS.match(recipient):
        await client.rcpt(recipient)
        return
    response = await client.execute_command(b"RCPT", b"TO:<" + recipient.encode("ascii") + b">")
    if response.code not in (SMTPStatus.completed, SMTPStatus.will_forward):
        raise SMTPRecipientRefused(response.code, response.message, recipient)


class _Connection:
    """One pooled SMTP connection, opened on demand."""

    def __init__(self, config: SmtpConfig, tls: ssl.SSLContext | None) -> None:
        self.config, self.tls = config, tls
        self.client: SMTP | None = None

    @property
    def open(self) -> bool:
        return self.client is not None and self.client.is_connected

    async def connect(self) -> SMTP:
        self.close()
        c = self.config
        client = SMTP(
            hostname=c.host,
            port=c.port,
            username=c.user,
            password=c.password,
            local_hostname=c.helo,
            timeout=c.timeout,
            start_tls={StartTls.AUTO: None, StartTls.REQUIRE: True, StartTls.OFF: False}[
                c.starttls
            ],
            tls_context=self.tls,
        )
        try:
            await client.connect()
        except (SMTPException, OSError) as error:  # ssl.SSLError is an OSError
            client.close()
            raise _connect_failure(c, error) from None
        self.client = client
        return client

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    async def quit(self) -> None:
        if self.open:
            assert self.client is not None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.client.quit(), timeout=2)
        self.close()

    async def _mail(self, sender: str, attempts: int = 2) -> SMTP:
        """MAIL FROM, on a fresh connection if the pooled one turns out to be closed: nothing
        of this message has been sent yet, so that retry can never duplicate it."""
        for attempt in range(3 - attempts, 3):
            client = self.client if self.open else None
            client = client or await self.connect()
            try:
                await _mail_from(client, sender)
                return client
            except SMTPServerDisconnected as error:
                self.close()
                if attempt == 2:
                    raise _lost(self.config, error) from None
            except SMTPResponseException as error:
                self.close()
                what = (
                    "ended the session"
                    if error.code in SESSION_CODES
                    else f"refused the sender <{sender}>"
                )
                raise _session_reply(self.config, what, error) from None
            except (SMTPException, OSError) as error:  # a timeout, an EHLO cut short ...
                self.close()
                raise _lost(self.config, error) from None
        raise AssertionError("unreachable")

    async def send(self, sender: str, recipient: str, data: bytes) -> Refusal | None:
        """One transaction: None if the MTA took the message, else its refusal (code, text).
        Raises SessionError when the session cannot go on. On a session whose EHLO offered
        PIPELINING, MAIL FROM, RCPT TO and DATA go out in one write (RFC 2920)."""
        attempts = 2
        client = self.client if self.open and self.client else await self.connect()
        if (
            offers_pipelining(client)
            and DOT_ATOM_ADDRESS.match(sender)
            and DOT_ATOM_ADDRESS.match(recipient)
        ):
            outcome = await self._pipelined(client, sender, recipient, data)
            if not isinstance(outcome, _Again):
                return outcome
            attempts = 1  # that was the pooled connection's try; now a fresh one's
        client = await self._mail(sender, attempts)
        try:
            await _rcpt_to(client, recipient)
            await client.data(data)
            return None
        except (SMTPRecipientRefused, SMTPDataError) as error:
            if error.code in SESSION_CODES:
                self.close()
                raise _session_reply(self.config, "ended the session", error) from None
            refusal = (error.code, error.message)
        except (SMTPException, OSError) as error:
            self.close()
            raise _lost(self.config, error) from None
        try:
            await client.rset()
        except (SMTPException, OSError):
            self.close()  # the refusal stands; the next message opens a new connection
        return refusal

    async def _pipelined(
        self, client: SMTP, sender: str, recipient: str, data: bytes
    ) -> "Refusal | _Again | None":
        """`send`'s transaction in one group: each reply classified as `send` and `_mail` do
        its command's. The body goes only after DATA's 354. `_AGAIN` if the connection was
        gone before MAIL FROM's reply: no body was sent, so a fresh one may carry the message.
        After a refused RCPT, DATA's reply (an error: no valid recipient) is read, then RSET."""
        try:
            with Replies(client, self.config.timeout) as replies:
                try:
                    replies.write(
                        b"MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n"
                        % (sender.encode("ascii"), recipient.encode("ascii"))
                    )
                    mail = await replies.next()
                except SMTPServerDisconnected:
                    self.close()
                    return _AGAIN
                if mail.code != SMTPStatus.completed:
                    self.close()
                    what = (
                        "ended the session"
                        if mail.code in SESSION_CODES
                        else f"refused the sender <{sender}>"
                    )
                    error = SMTPResponseException(mail.code, mail.message)
                    raise _session_reply(self.config, what, error)
                rcpt = await replies.next()
                if rcpt.code not in (SMTPStatus.completed, SMTPStatus.will_forward):
                    if rcpt.code in SESSION_CODES:
                        self.close()
                        error = SMTPResponseException(rcpt.code, rcpt.message)
                        raise _session_reply(self.config, "ended the session", error)
                    refusal = (rcpt.code, rcpt.message)
                    try:
                        reply = await replies.next()  # DATA's
                    except (SMTPException, OSError):
                        self.close()  # the refusal stands, as when RSET fails
                        return refusal
                    if reply.code in (SMTPStatus.start_input, SMTPStatus.domain_unavailable):
                        self.close()  # a server that wants a body for no one, or is leaving
                        return refusal
                else:
                    reply = await replies.next()  # DATA's
                    if reply.code == SMTPStatus.start_input:
                        replies.write(dot_stuffed(data))
                        reply = await replies.next()  # the message's
                        if reply.code == SMTPStatus.completed:
                            return None
                    if reply.code in SESSION_CODES:
                        self.close()
                        error = SMTPResponseException(reply.code, reply.message)
                        raise _session_reply(self.config, "ended the session", error)
                    refusal = (reply.code, reply.message)
        except (SMTPException, OSError) as error:
            self.close()
            raise _lost(self.config, error) from None
        except asyncio.CancelledError:
            self.close()  # replies may still be on their way: none may meet the next command
            raise
        try:
            await client.rset()
        except (SMTPException, OSError):
            self.close()  # the refusal stands; the next message opens a new connection
        return refusal


class _Again:
    """`_Connection._pipelined`'s word for: the pooled connection was gone, try a fresh one."""


_AGAIN = _Again()


# ---- The adapter ------------------------------------------------------------------------------


def _sendable(address: str) -> bool:
    """What RCPT TO can carry without SMTPUTF8 (preparation already refuses the rest)."""
    return address.isascii() and "@" in address and not any(c.isspace() for c in address)


class SmtpMta:
    def __init__(self, config: SmtpConfig, composer: Composer) -> None:
        self.config, self.composer = config, composer
        tls = config.tls_context()
        self._tls = tls
        self._pool = [_Connection(config, tls) for _ in range(config.pool)]
        self._bucket = TokenBucket(config.rate) if config.rate else None
        self._lock = asyncio.Lock()
        self._warned: set[int] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> "SmtpMta":
        config = SmtpConfig.from_url(settings.mta_url)
        if not settings.public_url:
            raise ValueError(
                "smtp:// needs PUBLIC_URL: tracking links, the open pixel and the unsubscribe"
                " link in each email point to it (`serve` fills it from --host/--port)"
            )
        domain = settings.bounce_domain  # VERP envelope senders (models/verp.py)
        composer = Composer(
            settings.public_url,
            settings.tracking_key,
            settings.mail_from,
            (domain, settings.feedback_secret) if domain else None,
        )
        if config.rate and settings.batch_size / config.rate > settings.claim_lease_seconds / 2:
            log.warning(
                "MTA_URL rate=%s: a batch of BATCH_SIZE=%s takes %.0f s, more than half of"
                " CLAIM_LEASE_SECONDS=%s; another server process could claim it again:"
                " lower BATCH_SIZE or raise CLAIM_LEASE_SECONDS",
                config.rate,
                settings.batch_size,
                settings.batch_size / config.rate,
                settings.claim_lease_seconds,
            )
        return cls(config, composer)

    async def start(self, sink: FeedbackSink) -> None:
        log.info("relaying email over %s", self.config.describe())
        if self.config.user and self.config.starttls is StartTls.OFF:
            log.warning("MTA_URL: starttls=off: the SMTP password travels unencrypted")

    async def close(self) -> None:
        await asyncio.gather(*(connection.quit() for connection in self._pool))

    async def relay(self, content: Content, handover: Handover) -> None:
        batch = handover.batch
        if content.channel is not Channel.EMAIL:
            self._refuse_channel(content, handover)
            return
        if not batch:
            return
        async with self._lock:
            email = self.composer.compiled(content.delivery_id, content.subject, content.body)
            values = await field_values(batch)
            # Open connections first: a small batch need not open new ones.
            count = min(len(self._pool), len(batch))
            connections = sorted(self._pool, key=lambda c: not c.open)[:count]
            n = len(batch)
            shares = [batch[i * n // count : (i + 1) * n // count] for i in range(count)]
            await asyncio.gather(
                *(
                    self._send_share(connection, part, email, content.delivery_id, values, handover)
                    for connection, part in zip(connections, shares, strict=True)
                )
            )

    async def _send_share(
        self,
        connection: _Connection,
        share: list[Claimed],
        email: Compiled,
        delivery_id: int,
        values: dict[int, dict[str, str | None]],
        out: Handover,
    ) -> None:
        """One connection's part of a batch, message after message, each one's fate written
        into `out` as soon as the MTA answers. Before each transaction the gate is asked (after
        the rate limit's wait): once it is closed, the rest of the share is withheld. Whatever
        goes wrong, the message in hand and those after it are handed back unsent."""
        for i, claimed in enumerate(share):
            if not _sendable(claimed.address):
                out.refused.append((claimed, FeedbackType.HARD_BOUNCE, FR.REFUSED))
                continue
            try:
                if self._bucket is not None and out.may_send():
                    await self._bucket.take()
                if not out.may_send():
                    out.withhold(share[i:])
                    return
                data = self.composer.message(email, delivery_id, claimed, values[claimed.log_id])
                sender = self.composer.envelope_sender(claimed.log_id)
                refusal = await connection.send(sender, claimed.address, data)
            except Exception as error:
                connection.close()
                out.unsent += [c.log_id for c in share[i:]]
                if isinstance(error, SessionError):
                    out.error = out.error or error
                else:
                    log.exception("unexpected error while relaying over SMTP")
                    out.error = out.error or SessionError(
                        f"SMTP {self.config.where}: {error!r}", cause="unexpected error"
                    )
                return
            if refusal is None:
                out.accepted.append(claimed.log_id)
            else:
                kind, reason = classify(*refusal)
                out.refused.append((claimed, kind, reason))

    async def send_proofs(self, number: int, messages: list[ProofMessage]) -> list[Relayed]:
        """Over a connection of its own, closed after: a proof never waits behind a batch
        nor takes a batch's connection. The envelope sender is MAIL_FROM's address (no VERP:
        a proof's bounce must reach no sending log). A failed connection leaves the rest
        NOT_SENT, with the plain cause an operator reads."""
        connection = _Connection(self.config, self._tls)
        out: list[Relayed] = []
        try:
            for i, message in enumerate(messages):
                if not _sendable(message.address):
                    out.append(Relayed(ProofOutcome.REFUSED, "the address cannot be relayed"))
                    continue
                if self._bucket is not None:
                    await self._bucket.take()
                data = self.composer.encode(
                    message.copy, message.address, message.message_id, proof=number
                )
                try:
                    refusal = await connection.send(self.composer.sender, message.address, data)
                except Exception as error:
                    if not isinstance(error, SessionError):
                        log.exception("unexpected error while relaying a proof over SMTP")
                    cause = error.cause if isinstance(error, SessionError) else "unexpected error"
                    out += [Relayed(ProofOutcome.NOT_SENT, cause)] * (len(messages) - i)
                    break
                if refusal is None:
                    out.append(Relayed(ProofOutcome.ACCEPTED))
                else:
                    out.append(Relayed(ProofOutcome.REFUSED, f"refused by the MTA ({refusal[0]})"))
        finally:
            await connection.quit()
        return out

    def _refuse_channel(self, content: Content, handover: Handover) -> None:
        """An SMTP relay carries email only: SMS and push messages are refused for good."""
        if content.delivery_id not in self._warned:
            self._warned.add(content.delivery_id)
            log.warning(
                "delivery %s is %s, but MTA_URL is smtp://, which relays email only:"
                " its messages are refused (hard bounce, REFUSED)",
                content.delivery_id,
                content.channel,
            )
        handover.refused += [(c, FeedbackType.HARD_BOUNCE, FR.REFUSED) for c in handover.batch]
