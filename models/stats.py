"""Recounting KPIs from the logs: `computeStats` and the periodic open/click refresh (SPEC §5)."""

from datetime import datetime

from tortoise.transactions import in_transaction

from models.delivery import Delivery
from models.errors import NotFound
from models.kpis import Kpis
from models.sql import Sql
from models.tracking import count_opens_and_clicks


async def recount(sql: Sql, delivery_id: int) -> dict[str, int]:
    """Every counter of a delivery as the sending and tracking logs say, in two queries (a
    recipient who complained or unsubscribed twice counts once: the log keeps the first time)."""
    rows = await sql.rows(
        "SELECT status, COUNT(*) AS n, COUNT(complained_at) AS complaints,"
        " COUNT(unsubscribed_at) AS unsubscriptions FROM sending_log"
        " WHERE delivery_id = ? AND excluded = ? GROUP BY status",
        [delivery_id, False],
    )
    by_status = {r["status"]: int(r["n"]) for r in rows}
    opens, clicks = await count_opens_and_clicks(sql, delivery_id)
    sent, pending, failed = (by_status.get(s, 0) for s in ("SENT", "PENDING", "FAILED"))
    return {
        "to_send": sum(by_status.values()),
        "processed": sent + pending + failed,
        "sent": sent,
        "pending": pending,
        "failed": failed,
        "opens": opens,
        "clicks": clicks,
        "complaints": sum(int(r["complaints"]) for r in rows),
        "unsubscriptions": sum(int(r["unsubscriptions"]) for r in rows),
    }


async def compute_stats(delivery_id: int, now: datetime) -> Kpis:
    """Recompute every KPI at once from the logs and store it (the documented remedy)."""
    async with in_transaction() as conn:
        sql = Sql(conn)
        delivery = await Delivery.select_for_update().get_or_none(id=delivery_id)
        if delivery is None:
            raise NotFound(f"no delivery with id {delivery_id}")
        figures = await recount(sql, delivery_id)
        delivery.update_from_dict({**figures, "stats_computed_at": now})
        await delivery.save(update_fields=[*figures, "stats_computed_at", "updated_at"])
    return delivery.kpis


async def refresh_tracking(delivery_id: int) -> bool:
    """Refresh opens and clicks from the tracking logs; True when they changed."""
    async with in_transaction() as conn:
        sql = Sql(conn)
        opens, clicks = await count_opens_and_clicks(sql, delivery_id)
        changed = await sql.execute(
            "UPDATE delivery SET opens = ?, clicks = ?"
            " WHERE id = ? AND (opens <> ? OR clicks <> ?)",
            [opens, clicks, delivery_id, opens, clicks],
        )
    return changed > 0
