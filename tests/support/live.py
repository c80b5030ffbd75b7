"""Live progress: the deploymentProgress subscription and the KPI fields it carries."""

import asyncio

from models.relay import message_id_prefix
from models.sql import Sql

PROGRESS = """
subscription($id: ID!) {
  deploymentProgress(deliveryId: $id) {
    status at
    delivery { id status }
    kpis { toSend processed sent pending failed deliveredRate bouncesAndErrorsRate
           opens clicks openRate clickThroughRate }
  }
}
"""


KPI_FIELDS = [
    "toSend",
    "processed",
    "sent",
    "pending",
    "failed",
    "deliveredRate",
    "bouncesAndErrorsRate",
    "opens",
    "clicks",
    "openRate",
    "clickThroughRate",
]


async def all_reported(delivery_id: str, count: int, timeout: float = 30) -> None:
    """Wait until the MTA's reports on `count` messages of the delivery are recorded (the
    feedback_event rows, written with their effect in one transaction). A test that then moves
    the clock past the validity period (tests/support/clock.py) knows every report counted:
    one that comes after the period is recorded but changes nothing."""
    sql = Sql()
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        rows = await sql.rows(
            "SELECT COUNT(DISTINCT message_id) AS n FROM feedback_event WHERE message_id LIKE ?",
            [message_id_prefix(int(delivery_id)) + "%"],
        )
        if rows[0]["n"] >= count:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{rows[0]['n']} of {count} reported"
        await asyncio.sleep(0.05)
