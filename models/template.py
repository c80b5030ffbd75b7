"""Message templates: personalisation fields (`{{firstName}}`), tracked links, and a recipient's
values for the fields.

A template is compiled once per delivery into literal text, fields and links, so that each
recipient's copy is a join, not a parse. Links are those of `models/links.py`, the one reader
of a body's links: each tracked link's start tag is written again around a Link, numbered in
order of appearance. That number is what a tracking id carries, and the click
redirect looks the URL up again by it in the delivery's own body (never in the request).
"""

import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote

from models.links import anchors, tracked
from models.sql import Sql, in_list

# Profile fields a template may use, and the profile column each reads.
FIELDS: Mapping[str, str] = {
    "firstName": "first_name",
    "lastName": "last_name",
    "email": "email",
    "phone": "phone",
}
# Filled by the sender, not from the profile: the recipient's one-click unsubscribe page.
UNSUBSCRIBE_FIELD = "unsubscribeUrl"

_FIELD = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


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


def compile_text(text: str) -> Template:
    """Fields only (a subject, an SMS)."""
    return Template(tuple(_fields(text)))


def compile_html(body: str) -> Template:
    """Fields, and each tracked link (models/links.py) as a Link: its `<a>` start tag is
    written again around the Link, which renders as the quoted value of its one href."""
    parts: list[Part] = []
    last = 0
    for index, anchor in enumerate(tracked(anchors(body))):
        parts += _fields(body[last : anchor.start])
        before, after = anchor.around_href()
        parts += _fields(before)
        parts.append(Link(index, anchor.url))
        parts += _fields(after)
        last = anchor.end
    parts += _fields(body[last:])
    return Template(tuple(parts))


def links_of(body: str) -> list[str]:
    """The tracked links of a body, by number: what the click redirect leads to."""
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


# ---- A recipient's values for the fields ------------------------------------------------------


class Addressee(Protocol):
    """A message's recipient: its sending log, its profile (None once deleted), its address."""

    @property
    def log_id(self) -> int: ...

    @property
    def profile_id(self) -> int | None: ...

    @property
    def address(self) -> str: ...


async def field_values(
    recipients: Sequence[Addressee], sql: Sql | None = None
) -> dict[int, dict[str, str | None]]:
    """Each recipient's values by field name ({{firstName}} ...), by sending log id, from their
    profiles in one query. A recipient whose profile is gone, or has no email, still has the
    log's address as {{email}}. The composer asks for a batch, the click redirect for one."""
    ids = sorted({r.profile_id for r in recipients if r.profile_id is not None})
    profiles: dict[int, dict[str, str | None]] = {}
    if ids:  # no profile, no query (nor a database to ask)
        sql = sql or Sql()
        columns = ", ".join(FIELDS.values())
        rows = await sql.rows(f"SELECT id, {columns} FROM profile WHERE id IN {in_list(ids)}", ids)
        profiles = {r["id"]: {name: r[col] for name, col in FIELDS.items()} for r in rows}
    values: dict[int, dict[str, str | None]] = {}
    for recipient in recipients:
        found = profiles.get(recipient.profile_id) if recipient.profile_id is not None else None
        mine = dict(found) if found else dict.fromkeys(FIELDS)
        if not mine["email"] and "@" in recipient.address:
            mine["email"] = recipient.address
        values[recipient.log_id] = mine
    return values
