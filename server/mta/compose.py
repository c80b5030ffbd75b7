"""Each recipient's copy of an email encoded as a MIME message; the copy itself (personalised
and tracked) is models/compose.py's, which previews and proofs use too.

The MIME message is what the stdlib's `email.mime` classes would generate for a
multipart/alternative of two quoted-printable text parts (bodies encoded by `binascii`, in C,
under a boundary that cannot occur in such bodies), with a policy that writes headers needing
no folding as they are; but it is written straight as bytes: about 0.05 ms a message, where
building and generating the `email.mime` objects took 0.15 ms, and the generic `EmailMessage`
path over 1.5 ms, which would be most of a send.
"""

import binascii
import json
import uuid
from email.header import Header
from email.policy import Compat32
from email.utils import formataddr, formatdate, parseaddr
from typing import Any, cast

from models.compose import Compiled, Rendered, Tracker, Values, compile_email, personalise
from models.relay import Claimed
from models.tracking import Token
from models.verp import verp_address

__all__ = ["Compiled", "Composer", "compile_email"]  # bench/compose.py imports compile_email here


# ---- The MIME message -------------------------------------------------------------------------


def _qp(body: str) -> bytes:
    """A text part's body: line ends as LF, then quoted-printable (binascii, in C)."""
    data = body.replace("\r\n", "\n").replace("\r", "\n")
    return binascii.b2a_qp(data.encode("utf-8"), istext=True)


def _part_head(subtype: str) -> bytes:
    """A text part's headers and the blank line after them (MIME-Version belongs to the
    message, not to its parts)."""
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\n'
        "Content-Transfer-Encoding: quoted-printable\n\n"
    ).encode("ascii")


_PLAIN_HEAD, _HTML_HEAD = _part_head("plain"), _part_head("html")


def _header(value: str) -> str:
    """A header value on one line whatever a field holds; a non-ASCII one as RFC 2047 encoded
    words (the compat32 messages used here take a Header where typeshed says str)."""
    value = " ".join(value.split())
    return value if value.isascii() else cast(str, Header(value, "utf-8"))


class _Policy(Compat32):
    """compat32, with a shortcut for the common header: an ASCII value that needs no folding
    (it fits in 78 characters, or has no space to fold at) is written as it is, which skips
    the Header machinery that otherwise costs about half of a message's encoding."""

    def fold_binary(self, name: str, value: Any) -> bytes:
        if isinstance(value, str) and value.isascii() and "\r" not in value and "\n" not in value:
            size = len(name) + 2 + len(value)
            if size <= 78 or (size <= 998 and " " not in value):
                return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


POLICY = _Policy()
# The message's first two headers, folded once around a boundary of the same length as every
# boundary (=_ and 32 hex digits, where no fold can fall): the parts before and after it.
_SAMPLE = "=_" + "0" * 32
_CONTENT_TYPE = tuple(
    (
        POLICY.fold_binary("Content-Type", f'multipart/alternative; boundary="{_SAMPLE}"')
        + POLICY.fold_binary("MIME-Version", "1.0")
    ).split(_SAMPLE.encode("ascii"))
)


class Composer:
    """Builds each recipient's message; compiles each delivery's template once."""

    CACHE_SIZE = 256

    def __init__(
        self,
        public_url: str,
        key: str,
        mail_from: str,
        bounces: tuple[str, str] | None = None,
    ) -> None:
        """`bounces`: (BOUNCE_DOMAIN, the key that signs VERP addresses); without it every
        message's envelope sender is MAIL_FROM's address."""
        name, address = parseaddr(mail_from)
        if "@" not in address or not address.isascii():
            raise ValueError(f"MAIL_FROM {mail_from!r} has no usable address (name <a@b.example>)")
        self.public_url, self.key = public_url, key
        self.tracker = Tracker(public_url, key)
        self.sender = address  # the envelope sender (MAIL FROM) when there is no BOUNCE_DOMAIN
        self.bounces = bounces
        self.from_header = formataddr((name, address), charset="utf-8")
        self._from = POLICY.fold_binary("From", self.from_header)
        self._compiled: dict[int, Compiled] = {}

    def envelope_sender(self, log_id: int) -> str:
        """Where the message's bounces go: its own VERP address on BOUNCE_DOMAIN
        (models/verp.py), or MAIL_FROM's address. The header From is MAIL_FROM either way."""
        if self.bounces is None:
            return self.sender
        domain, key = self.bounces
        return verp_address(key, domain, log_id)

    def compiled(self, delivery_id: int, subject: str | None, body: str) -> Compiled:
        """The delivery's compiled email, cached by delivery id (and checked against its
        source, which cannot change once sending started, but costs nothing to check)."""
        found = self._compiled.get(delivery_id)
        if found is None or found.source != (subject, body):
            if len(self._compiled) >= self.CACHE_SIZE:
                self._compiled.pop(next(iter(self._compiled)))
            found = self._compiled[delivery_id] = compile_email(subject, body)
        return found

    def url(self, token: Token) -> str:
        return self.tracker.url(token)

    def message(self, email: Compiled, delivery_id: int, claimed: Claimed, values: Values) -> bytes:
        copy = personalise(email, values, self.tracker, delivery_id, claimed.log_id)
        return self.encode(copy, claimed.address, claimed.message_id)

    def encode(
        self, copy: Rendered, to: str, message_id: str, *, proof: int | None = None
    ) -> bytes:
        """The MIME message of a copy. A proof (its number) has no List-Unsubscribe: its
        reader is a reviewer, not a recipient, and the proof's links name no sending log.

        Written straight as bytes, exactly as `email.mime`'s generator writes the same
        multipart/alternative message under POLICY (tests/rules/test_mime.py checks it against
        the generator byte for byte): each header folded by POLICY, the two text parts'
        fixed headers, their quoted-printable bodies and the boundary lines. The generator's
        own walk over the message objects cost about three quarters of a message's encoding."""
        boundary = f"=_{uuid.uuid4().hex}"
        headers: list[tuple[str, str]] = [
            ("To", to),
            ("Subject", _header(copy.subject)),
            ("Date", formatdate(usegmt=True)),
            ("Message-ID", f"<{message_id}>"),
            ("X-Delivery-Message-Id", message_id),
        ]
        if proof is None:
            metadata = json.dumps(
                {"metadata": {"delivery_message_id": message_id}}, separators=(",", ":")
            )
            headers += [
                ("X-MSYS-API", metadata),
                ("List-Unsubscribe", f"<{copy.unsubscribe_url}>"),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            ]
        else:
            headers.append(("X-Delivery-Proof", str(proof)))
        fold = POLICY.fold_binary
        delimiter = f"\n--{boundary}\n".encode("ascii")
        return b"".join(
            [
                _CONTENT_TYPE[0],
                boundary.encode("ascii"),
                _CONTENT_TYPE[1],
                self._from,
                *(fold(name, value) for name, value in headers),
                delimiter,  # the header block's blank line, then the first boundary
                _PLAIN_HEAD,
                _qp(copy.text),
                delimiter,
                _HTML_HEAD,
                _qp(copy.html),
                f"\n--{boundary}--\n".encode("ascii"),
            ]
        )
