"""Each recipient's copy of an email: personalised, tracked, and encoded as a MIME message.

A delivery's subject and body are compiled once (models/template.py) into three templates:
the subject, the HTML body with its open pixel, and a plain-text body derived from the HTML
(links written "text (url)"). A recipient's copy is then three joins plus the MIME encoding;
the HTML is never parsed per recipient. Which links are tracked, and their numbers, come from
models/links.py, the parser preparation and the click redirect read too. Every tracked link
becomes that recipient's signed click URL, the pixel their open URL, and `{{unsubscribeUrl}}`
and `List-Unsubscribe` their one-click unsubscribe URL (models/tracking.py). The recipients'
field values come from `field_values` (models/template.py), as for the click redirect.

The MIME encoding uses the stdlib's `email.mime` classes with quoted-printable bodies encoded
by `binascii` (C), a boundary that cannot occur in such bodies, and a policy that writes
headers needing no folding as they are: about 0.15 ms a message, where the generic
`EmailMessage` path takes over 1.5 ms, which would be most of a send.
"""

import binascii
import html
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import Compat32
from email.utils import formataddr, formatdate, parseaddr
from html.parser import HTMLParser
from typing import Any, cast

from models.links import href_of
from models.relay import Claimed
from models.template import (
    UNSUBSCRIBE_FIELD,
    Field,
    Link,
    Part,
    Template,
    compile_html,
    compile_text,
    render,
)
from models.tracking import Token, TokenKind, tracking_url
from models.verp import verp_address

# A field no template can name (field names are identifiers): the open pixel's URL.
OPEN_FIELD = "$open"
PIXEL_PARTS: tuple[Part, ...] = (
    '<img src="',
    Field(OPEN_FIELD),
    '" width="1" height="1" alt="">',
)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
# Placeholders for fields and links while the HTML is turned into text (private-use chars).
_MARK_OPEN, _MARK_CLOSE = "\ue000", "\ue001"
_MARK = re.compile(f"{_MARK_OPEN}(\\d+){_MARK_CLOSE}")
_SPACES = re.compile(r"[ \t\r\n\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")

Values = Mapping[str, str | None]


@dataclass(frozen=True)
class Compiled:
    """A delivery's email, ready to personalise."""

    source: tuple[str | None, str]  # (subject, body) it was compiled from
    subject: Template
    html: Template
    text: Template


def compile_email(subject: str | None, body: str) -> Compiled:
    page = compile_html(body)
    return Compiled(
        source=(subject, body),
        subject=compile_text(subject or ""),
        html=with_pixel(page),
        text=text_template(page),
    )


def with_pixel(template: Template) -> Template:
    """The open pixel goes just before the last `</body>`, or at the very end."""
    parts = list(template.parts)
    for i in range(len(parts) - 1, -1, -1):
        part = parts[i]
        if isinstance(part, str):
            ends = list(_BODY_END.finditer(part))
            if ends:
                at = ends[-1].start()
                parts[i : i + 1] = [part[:at], *PIXEL_PARTS, part[at:]]
                return Template(tuple(parts))
    return Template((*parts, *PIXEL_PARTS))


# ---- The plain-text part ---------------------------------------------------------------------

_SKIPPED = {"head", "style", "script", "title", "template"}
_PARAGRAPHS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table", "blockquote", "hr"}
_LINES = {"div", "tr", "section", "article", "header", "footer", "address", "dt", "dd", "pre"}


class _TextWriter(HTMLParser):
    """HTML to readable text: tags dropped, blocks on their own lines, `<a>` as "text (url)"."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0
        self.pre = 0
        self.anchors: list[tuple[str | None, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self.skipping += 1
        elif tag == "br":
            self.out.append("\n")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag == "a":
            self.anchors.append((href_of(attrs), len(self.out)))
        elif tag in _PARAGRAPHS:
            self.out.append("\n\n")
        elif tag in _LINES:
            self.out.append("\n")
        if tag == "pre":
            self.pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag == "a" and self.anchors:
            href, start = self.anchors.pop()
            href = (href or "").strip()
            label = "".join(self.out[start:]).strip()
            if href and not label:
                self.out.append(href)
            elif href and label != href:
                self.out.append(f" ({href})")
        elif tag in _PARAGRAPHS:
            self.out.append("\n\n")
        elif tag in _LINES:
            self.out.append("\n")
        if tag == "pre":
            self.pre = max(0, self.pre - 1)

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(data if self.pre else _SPACES.sub(" ", data))

    def text(self) -> str:
        lines = [line.strip(" ") for line in "".join(self.out).split("\n")]
        return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n") + "\n"


def text_template(page: Template) -> Template:
    """The text part's template, derived once from the HTML template: each field and link
    stands in the HTML as a placeholder that survives the conversion and becomes a part again."""
    marked: list[str] = []
    for i, part in enumerate(page.parts):
        if isinstance(part, str):
            marked.append(part.replace(_MARK_OPEN, "").replace(_MARK_CLOSE, ""))
        elif isinstance(part, Link):  # a Link stands for a whole quoted attribute value
            marked.append(f'"{_MARK_OPEN}{i}{_MARK_CLOSE}"')
        else:
            marked.append(f"{_MARK_OPEN}{i}{_MARK_CLOSE}")
    writer = _TextWriter()
    writer.feed("".join(marked))
    writer.close()
    pieces = _MARK.split(writer.text())
    parts: list[Part] = []
    for n, piece in enumerate(pieces):
        if n % 2 == 0:
            if piece:
                parts.append(piece)
        else:
            parts.append(page.parts[int(piece)])
    return Template(tuple(parts))


def render_text(template: Template, values: Values, link: Callable[[Link], str]) -> str:
    """Like models.template.render, for text: nothing escaped, links as bare URLs."""
    out: list[str] = []
    for part in template.parts:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, Field):
            out.append(values.get(part.name) or "")
        else:
            out.append(link(part))
    return "".join(out)


def _plain(value: str) -> str:
    return value


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
        return tracking_url(self.public_url, self.key, token)

    def message(self, email: Compiled, delivery_id: int, claimed: Claimed, values: Values) -> bytes:
        log_id, message_id = claimed.log_id, claimed.message_id
        unsubscribe = self.url(Token(TokenKind.UNSUBSCRIBE, delivery_id, log_id))
        mine = {
            **values,
            UNSUBSCRIBE_FIELD: unsubscribe,
            OPEN_FIELD: self.url(Token(TokenKind.OPEN, delivery_id, log_id)),
        }

        def link(target: Link) -> str:
            return self.url(Token(TokenKind.CLICK, delivery_id, log_id, target.index))

        message = MIMEMultipart("alternative", boundary=f"=_{uuid.uuid4().hex}")
        message["From"] = self.from_header
        message["To"] = claimed.address
        message["Subject"] = _header(render(email.subject, mine, escape=_plain))
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = f"<{message_id}>"
        message["X-Delivery-Message-Id"] = message_id
        message["X-MSYS-API"] = json.dumps(
            {"metadata": {"delivery_message_id": message_id}}, separators=(",", ":")
        )
        message["List-Unsubscribe"] = f"<{unsubscribe}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message.attach(_text_part("plain", render_text(email.text, mine, link)))
        message.attach(_text_part("html", render(email.html, mine, link, html.escape)))
        return message.as_bytes(policy=POLICY)
