"""Tracking logs: opens and clicks. Rates count distinct recipients; a click proves an open."""

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

from models.sql import Sql, in_list
from models.template import links_of

if TYPE_CHECKING:
    from models.delivery import Delivery
    from models.sending_log import SendingLog


class TrackingKind(StrEnum):
    OPEN = "OPEN"
    CLICK = "CLICK"


# One row per recipient and open, or per recipient and link clicked: the first hit's time, the
# latest's, and how many there were. Repeated hits update the row, so a recipient (or a script)
# loading the pixel 5,000 times costs one row, not 5,000.
class TrackingLog(Model):
    id = fields.IntField(primary_key=True)
    delivery: fields.ForeignKeyRelation["Delivery"] = fields.ForeignKeyField(
        "models.Delivery", related_name="tracking_logs", on_delete=fields.CASCADE
    )
    sending_log: fields.ForeignKeyRelation["SendingLog"] = fields.ForeignKeyField(
        "models.SendingLog", related_name="tracking_logs", on_delete=fields.CASCADE
    )
    kind = fields.CharEnumField(TrackingKind, max_length=8, description="kind")
    # The clicked link's index in the delivery's body; 0 for an open. (Clicks stored before
    # rows were merged have negative numbers, one per distinct url of their recipient.)
    link = fields.IntField(default=0, db_default=0)
    url = fields.TextField(null=True)
    at = fields.DatetimeField()  # the first hit
    last_at = fields.DatetimeField(null=True)  # the latest hit (always written)
    hits = fields.IntField(default=1, db_default=1)

    delivery_id: int
    sending_log_id: int

    class Meta:
        table = "tracking_log"
        # (delivery_id, id): the CSV export's keyset pages (models/exports.py).
        indexes = (("delivery_id", "kind", "sending_log_id"), ("delivery_id", "id"))
        unique_together = (("sending_log_id", "kind", "link"),)


# Distinct recipients with tracking logs, and those who clicked, over a FROM clause.
_DISTINCT = (
    "SELECT COUNT(DISTINCT t.sending_log_id) AS opens,"
    " COUNT(DISTINCT CASE WHEN t.kind = 'CLICK' THEN t.sending_log_id END) AS clicks FROM "
)


async def count_opens_and_clicks(
    sql: Sql, delivery_id: int, mostly_sent: bool = True
) -> tuple[int, int]:
    """Distinct recipients whose log is SENT who opened (or clicked, which proves an open), and
    who clicked (SPEC §5). A hit on a log that is not SENT (an EFS message whose delivery report
    has not come, or one that failed) stays in the tracking logs and counts once its log is.

    A join of every tracking log with its sending log costs 2 s on a million-log delivery
    (bench/kpi_query.py), so the count starts from the smaller side: when most logs are SENT
    (`mostly_sent`, the caller knows from the counters) it is every recipient with tracking
    logs (no join) less those whose log is not SENT; otherwise the SENT logs joined with their
    tracking logs."""
    if not mostly_sent:
        rows = await sql.rows(
            _DISTINCT + "sending_log s JOIN tracking_log t ON t.sending_log_id = s.id"
            " WHERE s.delivery_id = ? AND s.status = 'SENT'",
            [delivery_id],
        )
        return int(rows[0]["opens"] or 0), int(rows[0]["clicks"] or 0)
    every = await sql.rows(_DISTINCT + "tracking_log t WHERE t.delivery_id = ?", [delivery_id])
    not_sent = await sql.rows(
        _DISTINCT + "sending_log s JOIN tracking_log t ON t.sending_log_id = s.id"
        " WHERE s.delivery_id = ? AND s.status IN ('TO_SEND', 'PENDING', 'FAILED', 'IGNORED')",
        [delivery_id],
    )
    opens = int(every[0]["opens"] or 0) - int(not_sent[0]["opens"] or 0)
    clicks = int(every[0]["clicks"] or 0) - int(not_sent[0]["clicks"] or 0)
    return max(opens, 0), max(clicks, 0)


async def tracked_logs(sql: Sql, log_ids: list[int]) -> dict[int, bool]:
    """Of these logs, those with tracking logs: log id -> whether one is a click."""
    found: dict[int, bool] = {}
    for start in range(0, len(log_ids), 1000):
        chunk = log_ids[start : start + 1000]
        rows = await sql.rows(
            "SELECT sending_log_id, MAX(CASE WHEN kind = 'CLICK' THEN 1 ELSE 0 END) AS clicked"
            " FROM tracking_log WHERE sending_log_id IN "
            + in_list(chunk)
            + " GROUP BY sending_log_id",
            chunk,
        )
        found.update({int(r["sending_log_id"]): bool(r["clicked"]) for r in rows})
    return found


