"""Tracking logs: opens and clicks. Rates count distinct recipients; a click proves an open."""

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from models.sql import Sql

if TYPE_CHECKING:
    from models.delivery import Delivery
    from models.sending_log import SendingLog


class TrackingKind(StrEnum):
    OPEN = "OPEN"
    CLICK = "CLICK"


class TrackingLog(Model):
    id = fields.IntField(primary_key=True)
    delivery: fields.ForeignKeyRelation["Delivery"] = fields.ForeignKeyField(
        "models.Delivery", related_name="tracking_logs", on_delete=fields.CASCADE
    )
    sending_log: fields.ForeignKeyRelation["SendingLog"] = fields.ForeignKeyField(
        "models.SendingLog", related_name="tracking_logs", on_delete=fields.CASCADE
    )
    kind = fields.CharEnumField(TrackingKind, max_length=8, description="kind")
    url = fields.TextField(null=True)
    at = fields.DatetimeField()

    delivery_id: int
    sending_log_id: int

    class Meta:
        table = "tracking_log"
        indexes = (("delivery_id", "kind", "sending_log_id"),)


async def count_opens_and_clicks(sql: Sql, delivery_id: int) -> tuple[int, int]:
    """Distinct recipients who opened (or clicked, which proves an open), and who clicked."""
    rows = await sql.rows(
        "SELECT COUNT(DISTINCT sending_log_id) AS opens,"
        " COUNT(DISTINCT CASE WHEN kind = 'CLICK' THEN sending_log_id END) AS clicks"
        " FROM tracking_log WHERE delivery_id = ?",
        [delivery_id],
    )
    return int(rows[0]["opens"] or 0), int(rows[0]["clicks"] or 0)


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
