"""A delivery's KPIs over time (`Delivery.kpiHistory`), so that a dashboard opened in the middle
of a send draws the whole chart.

Points are written by the same statement sequence that moves the counters (models/relay.py:
`add_to_counters`, and `computeStats`), so the history never says what the counters did not.
They are coalesced and bounded:

- one point per delivery and POINT_SECONDS-long slot: the first write of a slot (in a process)
  stores the figures of that moment, and later writes of the same slot cost nothing (a dict
  look-up: a busy send writes one row per slot, not one per batch). What happened since the
  last point is the delivery's current figures, which `Delivery.kpiHistory` appends when they
  differ from the last point (graphql_schema/deliveries/types.py), so a chart always ends at
  the live figures;
- at most MAX_POINTS per delivery: when a new slot would go beyond, every other point of the
  older half is dropped (the first point stays), so old stretches get coarser and recent ones
  stay fine, whatever the length of the validity period.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from models.kpis import COUNTERS
from models.sql import Sql, in_list

if TYPE_CHECKING:
    from models.delivery import Delivery

POINT_SECONDS = 5
MAX_POINTS = 300


class KpiPoint(Model):
    id = fields.IntField(primary_key=True)
    delivery: fields.ForeignKeyRelation["Delivery"] = fields.ForeignKeyField(
        "models.Delivery", related_name="kpi_points", on_delete=fields.CASCADE
    )
    slot = fields.BigIntField()  # epoch seconds // POINT_SECONDS
    at = fields.DatetimeField()  # when the figures were last written
    to_send = fields.IntField(default=0)
    processed = fields.IntField(default=0)
    sent = fields.IntField(default=0)
    pending = fields.IntField(default=0)
    failed = fields.IntField(default=0)
    opens = fields.IntField(default=0)
    clicks = fields.IntField(default=0)
    complaints = fields.IntField(default=0)
    unsubscriptions = fields.IntField(default=0)

    delivery_id: int

    class Meta:
        table = "kpi_point"
        unique_together = (("delivery_id", "slot"),)


# The slot each delivery (the key the caller names) last wrote in this process: a write in the
# same slot is skipped, and the thinning check runs only when a delivery starts a new slot. A
# cache: a miss costs one upsert and one small read.
_last_slot: dict[int, int] = {}
_CACHE_SIZE = 10_000


def forget_slots() -> None:
    """Clear the memo: called when a process opens its database, so that the ids of another
    database (a test's, a restored copy's) never skip a write."""
    _last_slot.clear()


_COLUMNS = ", ".join(COUNTERS)
_UPDATES = ", ".join(f"{name} = excluded.{name}" for name in ("at", *COUNTERS))


async def record_points(
    sql: Sql, where: str, params: Sequence[object], key: int | None = None
) -> None:
    """Write the current figures of the deliveries `WHERE <where>` selects (on the delivery
    table) into their current slot, inside the caller's transaction. With `key` (the delivery
    whose write this is), only the first write of the slot does anything."""
    now = datetime.now(UTC)
    slot = int(now.timestamp()) // POINT_SECONDS
    if key is not None and _last_slot.get(key) == slot:
        return
    at = "CAST(? AS TIMESTAMPTZ)" if sql.postgres else "?"
    rows = await sql.rows(
        f"INSERT INTO kpi_point (delivery_id, slot, at, {_COLUMNS})"
        # (the WHERE also keeps SQLite's parser from reading ON CONFLICT as a join's ON)
        f" SELECT id, ?, {at}, {_COLUMNS} FROM delivery WHERE {where} ORDER BY id DESC"
        f" ON CONFLICT (delivery_id, slot) DO UPDATE SET {_UPDATES} RETURNING delivery_id",
        [slot, sql.ts(now), *params],
    )
    if len(_last_slot) >= _CACHE_SIZE:
        _last_slot.clear()
    if key is not None:
        _last_slot[key] = slot
    for row in rows:
        await _thin(sql, int(row["delivery_id"]))


async def _thin(sql: Sql, delivery_id: int) -> None:
    rows = await sql.rows(
        "SELECT id FROM kpi_point WHERE delivery_id = ? ORDER BY slot", [delivery_id]
    )
    if len(rows) <= MAX_POINTS:
        return
    older = [int(r["id"]) for r in rows[: len(rows) // 2]]
    dropped = older[1::2]  # every other one, the first kept
    for start in range(0, len(dropped), 500):
        chunk = dropped[start : start + 500]
        await sql.execute("DELETE FROM kpi_point WHERE id IN " + in_list(chunk), chunk)
