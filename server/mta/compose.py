"""Each recipient's copy of an email encoded as a MIME message; the copy itself (personalised
and tracked) is models/compose.py's, which previews and proofs use too.

The MIME encoding uses the stdlib's `email.mime` classes with quoted-printable bodies encoded
by `binascii` (C), a boundary that cannot occur in such bodies, and a policy that writes
headers needing no folding as they are: about 0.15 ms a message, where the generic
`EmailMessage` path takes over 1.5 ms, which would be most of a send.
"""

import binascii
import json
import uuid
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import Compat32
from email.utils import formataddr, formatdate, parseaddr
from typing import Any, cast

from models.compose import Compiled, Rendered, Tracker, Values, compile_email, personalise
from models.relay import Claimed
from models.tracking import Token
from models.verp import verp_address

__all__ = ["Compiled", "Composer", "compile_email"]  # bench/compose.py imports compile_email here


# ---- The MIME message -------------------------------------------------------------------------


def _text_part(subtype: str, body: str) -> MIMENonMultipart:
    part = MIMENonMultipart("text", subtype, charset="utf-8")
    del part["MIME-Version"]  # belongs to the message, not to its parts
    part["Content-Transfer-Encoding"] = "quoted-printable"
    data = body.replace("\r\n", "\n").replace("\r", "\n")
    part.set_payload(binascii.b2a_qp(data.encode("utf-8"), istext=True).decode("ascii"))
    return part


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
        reader is a reviewer, not a recipient, and the proof's links name no sending log."""
        message = MIMEMultipart("alternative", boundary=f"=_{uuid.uuid4().hex}")
        message["From"] = self.from_header
        message["To"] = to
        message["Subject"] = _header(copy.subject)
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = f"<{message_id}>"
        message["X-Delivery-Message-Id"] = message_id
        if proof is None:
            message["X-MSYS-API"] = json.dumps(
                {"metadata": {"delivery_message_id": message_id}}, separators=(",", ":")
            )
            message["List-Unsubscribe"] = f"<{copy.unsubscribe_url}>"
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        else:
            message["X-Delivery-Proof"] = str(proof)
        message.attach(_text_part("plain", copy.text))
        message.attach(_text_part("html", copy.html))
        return message.as_bytes(policy=POLICY)
