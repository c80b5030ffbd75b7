"""Message templates: personalisation fields (`{{firstName}}`) and the links that get tracked.

A template is compiled once per delivery into literal text, fields and links, so that each
recipient's copy is a join, not a parse. Links are the `href` of `<a>` tags with an http(s) URL,
numbered in order of appearance: that number is what a tracking id carries, and the click
redirect looks the URL up again by it in the delivery's own body (never in the request).
"""

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

# Profile fields a template may use, and the profile attribute each reads.
FIELDS: Mapping[str, str] = {
    "firstName": "first_name",
    "lastName": "last_name",
    "email": "email",
    "phone": "phone",
}
# Filled by the sender, not from the profile: the recipient's one-click unsubscribe page.
UNSUBSCRIBE_FIELD = "unsubscribeUrl"

_FIELD = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_HREF = re.compile(
    r"""(<a\b[^>]*?\bhref\s*=\s*)(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.IGNORECASE
)


@dataclass(frozen=True)
class Field:
    name: str


@dataclass(frozen=True)
class Link:
    index: int
    url: str  # as the delivery has it (HTML entities decoded), fields not yet filled


Part = str | Field | Link


@dataclass(frozen=True)
class Template:
    parts: tuple[Part, ...]

    @property
    def links(self) -> list[Link]:
        return [p for p in self.parts if isinstance(p, Link)]


def unknown_fields(text: str) -> list[str]:
    known = {*FIELDS, UNSUBSCRIBE_FIELD}
    return sorted({m.group(1) for m in _FIELD.finditer(text)} - known)


def _fields(text: str) -> list[Part]:
    parts: list[Part] = []
    last = 0
    for match in _FIELD.finditer(text):
        if match.start() > last:
            parts.append(text[last : match.start()])
        parts.append(Field(match.group(1)))
        last = match.end()
    if last < len(text):
        parts.append(text[last:])
    return parts


def is_tracked(url: str) -> bool:
    return url.strip().lower().startswith(("http://", "https://"))


def compile_text(text: str) -> Template:
    """Fields only (a subject, an SMS)."""
    return Template(tuple(_fields(text)))


def compile_html(body: str, track_links: bool = True) -> Template:
    """Fields, and each tracked `<a href>` as a Link (the attribute is re-quoted on render)."""
    parts: list[Part] = []
    last = 0
    index = 0
    for match in _HREF.finditer(body):
        raw = next(g for g in match.groups()[1:] if g is not None)
        url = html.unescape(raw).strip()
        if not (track_links and is_tracked(url)):
            continue
        parts += _fields(body[last : match.end(1)])
        parts.append(Link(index, url))
        index += 1
        last = match.end()
    parts += _fields(body[last:])
    return Template(tuple(parts))


def links_of(body: str) -> list[str]:
    """The tracked links of a body, by index."""
    return [link.url for link in compile_html(body).links]


def render(
    template: Template,
    values: Mapping[str, str | None],
    link: Callable[[Link], str] | None = None,
    escape: Callable[[str], str] = html.escape,
) -> str:
    """One recipient's copy. `link` gives the (tracking) URL of each Link, written as a quoted
    attribute value; missing field values render empty."""
    out: list[str] = []
    for part in template.parts:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, Field):
            out.append(escape(values.get(part.name) or ""))
        else:
            target = link(part) if link else fill_url(part.url, values)
            out.append('"' + html.escape(target, quote=True) + '"')
    return "".join(out)


def fill_url(url: str, values: Mapping[str, str | None]) -> str:
    """A link's URL with its fields filled, each value percent-encoded."""
    return _FIELD.sub(lambda m: quote(values.get(m.group(1)) or "", safe=""), url)
