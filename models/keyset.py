"""Keyset pages of an ordered list, both ways: the one paging rule every list of the API uses.

A list has an order (columns, each ascending or descending, the last one unique); a cursor is
the key of a row in that order. A window is the rows after one key and before another, the
first `size` of them, or the last `size` when paging backwards. Rows added while a client pages
never shift its pages (no OFFSET).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.queryset import QuerySet

from models.columns import read_columns

M = TypeVar("M", bound=Model)
T = TypeVar("T")
Key = tuple[Any, ...]


@dataclass(frozen=True)
class Order:
    """A list's order: `columns` as tortoise names them, `-` for descending; the last is unique."""

    columns: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The columns, without their direction."""
        return tuple(c.lstrip("-") for c in self.columns)

    def key(self, row: Model) -> Key:
        return tuple(getattr(row, c.lstrip("-")) for c in self.columns)

    def later(self, key: Key) -> Q:
        """The rows after `key` in this order."""
        return self._beyond(key, later=True)

    def earlier(self, key: Key) -> Q:
        """The rows before `key` in this order."""
        return self._beyond(key, later=False)

    def _beyond(self, key: Key, *, later: bool) -> Q:
        alternatives = []
        for index, column in enumerate(self.columns):
            name = column.lstrip("-")
            ascending = not column.startswith("-")
            operator = "gt" if ascending == later else "lt"
            equal = {c.lstrip("-"): v for c, v in zip(self.columns[:index], key, strict=False)}
            alternatives.append(Q(**equal, **{f"{name}__{operator}": key[index]}))
        return Q(*alternatives, join_type="OR")

    def order_by(self, *, reverse: bool = False) -> list[str]:
        if not reverse:
            return list(self.columns)
        return [c[1:] if c.startswith("-") else f"-{c}" for c in self.columns]


ID_ASCENDING = Order(("id",))
ID_DESCENDING = Order(("-id",))


@dataclass(frozen=True)
class Window:
    """Which rows of a list a page holds: at most `size` after `after` and before `before`,
    the first ones, or the last ones when `backward` (a Relay `last`)."""

    size: int
    after: Key | None = None
    before: Key | None = None
    backward: bool = False


@dataclass
class Page(Generic[T]):
    rows: list[T]
    has_more: bool  # more rows on the side the window was read towards
    total: int


async def keyset_page(
    query: QuerySet[M],
    order: Order,
    window: Window,
    *,
    counted: bool = True,
    columns: Sequence[str] | None = None,
) -> Page[M]:
    """One window of `query` in `order`, with the query's total (before the cursors). With
    `columns`, the rows hold only those and the order's (models/columns.py)."""
    total = await query.count() if counted else 0
    if window.after is not None:
        query = query.filter(order.later(window.after))
    if window.before is not None:
        query = query.filter(order.earlier(window.before))
    if window.size == 0:
        return Page([], await query.exists(), total)
    query = query.order_by(*order.order_by(reverse=window.backward)).limit(window.size + 1)
    if columns is None:
        found = await query
    else:
        found = await read_columns(query, (*order.names, *columns))
    rows = list(found[: window.size])
    if window.backward:
        rows.reverse()
    return Page(rows, len(found) > window.size, total)