# Tracking ids: "<delivery>.<log>[.<link>].<signature>", the signature an HMAC-SHA256 of the
# kind and the numbers, truncated to 128 bits. Ids cannot be guessed or edited into another
# recipient's or another link's, and checking one needs no database read.
class TokenKind(StrEnum):
    OPEN = "o"
    CLICK = "c"
    UNSUBSCRIBE = "u"


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    delivery_id: int
    log_id: int
    link: int | None = None


def _signature(key: str, kind: TokenKind, numbers: str) -> str:
    digest = hmac.new(key.encode(), f"{kind.value}:{numbers}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def make_token(key: str, token: Token) -> str:
    numbers = f"{token.delivery_id}.{token.log_id}"
    if token.link is not None:
        numbers += f".{token.link}"
    return f"{numbers}.{_signature(key, token.kind, numbers)}"


_TOKEN = re.compile(r"^(\d{1,18})\.(\d{1,18})(?:\.(\d{1,6}))?\.([A-Za-z0-9_-]{22})$")


def read_token(key: str, kind: TokenKind, text: str) -> Token | None:
    """The token's numbers if `text` is a well-formed id of this kind signed with `key`."""
    match = _TOKEN.match(text)
    if match is None:
        return None
    delivery, log, link, signature = match.groups()
    if (link is None) != (kind is not TokenKind.CLICK):
        return None
    numbers = text.rsplit(".", 1)[0]
    if not hmac.compare_digest(_signature(key, kind, numbers), signature):
        return None
    return Token(kind, int(delivery), int(log), int(link) if link is not None else None)


def tracking_url(public_url: str, key: str, token: Token) -> str:
    return f"{public_url.rstrip('/')}/{TRACKING_PATHS[token.kind]}/{make_token(key, token)}"


# Where each kind of id is served (server/http/tracking.py mounts these paths).
TRACKING_PATHS = {TokenKind.OPEN: "t/o", TokenKind.CLICK: "t/c", TokenKind.UNSUBSCRIBE: "u"}


# ---- Recording and reading tracking logs (the open pixel and the click redirect) -------------

# The largest id a tracking token may carry: the id columns are 32-bit integers, and a number
# beyond them would make the whole batched INSERT fail on PostgreSQL.
MAX_ID = 2**31 - 1
# Rows per INSERT statement: 8 parameters each keeps a statement far below SQLite's limit.
ROWS_PER_STATEMENT = 1000


def token_in_range(token: Token) -> bool:
    return token.delivery_id <= MAX_ID and token.log_id <= MAX_ID


@dataclass(frozen=True)
class Hit:
    """One open or click, as the endpoint saw it; stored later, in a batch."""

    delivery_id: int
    log_id: int
    kind: TrackingKind
    at: datetime
    url: str | None = None
    link: int = 0  # the clicked link's index; 0 for an open

    @property
    def key(self) -> tuple[int, TrackingKind, int]:
        """What a tracking log row stands for (its unique key)."""
        return (self.log_id, self.kind, self.link)


@dataclass
class Tally:
    """The hits of one key waiting to be stored: the first, the latest and how many."""

    first: Hit
    last_at: datetime
    hits: int = 1

    @classmethod
    def of(cls, hit: Hit) -> "Tally":
        return cls(hit, hit.at)

    def add(self, hit: Hit) -> None:
        self.hits += 1
        self.last_at = max(self.last_at, hit.at)


LATEST = "COALESCE(tracking_log.last_at, tracking_log.at)"
# A sending log `s` whose message reached the MTA, or is on its way (claimed: it has its
# message id). Only such a message can be opened, clicked or unsubscribed from by its
# recipient; a hit on any other comes from a preview (previewDelivery shows the very URLs).
HANDED_OVER = "NOT (s.status = 'TO_SEND' AND s.message_id IS NULL)"
# A counter that reaches this stops counting: a row never overflows its 32-bit column.
MAX_HITS = 2**31 - 1


async def record_hits(sql: Sql, tallies: Sequence[Tally]) -> int:
    """Store tallies, one row per key: a new key inserts its row, a known one adds its hits
    to the row's counter and moves `last_at` (INSERT ... ON CONFLICT DO UPDATE, multi-row).
    Only tallies whose sending log still exists in the hit's delivery, and was handed to the
    MTA, are kept (a delivery deleted meanwhile loses its hits, silently; a hit on a message
    never sent comes from a preview of it, models/proofs.py, and is no recipient's).
    Returns the number of hits stored.

    Rows are written in key order, so that two processes storing the same keys lock them in
    the same order and cannot deadlock.
    """
    merged: dict[tuple[int, TrackingKind, int], Tally] = {}
    for tally in tallies:
        known = merged.get(tally.first.key)
        if known is None:
            merged[tally.first.key] = Tally(tally.first, tally.last_at, tally.hits)
        else:  # one statement may not touch a row twice
            known.hits += tally.hits
            known.last_at = max(known.last_at, tally.last_at)
    ordered = [merged[key] for key in sorted(merged)]
    stored = 0
    # VALUES columns are named column1..column8 on both SQLite and PostgreSQL. PostgreSQL types
    # untyped VALUES parameters as text, hence the casts (harmless on SQLite).
    at = "CAST(? AS TIMESTAMPTZ)" if sql.postgres else "?"
    row = f"(CAST(? AS INTEGER), CAST(? AS INTEGER), ?, CAST(? AS INTEGER), ?, {at}, {at},"
    row += " CAST(? AS INTEGER))"
    for start in range(0, len(ordered), ROWS_PER_STATEMENT):
        chunk = ordered[start : start + ROWS_PER_STATEMENT]
        params: list[Any] = []
        for tally in chunk:
            hit = tally.first
            params += [hit.delivery_id, hit.log_id, hit.kind.value, hit.link, hit.url]
            params += [sql.ts(hit.at), sql.ts(tally.last_at), min(tally.hits, MAX_HITS)]
        # RETURNING names the rows: tortoise reads an INSERT's count wrong on PostgreSQL.
        written = await sql.rows(
            "INSERT INTO tracking_log"
            " (delivery_id, sending_log_id, kind, link, url, at, last_at, hits)"
            " SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6,"
            " v.column7, v.column8"
            " FROM (VALUES " + ",".join([row] * len(chunk)) + ") AS v"
            " WHERE EXISTS (SELECT 1 FROM sending_log s"
            " WHERE s.id = v.column2 AND s.delivery_id = v.column1 AND " + HANDED_OVER + ")"
            " ON CONFLICT (sending_log_id, kind, link) DO UPDATE SET"
            f" hits = CASE WHEN tracking_log.hits >= {MAX_HITS} - excluded.hits THEN {MAX_HITS}"
            " ELSE tracking_log.hits + excluded.hits END,"
            " at = CASE WHEN excluded.at < tracking_log.at THEN excluded.at"
            " ELSE tracking_log.at END,"
            f" last_at = CASE WHEN excluded.last_at > {LATEST} THEN excluded.last_at"
            f" ELSE {LATEST} END"
            " RETURNING sending_log_id, kind, link",
            params,
        )
        for r in written:
            key = (int(r["sending_log_id"]), TrackingKind(r["kind"]), int(r["link"]))
            stored += merged[key].hits
    return stored


async def deliveries_tracked_since(after_id: int) -> tuple[set[int], int]:
    """Deliveries with tracking logs newer than `after_id`, and the newest id seen."""
    rows = await Sql().rows(
        "SELECT delivery_id, MAX(id) AS last FROM tracking_log WHERE id > ? GROUP BY delivery_id",
        [after_id],
    )
    return {r["delivery_id"] for r in rows}, max([after_id, *(int(r["last"]) for r in rows)])


async def tracking_counts(sql: Sql, delivery_id: int) -> dict[TrackingKind, int]:
    """Hits per kind (every open and click counted, not distinct recipients)."""
    rows = await sql.rows(
        "SELECT kind, SUM(hits) AS n FROM tracking_log WHERE delivery_id = ? GROUP BY kind",
        [delivery_id],
    )
    counts = dict.fromkeys(TrackingKind, 0)
    counts.update({TrackingKind(r["kind"]): int(r["n"]) for r in rows})
    return counts


@dataclass(frozen=True)
class Recipient:
    delivery_id: int
    log_id: int
    address: str
    profile_id: int | None


async def recipient_of(sql: Sql, delivery_id: int, log_id: int) -> Recipient | None:
    """The sending log a token names, if it still exists in that delivery."""
    rows = await sql.rows(
        "SELECT address, profile_id FROM sending_log WHERE id = ? AND delivery_id = ?",
        [log_id, delivery_id],
    )
    if not rows:
        return None
    return Recipient(delivery_id, log_id, rows[0]["address"], rows[0]["profile_id"])


@dataclass(frozen=True)
class DeliveryLinks:
    links: tuple[str, ...]
    # True once the delivery can be neither edited nor deleted: its links never change again,
    # so they may be cached for as long as one likes.
    final: bool


async def delivery_links(sql: Sql, delivery_id: int) -> DeliveryLinks | None:
    """The tracked links of a delivery's own body, by index (None: no such delivery)."""
    from models.delivery import LIFECYCLE

    rows = await sql.rows("SELECT body, status FROM delivery WHERE id = ?", [delivery_id])
    if not rows:
        return None
    changeable = LIFECYCLE["edit"][0] | LIFECYCLE["delete"][0]
    return DeliveryLinks(tuple(links_of(rows[0]["body"])), rows[0]["status"] not in changeable)
