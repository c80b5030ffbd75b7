"""Relay connections: one generic Connection/Edge, one PageInfo and one cursor codec for every
paged list, both ways (`first`/`after`, `last`/`before`).

Cursors are keysets (models/keyset.py): the key of a row in the list's order, so that pages stay
right while logs keep growing. strawberry names `Connection[Delivery]` `DeliveryConnection` and
`Edge[Delivery]` `DeliveryEdge`: the public names of the hand-written pairs this replaces.
"""

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import strawberry

from models.errors import BadInput
from models.keyset import Key, Page, Window

N = TypeVar("N")
E = TypeVar("E")
R = TypeVar("R")
DEFAULT_PAGE = 50
MAX_PAGE = 500
MAX_CURSOR = 2048  # characters: longer is not one of ours


@strawberry.type(
    description="Where a page sits in its list. Rows lie before the page when it was read"
    " backwards (`last`) and more were found, or when `after` was given (its row is there);"
    " after the page likewise with `first` and `before`."
)
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[N]):
    cursor: str
    node: N


@strawberry.type
class Connection(Generic[N]):
    edges: list[Edge[N]]
    page_info: PageInfo
    total_count: int = strawberry.field(
        description="Rows in the whole list with its filters (not only this page)."
    )


def _int_key(value: Any) -> int:
    # ids are 32-bit: PostgreSQL refuses more
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31:
        return value
    raise ValueError(value)


def _text_key(value: Any) -> str:
    if isinstance(value, str) and len(value) <= 1000:
        return value
    raise ValueError(value)


def _time_key(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError(value)
    at = datetime.fromisoformat(value)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


ID_KEY, TEXT_KEY, TIME_KEY = _int_key, _text_key, _time_key


@dataclass(frozen=True)
class Cursors:
    """The cursor codec of one list: its `kind` (a cursor of another list, or of another order
    of this one, is refused) and how each part of its key is read back."""

    kind: str
    parts: tuple[Callable[[Any], Any], ...] = (ID_KEY,)

    def encode(self, key: Key) -> str:
        if len(key) == 1 and type(key[0]) is int:  # an id: what json.dumps writes, faster
            text = f"{self.kind}:[{key[0]}]"
        else:
            text = f"{self.kind}:{json.dumps([_json(v) for v in key], separators=(',', ':'))}"
        return base64.urlsafe_b64encode(text.encode()).decode()

    def decode(self, cursor: str | None, argument: str = "after") -> Key | None:
        if cursor is None:
            return None
        try:
            if len(cursor) > MAX_CURSOR:
                raise ValueError("too long")
            text = base64.urlsafe_b64decode(cursor.encode()).decode()
            prefix, _, rest = text.partition(":")
            values = json.loads(rest)
            if prefix != self.kind or not isinstance(values, list):
                raise ValueError(prefix)
            if len(values) != len(self.parts):
                raise ValueError(values)
            return tuple(read(v) for read, v in zip(self.parts, values, strict=True))
        except (ValueError, TypeError, binascii.Error, UnicodeError):
            raise BadInput(
                f"'{argument}' is not a valid cursor for this list: {cursor[:64]!r}"
            ) from None


def window(
    cursors: Cursors,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    *,
    default: int = DEFAULT_PAGE,
    cap: int = MAX_PAGE,
) -> Window:
    """The rows a page's arguments ask for: `first` after `after`, or `last` before `before`
    (the two cursors may bound one window). `first` and `last` together are refused."""
    if first is not None and last is not None:
        raise BadInput("give 'first' or 'last', not both")
    size, name = (last, "last") if last is not None else (first, "first")
    if size is None:
        size = default
    elif not 0 <= size <= cap:
        raise BadInput(f"'{name}' must be between 0 and {cap}")
    return Window(
        size=size,
        after=cursors.decode(after, "after"),
        before=cursors.decode(before, "before"),
        backward=last is not None,
    )


def connection(
    page: Page[R],
    window: Window,
    cursors: Cursors,
    key: Callable[[R], Key],
    node: Callable[[R], N],
) -> Connection[N]:
    """A page as a connection: each row's edge, and the PageInfo of the window read."""
    edges = [Edge(cursor=cursors.encode(key(r)), node=node(r)) for r in page.rows]
    # Beyond a cursor the client gave lies at least that cursor's row.
    has_previous = window.after is not None or (window.backward and page.has_more)
    has_next = window.before is not None or (not window.backward and page.has_more)
    info = PageInfo(
        has_next_page=has_next,
        has_previous_page=has_previous,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=edges[-1].cursor if edges else None,
    )
    return Connection(edges=edges, page_info=info, total_count=page.total)


MAX_SEARCH = 320  # characters of a search term: an address at most


def search_term(raw: str | None) -> str | None:
    """A filter's case-insensitive part of a text; none (or blank) filters nothing."""
    if raw is None or not raw.strip():
        return None
    if len(raw) > MAX_SEARCH:
        raise BadInput(f"'search' is longer than {MAX_SEARCH} characters")
    return raw.strip()


def one_of(values: list[E], name: str, cap: int) -> list[E]:
    """A filter's list of allowed values (an enum's: at most all of them, each once)."""
    if len(values) > cap:
        raise BadInput(f"'{name}' holds at most {cap} values (got {len(values)})")
    return list(dict.fromkeys(values))


def aware(value: datetime) -> datetime:
    """A DateTime argument without an offset is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def by_id(row: Any) -> Key:
    """The key of a list in id order (most lists)."""
    return (row.id,)


def parse_id(value: strawberry.ID | str, what: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise BadInput(f"{value!r} is not a valid {what} id") from None
    if not 0 < number < 2**31:
        raise BadInput(f"{value!r} is not a valid {what} id")
    return number
