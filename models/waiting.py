"""What a delivery in progress is waiting for: the MTA, while it is down (SPEC §2: "a transient
outage of the MTA is not a failure: the send waits, says what it is waiting for, and goes on by
itself").

The engine writes the state on the delivery row at each failed attempt (`wait_for_mta`) and
clears it in the transaction that records the MTA's next answer (`recovered_in`, called by
`models/relay.py: record_relayed`). The audit trail gets one `WAITING_FOR_MTA` per outage and
one `MTA_RECOVERED`, not one event per retry. A status change away from IN_PROGRESS (pause,
stop, failure, expiry) clears the state too (`Delivery.move`).
"""

from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from models.audit import ENGINE, AuditAction
from models.audit import record as audit
from models.delivery import Delivery
from models.enums import DeliveryStatus, WaitingReason
from models.sql import Sql, parse_ts

WAITING_FIELDS = (
    "waiting_reason",
    "waiting_since",
    "waiting_retry_at",
    "waiting_attempts",
    "waiting_cause",
)


async def wait_for_mta(delivery_id: int, cause: str, retry_at: datetime, now: datetime) -> bool:
    """Another attempt failed for a transient reason: the delivery waits until `retry_at`.
    Returns False when the delivery is no longer sending (nothing written)."""
    async with in_transaction():
        delivery = await Delivery.select_for_update().get_or_none(id=delivery_id)
        if delivery is None or delivery.status is not DeliveryStatus.IN_PROGRESS:
            return False
        first = delivery.waiting_since is None
        delivery.waiting_reason = WaitingReason.MTA_UNAVAILABLE
        delivery.waiting_since = delivery.waiting_since or now
        delivery.waiting_retry_at = retry_at
        delivery.waiting_attempts += 1
        delivery.waiting_cause = cause[:100]
        await delivery.save(update_fields=list(WAITING_FIELDS))
        if first:
            await audit(
                AuditAction.WAITING_FOR_MTA,
                ENGINE,
                delivery=delivery,
                at=now,
                detail={"cause": delivery.waiting_cause, "retryAt": retry_at.isoformat()},
            )
    return True


async def recovered_in(sql: Sql, delivery_id: int, now: datetime) -> bool:
    """Inside a transaction that holds the delivery's row lock: the MTA answered, so the
    delivery no longer waits. Returns True when it was waiting (and records the recovery)."""
    rows = await sql.rows(
        "SELECT waiting_since, waiting_attempts FROM delivery WHERE id = ?"
        " AND waiting_since IS NOT NULL",
        [delivery_id],
    )
    if not rows:
        return False
    await sql.execute(
        "UPDATE delivery SET waiting_reason = NULL, waiting_since = NULL, waiting_retry_at = NULL,"
        " waiting_attempts = 0, waiting_cause = NULL WHERE id = ?",
        [delivery_id],
    )
    since = parse_ts(rows[0]["waiting_since"])
    detail: dict[str, Any] = {"attempts": rows[0]["waiting_attempts"]}
    if since is not None:
        detail["since"] = since.isoformat()
        detail["waitedSeconds"] = round(max(0.0, (now - since).total_seconds()), 1)
    await audit(
        AuditAction.MTA_RECOVERED,
        ENGINE,
        delivery=await Delivery.get(id=delivery_id),
        at=now,
        detail=detail,
    )
    return True
