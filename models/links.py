"""The links of an email body: one parser for every reader of them (SPEC §3, §7).

Preparation validates a body's links (`models/preparation.py`), the composer rewrites the
tracked ones into click URLs (`models/template.py`, `server/mta/compose.py`) and the click
redirect finds one again by its number (`models/tracking.py`). All three read `anchors(body)`
and `kind_of(href)` below, so they cannot disagree about which links a body has, which are
tracked, or how they are numbered (docs/tracking.md).

The parser is the standard library's `HTMLParser`, which tokenises HTML as a browser does in
the cases that matter here: comments, `<![CDATA[…]]>` and the content of `<script>` and
`<style>` hold no tags; tag and attribute names are case-insensitive; entities in attribute
values are decoded; values may be quoted either way or not at all; `data-href` is not `href`;
of two `href` attributes the first counts, as in browsers.
"""

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum
from html.parser import HTMLParser
from urllib.parse import urlsplit

# A URL parser drops leading and trailing C0 controls and spaces, and tabs and newlines
# anywhere: "java\nscript:" is a javascript: URL to a browser.
_EDGES = "".join(chr(c) for c in range(0x21))
_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
# Schemes whose links run code or carry a document of their own: never sent, never redirected to.
FORBIDDEN_SCHEMES = frozenset({"javascript", "data", "vbscript"})
# An href that is only the unsubscribe field: filled at send time, not tracked.
_UNSUBSCRIBE = re.compile(r"^\{\{\s*unsubscribeUrl\s*\}\}$")


class LinkKind(Enum):
    TRACKED = "tracked"  # http(s) with a host: rewritten into a click URL
    MAILTO = "mailto"  # left as it is
    UNSUBSCRIBE = "unsubscribe"  # {{unsubscribeUrl}}: the recipient's unsubscribe page
    FORBIDDEN = "forbidden"  # javascript:, data:, vbscript:: a preparation error
    INVALID = "invalid"  # anything else: a preparation error


def kind_of(url: str) -> LinkKind:
    """What a link's URL (as `Anchor.url` has it) is to preparation, tracking and the redirect."""
    compact = _TAB_OR_NEWLINE.sub("", url)
    scheme = _SCHEME.match(compact)
    name = scheme.group(1).lower() if scheme else ""
    if name in FORBIDDEN_SCHEMES:
        return LinkKind.FORBIDDEN
    if _UNSUBSCRIBE.match(url):
        return LinkKind.UNSUBSCRIBE
    if name == "mailto":
        return LinkKind.MAILTO if "@" in url and compact == url else LinkKind.INVALID
    if name in ("http", "https") and not any(c.isspace() for c in url):
        try:
            host = urlsplit(url).hostname
        except ValueError:  # a malformed port or IPv6 literal
            host = None
        if host:
            return LinkKind.TRACKED
    return LinkKind.INVALID


@dataclass(frozen=True)
class Anchor:
    """One `<a href>` of a body."""

    url: str  # the first href, entities decoded, spaces and controls at either end removed
    start: int  # the start tag's span in the body: body[start:end] is the tag as written
    end: int
    attrs: tuple[tuple[str, str | None], ...]  # as the parser read them (names lower-case)
    text: str  # the link's text, up to its `</a>`
    kind: LinkKind
    self_closing: bool = False  # written `<a … />`

    def around_href(self) -> tuple[str, str]:
        """The start tag written again from the attributes read, split where its href's quoted
        value goes: the first href only, every value re-quoted and re-escaped."""
        pieces = ["<a"]
        before: str | None = None
        for name, value in self.attrs:
            if name == "href":
                if before is None:
                    before = "".join(pieces) + " href="
                    pieces = []
                continue
            pieces.append(f" {name}" if value is None else f' {name}="{html.escape(value)}"')
        assert before is not None  # an Anchor has an href
        return before, "".join(pieces) + ("/>" if self.self_closing else ">")


def href_of(attrs: Sequence[tuple[str, str | None]]) -> str | None:
    """The href of a start tag's attributes: the first one, as browsers read it."""
    return next((value or "" for name, value in attrs if name == "href"), None)


class _Anchors(HTMLParser):
    def __init__(self, body: str) -> None:
        super().__init__(convert_charrefs=True)
        # HTMLParser gives (line, column) positions; lines are counted by "\n".
        self._lines = [0, *(m.end() for m in re.finditer("\n", body))]
        self.found: list[Anchor] = []
        self._open: tuple[Anchor, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "a":
            return
        self._close()
        href = href_of(attrs)
        if href is None:
            return  # a named anchor (<a name="top">) is not a link
        line, column = self.getpos()
        start = self._lines[line - 1] + column
        raw = self.get_starttag_text() or ""
        url = href.strip(_EDGES)
        end = start + len(raw)
        anchor = Anchor(url, start, end, tuple(attrs), "", kind_of(url), raw.endswith("/>"))
        self._open = (anchor, [])

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open[1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._close()

    def _close(self) -> None:
        if self._open is not None:
            anchor, text = self._open
            self.found.append(replace(anchor, text="".join(text)))
            self._open = None

    def close(self) -> None:
        super().close()
        self._close()


def anchors(body: str) -> list[Anchor]:
    """Every `<a>` with an href in the body, in order (tracked or not)."""
    parser = _Anchors(body)
    parser.feed(body)
    parser.close()
    return parser.found


def tracked(found: Sequence[Anchor]) -> list[Anchor]:
    """The tracked links, in body order: a link's position in this list is its number, which
    each tracking id carries and the click redirect looks up."""
    return [a for a in found if a.kind is LinkKind.TRACKED]
