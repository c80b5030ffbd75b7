"""A recipient's copy of an email, as text: personalised and tracked (or, for a proof, not).

A delivery's subject and body are compiled once (models/template.py) into three templates:
the subject, the HTML body with its open pixel, and a plain-text body derived from the HTML
(links written "text (url)"). A recipient's copy is then three joins; the HTML is never parsed
per recipient. Which links are tracked, and their numbers, come from models/links.py, the
parser preparation and the click redirect read too. Every tracked link becomes that
recipient's signed click URL, the pixel their open URL, and `{{unsubscribeUrl}}` their
one-click unsubscribe URL (models/tracking.py).

This is the one composer: the SMTP adapter (server/mta/compose.py) MIME-encodes what
`personalise` returns, `previewDelivery` shows it as it is, and a proof (models/proofs.py)
is the same copy with untracked links and no pixel, so that nothing its reader does counts.
"""

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser

from models.links import href_of
from models.template import (
    UNSUBSCRIBE_FIELD,
    Field,
    Link,
    Part,
    Template,
    compile_html,
    compile_text,
    fill_url,
    render,
)
from models.tracking import Token, TokenKind, tracking_url

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
    html: Template  # with the open pixel
    text: Template
    page: Template  # the HTML without the pixel (a proof's)


def compile_email(subject: str | None, body: str) -> Compiled:
    page = compile_html(body)
    return Compiled(
        source=(subject, body),
        subject=compile_text(subject or ""),
        html=with_pixel(page),
        text=text_template(page),
        page=page,
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


# ---- One recipient's copy --------------------------------------------------------------------


@dataclass(frozen=True)
class Tracker:
    """Where tracking URLs point (PUBLIC_URL) and the key that signs their ids."""

    public_url: str
    key: str

    def url(self, token: Token) -> str:
        return tracking_url(self.public_url, self.key, token)


@dataclass(frozen=True)
class Rendered:
    """One recipient's subject (one line, as a header carries it), HTML and text."""

    subject: str
    html: str
    text: str
    unsubscribe_url: str  # also the List-Unsubscribe header's


def one_line(value: str) -> str:
    return " ".join(value.split())


def personalise(
    email: Compiled,
    values: Values,
    tracker: Tracker,
    delivery_id: int,
    log_id: int,
    *,
    tracked: bool = True,
) -> Rendered:
    """The copy of sending log `log_id`. `tracked=False` (a proof): each link is its target
    with the fields filled, as the click redirect would lead there, and there is no pixel."""
    unsubscribe = tracker.url(Token(TokenKind.UNSUBSCRIBE, delivery_id, log_id))
    mine = {**values, UNSUBSCRIBE_FIELD: unsubscribe}
    link: Callable[[Link], str]
    if tracked:
        mine[OPEN_FIELD] = tracker.url(Token(TokenKind.OPEN, delivery_id, log_id))
        page = email.html

        def link(target: Link) -> str:
            return tracker.url(Token(TokenKind.CLICK, delivery_id, log_id, target.index))

    else:
        page = email.page

        def link(target: Link) -> str:
            return fill_url(target.url, mine)

    return Rendered(
        subject=one_line(render(email.subject, mine, escape=_plain)),
        html=render(page, mine, link, html.escape),
        text=render_text(email.text, mine, link),
        unsubscribe_url=unsubscribe,
    )
