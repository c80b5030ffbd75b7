"""A delivery's sending logs and tracking logs, page after page, for the CSV exports.

Keyset pages (`id > last ORDER BY id LIMIT n`, on the `(delivery_id, id)` indexes): each page
is one short query, whatever the number of logs, so an export of a million rows holds one page
in memory and never keeps a transaction (or SQLite's one connection) for long. Each row appears
once, as it was when its page was read: a log that changes during the export shows either
state, never both.
"""

from collections.abc import AsyncIterator, Callable
from typing import Any

from models.delivery import Delivery
from models.errors import NotFound
from models.sql import Sql, parse_ts

PAGE_ROWS = 5000

SENDING_LOG_COLUMNS = (
    "id",
    "address",
    "profile_id",
    "status",
    "excluded",
    "failure_type",
    "failure_reason",
    "message_id",
    "retries",
    "event_at",
    "complained_at",
    "unsubscribed_at",
)
TRACKING_LOG_COLUMNS = (
    "id",
    "sending_log_id",
    "address",
    "kind",
    "link",
    "url",
    "at",
    "last_at",
    "hits",
)
_TIMES = {"event_at", "complained_at", "unsubscribed_at", "at", "last_at"}
_CONVERTED = _TIMES | {"excluded"}

_QUERIES = {
    "sending": (
        f"SELECT {', '.join(SENDING_LOG_COLUMNS)} FROM sending_log"
        " WHERE delivery_id = ? AND id > ? ORDER BY id LIMIT ?"
    ),
    "tracking": (
        "SELECT t.id, t.sending_log_id, s.address, t.kind, t.link, t.url, t.at, t.last_at,"
        " t.hits FROM tracking_log t JOIN sending_log s ON s.id = t.sending_log_id"
        " WHERE t.delivery_id = ? AND t.id > ? ORDER BY t.id LIMIT ?"
    ),
}


def _cell(name: str) -> Callable[[Any], Any]:
    if name in _TIMES:
        return lambda v: None if v is None else parse_ts(v).isoformat()  # type: ignore[union-attr]
    return lambda v: "true" if v else "false"  # excluded


async def check_delivery(delivery_id: int) -> None:
    if not await Delivery.exists(id=delivery_id):
        raise NotFound(f"no delivery with id {delivery_id}")


async def log_pages(
    kind: str, delivery_id: int, page_rows: int = PAGE_ROWS
) -> AsyncIterator[list[list[Any]]]:
    """The delivery's `kind` ("sending" or "tracking") logs in id order, a page at a time,
    each row in the order of the kind's columns, timestamps as ISO 8601 in UTC."""
    columns = SENDING_LOG_COLUMNS if kind == "sending" else TRACKING_LOG_COLUMNS
    # Only the columns that need it are converted: a call per cell was most of the CPU.
    converted = [(i, _cell(name)) for i, name in enumerate(columns) if name in _CONVERTED]
    query, last = _QUERIES[kind], 0
    while True:
        rows = await Sql().rows(query, [delivery_id, last, page_rows])
        if not rows:
            return
        page = [list(row.values()) for row in rows]
        for values in page:
            for i, cell in converted:
                values[i] = cell(values[i])
        yield page
        if len(rows) < page_rows:
            return
        last = int(rows[-1]["id"])
