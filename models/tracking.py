"""Tracking logs: opens and clicks. Rates count distinct recipients; a click proves an open."""

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
