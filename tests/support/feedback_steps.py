"""Steps shared by the feedback tests: the walks of the two SPEC §4 tables (test_feedback_efs /
_legacy) and the opt-outs (complaints, unsubscribes) of every provider."""

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


OPT_OUT_KPIS = "toSend sent complaints unsubscriptions complaintRate"


async def opt_out_kpis(api: Api, delivery_id: str) -> dict[str, Any]:
    data = await api.gql(
        f"query($d: ID!) {{ kpis(deliveryId: $d) {{ {OPT_OUT_KPIS} }} }}", {"d": delivery_id}
    )
    return data["kpis"]  # type: ignore[no-any-return]


async def recounted(api: Api, delivery_id: str) -> dict[str, Any]:
    """computeStats: what the logs say."""
    data = await api.gql(
        f"mutation($d: ID!) {{ computeStats(deliveryId: $d) {{ {OPT_OUT_KPIS} }} }}",
        {"d": delivery_id},
        as_="starter",
    )
    return data["computeStats"]  # type: ignore[no-any-return]


async def standing(api: Api, address: str) -> dict[str, Any] | None:
    data = await api.gql(
        "query($a: String!) { addressStatus(address: $a) { denylisted denylistReason"
        " denylistedAt quarantined } }",
        {"a": address},
    )
    return data["addressStatus"]  # type: ignore[no-any-return]


async def log_marks(api: Api, delivery_id: str) -> dict[str, tuple[Any, Any, Any]]:
    """address -> (status, complainedAt, unsubscribedAt)."""
    data = await api.gql(
        "query($d: ID!) { sendingLogs(deliveryId: $d, first: 500) { edges { node { address"
        " status complainedAt unsubscribedAt } } } }",
        {"d": delivery_id},
    )
    return {
        e["node"]["address"]: (
            e["node"]["status"],
            e["node"]["complainedAt"],
            e["node"]["unsubscribedAt"],
        )
        for e in data["sendingLogs"]["edges"]
    }


async def excluded_later(api: Api, emails: list[str]) -> dict[str, str]:
    """Prepare a new delivery to these addresses: address -> exclusion reason."""
    ids = await flows.import_profiles(api, emails)  # type: ignore[arg-type]
    created = await flows.create_delivery(api, ids, label="Next offer")
    await flows.prepare(api, created["id"])
    return {
        log["address"]: log["failureReason"]
        for log in await flows.logs(api, created["id"])
        if log["excluded"]
    }


async def report_all(api: Api, *events: dict[str, Any]) -> None:
    """Post `events` as one signed batch: every one is new and taken."""
    response = await api.feedback(list(events))
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": len(events), "duplicates": 0, "unknown": 0}
