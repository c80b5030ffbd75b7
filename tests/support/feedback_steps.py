"""Steps shared by the walks of the two SPEC §4 tables (test_feedback_efs / _legacy)."""

from datetime import datetime
from typing import Any

from tests.support import flows
from tests.support.client import Api, event

KPI_KEYS = ("toSend", "processed", "sent", "pending", "failed")
RATE_KEYS = ("deliveredRate", "bouncesAndErrorsRate")


def kpis(
    to_send: int,
    processed: int,
    sent: int,
    pending: int,
    failed: int,
    delivered: float,
    bounces: float,
) -> dict[str, Any]:
    return {
        "toSend": to_send,
        "processed": processed,
        "sent": sent,
        "pending": pending,
        "failed": failed,
        "deliveredRate": delivered,
        "bouncesAndErrorsRate": bounces,
    }


def log_state(
    status: str, failure_type: str | None = None, reason: str | None = None, retries: int = 0
) -> dict[str, Any]:
    return {
        "status": status,
        "failureType": failure_type,
        "failureReason": reason,
        "retries": retries,
    }


async def current_kpis(api: Api, delivery_id: str) -> dict[str, Any]:
    data = await flows.delivery(api, delivery_id)
    return {k: data["kpis"][k] for k in KPI_KEYS + RATE_KEYS}


async def log_of(api: Api, delivery_id: str, message_id: str) -> dict[str, Any]:
    (log,) = [x for x in await flows.logs(api, delivery_id) if x["messageId"] == message_id]
    return {k: log[k] for k in ("status", "failureType", "failureReason", "retries")}


async def report(
    api: Api, message_id: str, kind: str, reason: str | None = None, at: datetime | None = None
) -> None:
    response = await api.feedback([event(message_id, kind, reason=reason, at=at)])
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 1, "duplicates": 0, "unknown": 0}


async def computed_kpis(api: Api, delivery_id: str) -> dict[str, Any]:
    data = await api.gql(
        "mutation($d: ID!) { computeStats(deliveryId: $d) { toSend processed sent pending failed"
        " deliveredRate bouncesAndErrorsRate } }",
        {"d": delivery_id},
        as_="starter",
    )
    return data["computeStats"]  # type: ignore[no-any-return]
