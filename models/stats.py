"""Recounting KPIs from the logs: `computeStats` and the periodic open/click refresh (SPEC §5).

A recurring delivery has no logs of its own: its counters are the sums of its occurrences'
(`recurring_sums`), moved live with each occurrence's (models/relay.py: `add_to_counters`).
`compute_stats` on it recounts every occurrence, then stores the sums.
"""

from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from models.delivery import Delivery
from models.errors import NotFound
from models.kpi_history import record_points
from models.kpis import COUNTERS, Kpis
from models.relay import add_to_counters
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
    sent, pending, failed = (by_status.get(s, 0) for s in ("SENT", "PENDING", "FAILED"))
    mostly_sent = 2 * sent >= sum(by_status.values())
    opens, clicks = await count_opens_and_clicks(sql, delivery_id, mostly_sent)
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


async def recurring_sums(sql: Sql, parent_id: int) -> dict[str, int] | None:
    """The sums of the stored counters of a recurring delivery's occurrences (SPEC §5: the
    product counts an occurrence's messages on the recurring delivery too); None when it has no
    occurrence yet (its own figures are then its preparation's: what one occurrence targets)."""
    sums = ", ".join(f"COALESCE(SUM({name}), 0) AS {name}" for name in COUNTERS)
    rows = await sql.rows(
        f"SELECT COUNT(*) AS occurrences, {sums} FROM delivery WHERE parent_id = ?", [parent_id]
    )
    if not rows or not int(rows[0]["occurrences"]):
        return None
    return {name: int(rows[0][name]) for name in COUNTERS}


async def compute_stats(delivery_id: int, now: datetime) -> Kpis:
    """Recompute every KPI at once from the logs and store it (the documented remedy). On a
    recurring delivery: every occurrence, then the sums."""
    async with in_transaction() as conn:
        sql = Sql(conn)
        found = await Delivery.get_or_none(id=delivery_id)
        if found is None:
            raise NotFound(f"no delivery with id {delivery_id}")
        if not found.is_recurring:
            return await _recount_one(sql, delivery_id, now)
        # The occurrences first, in id order, then the recurring delivery: the order in which
        # counter updates lock them (models/relay.py: AND_ITS_PARENT).
        occurrences = await (
            Delivery.select_for_update().filter(parent_id=delivery_id).order_by("id")
        )
        for occurrence in occurrences:
            await _recount_one(sql, occurrence.id, now)
        parent = await Delivery.select_for_update().get(id=delivery_id)
        sums = await recurring_sums(sql, delivery_id)
        values: dict[str, Any] = {"stats_computed_at": now}
        if sums is not None:
            values.update(sums)
        parent.update_from_dict(values)
        await parent.save(update_fields=[*values, "updated_at"])
        await record_points(sql, "id = ?", [delivery_id])
    return parent.kpis


async def _recount_one(sql: Sql, delivery_id: int, now: datetime) -> Kpis:
    """Recount a delivery that has logs, and move its counters (and so its recurring
    delivery's sums) by what the recount corrects."""
    delivery = await Delivery.select_for_update().get_or_none(id=delivery_id)
    if delivery is None:
        raise NotFound(f"no delivery with id {delivery_id}")
    figures = await recount(sql, delivery_id)
    deltas = {name: figures[name] - getattr(delivery, name) for name in COUNTERS}
    await add_to_counters(sql, delivery_id, deltas)
    await sql.execute(
        "UPDATE delivery SET stats_computed_at = ? WHERE id = ?", [sql.ts(now), delivery_id]
    )
    delivery.update_from_dict({**figures, "stats_computed_at": now})
    return delivery.kpis


async def refresh_tracking(delivery_id: int) -> bool:
    """Refresh opens and clicks from the tracking logs; True when they changed."""
    async with in_transaction() as conn:
        return await recount_tracking(Sql(conn), delivery_id)


async def recount_tracking(sql: Sql, delivery_id: int) -> bool:
    """Opens and clicks as the tracking logs of SENT logs say, inside the caller's transaction
    (the refresh, and the end of the validity period, which moves LEGACY logs out of SENT)."""
    rows = await sql.rows(
        "SELECT opens, clicks, sent, to_send,"
        " EXISTS (SELECT 1 FROM delivery c WHERE c.parent_id = d.id)"
        " AS recurring FROM delivery d WHERE d.id = ?" + sql.for_update(),
        [delivery_id],
    )
    if not rows or rows[0]["recurring"]:
        return False  # gone, or recurring: its figures are its occurrences' sums
    mostly_sent = 2 * int(rows[0]["sent"]) >= int(rows[0]["to_send"])
    opens, clicks = await count_opens_and_clicks(sql, delivery_id, mostly_sent)
    deltas = {"opens": opens - int(rows[0]["opens"]), "clicks": clicks - int(rows[0]["clicks"])}
    await add_to_counters(sql, delivery_id, deltas)
    return any(deltas.values())
