"""Relay-style connections with keyset cursors: pages stay right while logs keep growing."""

import base64
import binascii
from typing import Any, TypeVar

import strawberry
from tortoise.models import Model
from tortoise.queryset import QuerySet

from models.errors import BadInput

M = TypeVar("M", bound=Model)
DEFAULT_PAGE = 50
MAX_PAGE = 500


def encode_cursor(kind: str, key: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{key}".encode()).decode()


def decode_cursor(kind: str, cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        prefix, _, key = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if prefix != kind or not 0 <= int(key) < 2**31:  # ids are 32-bit: PostgreSQL refuses more
            raise ValueError(prefix)
        return int(key)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadInput(f"'after' is not a valid cursor for this list: {cursor[:64]!r}") from None


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE
    if not 0 <= first <= MAX_PAGE:
        raise BadInput(f"'first' must be between 0 and {MAX_PAGE}")
    return first


def parse_id(value: strawberry.ID | str, what: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise BadInput(f"{value!r} is not a valid {what} id") from None
    if not 0 < number < 2**31:
        raise BadInput(f"{value!r} is not a valid {what} id")
    return number


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


def page_info(edges: list[Any], has_next: bool) -> PageInfo:
    """A page's PageInfo from its edges (each with a `cursor`)."""
    return PageInfo(has_next_page=has_next, end_cursor=edges[-1].cursor if edges else None)


async def keyset_page(
    query: QuerySet[M],
    kind: str,
    first: int | None,
    after: str | None,
    *,
    newest_first: bool = False,
) -> tuple[list[M], PageInfo, int]:
    """One page by id: (rows, pageInfo, totalCount). Rows added while paging never shift it."""
    size = page_size(first)
    key = decode_cursor(kind, after)
    total = await query.count()
    if key is not None:
        query = query.filter(id__lt=key) if newest_first else query.filter(id__gt=key)
    rows = await query.order_by("-id" if newest_first else "id").limit(size + 1)
    page = rows[:size]
    end = encode_cursor(kind, page[-1].pk) if page else None
    return page, PageInfo(has_next_page=len(rows) > size, end_cursor=end), total
