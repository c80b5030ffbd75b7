"""Reads for many parents at once, so that a page of deliveries or logs costs a few queries, not
one or two per row: the API's data loaders (graphql_schema/loaders.py) gather the parents one
execution asks about and call these.

A page of children per parent is a keyset page (ids after a cursor, in id order or newest first),
read with one statement for many parents: a UNION ALL of one `ORDER BY id LIMIT n` per parent,
each served by the (parent, id) index like a single page, on SQLite and PostgreSQL alike.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

from tortoise.models import Model

from models.sql import Sql, in_list

M = TypeVar("M", bound=Model)
# Parents per statement: SQLite allows 500 terms in a compound SELECT.
CHUNK = 200


@dataclass(frozen=True)
class PageRequest:
    parent: int
    limit: int  # rows to read (a page asks for one more, to know whether another follows)
    after: int | None = None  # the keyset: ids after this one in the list's order
    where: tuple[tuple[str, Any], ...] = ()  # more conditions on columns (see `condition`)
    before: int | None = None  # and before this one
    backward: bool = False  # the last rows of the window (a Relay `last`), not the first


def _param(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def condition(name: str, value: Any) -> tuple[str, list[Any]]:
    """One condition of a `where`: `column` is equal, `column__in` one of a tuple, and
    `column__contains` holds a case-insensitive part (with % and _ as plain characters)."""
    column, _, operator = name.partition("__")
    if operator == "in":
        return f"{column} IN {in_list(value)}", [_param(v) for v in value]
    if operator == "contains":
        escaped = str(value).lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return f"LOWER({column}) LIKE ? ESCAPE '\\'", [f"%{escaped}%"]
    return f"{column} = ?", [_param(value)]


def conditions(where: Iterable[tuple[str, Any]]) -> tuple[list[str], list[Any]]:
    sql: list[str] = []
    params: list[Any] = []
    for name, value in where:
        text, values = condition(name, value)
        sql.append(text)
        params += values
    return sql, params


async def child_pages(
    model: type[M], column: str, requests: Iterable[PageRequest], *, newest_first: bool = False
) -> dict[PageRequest, list[M]]:
    """The rows of each request in the order read: the list's order, or its reverse for a
    backward request (which reads the last rows of its window). One statement reads the rows
    themselves, not their ids and then the rows (one query and one tortoise query less)."""
    wanted = [r for r in dict.fromkeys(requests) if r.limit > 0]
    table = model._meta.db_table
    names = ", ".join(sorted(model._meta.db_fields))
    found: dict[PageRequest, list[M]] = {r: [] for r in wanted}
    later, earlier = ("<", ">") if newest_first else (">", "<")
    sql = Sql()
    for start in range(0, len(wanted), CHUNK):
        parts, params = [], []
        for index, r in enumerate(wanted[start : start + CHUNK]):
            extra, values = conditions(r.where)
            terms = [f"{column} = ?", *extra]
            params += [r.parent, *values]
            for key, sign in ((r.after, later), (r.before, earlier)):
                if key is not None:
                    terms.append(f"id {sign} ?")
                    params.append(key)
            params.append(r.limit)
            order = "DESC" if newest_first != r.backward else "ASC"
            parts.append(
                f"SELECT * FROM (SELECT {names}, {index} AS k_ FROM {table} WHERE"
                f" {' AND '.join(terms)} ORDER BY id {order} LIMIT ?) AS p{index}"
            )
        for row in await sql.rows(" UNION ALL ".join(parts), params):
            found[wanted[start + int(row["k_"])]].append(model._init_from_db(**row))
    for r, rows in found.items():  # UNION ALL keeps no order between its parts' rows
        rows.sort(key=_id_of, reverse=newest_first != r.backward)
    return found


def _id_of(row: Model) -> Any:
    return row.pk


async def child_counts(
    model: type[Model], column: str, parents: Sequence[int], where: Mapping[str, Any] = {}
) -> dict[int, int]:
    """How many rows each parent has (0 for none)."""
    counts = dict.fromkeys(parents, 0)
    if not parents:
        return counts
    table = model._meta.db_table
    extra, values = conditions(where.items())
    terms = "".join(f" AND {text}" for text in extra)
    params = [*parents, *values]
    rows = await Sql().rows(
        f"SELECT {column} AS parent, COUNT(*) AS n FROM {table} WHERE {column} IN"
        f" {in_list(parents)}{terms} GROUP BY {column}",
        params,
    )
    for row in rows:
        counts[int(row["parent"])] = int(row["n"])
    return counts
