"""Reusable steps of the operator's journey, through the public API only."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.client import Api

DELIVERY_FIELDS = """
  id label status feedbackMode validityPeriod confirmedBy confirmedAt scheduledAt
  kpis { toSend processed sent pending failed deliveredRate bouncesAndErrorsRate
         opens clicks openRate clickThroughRate statsComputedAt }
"""

BODY = (
    '<p>Hello</p><a href="https://example.com/offer">Offer</a>'
    '<a href="https://example.com/unsubscribe">Unsubscribe</a>'
)


async def import_profiles(api: Api, emails: list[str | None]) -> list[str]:
    data = await api.gql(
        "mutation($p: [ProfileInput!]!) { importProfiles(profiles: $p) { created updated"
        " profiles { id email } } }",
        {"p": [{"email": e, "firstName": f"F{i}"} for i, e in enumerate(emails)]},
    )
    return [p["id"] for p in data["importProfiles"]["profiles"]]


async def create_delivery(api: Api, profile_ids: list[str], **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "label": "Spring offer",
        "channel": "EMAIL",
        "subject": "Hello",
        "body": BODY,
        "audience": {"profileIds": profile_ids},
    }
    payload.update(extra)
    data = await api.gql(
        "mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) {"
        + DELIVERY_FIELDS
        + "} }",
        {"i": payload},
    )
    return data["createDelivery"]  # type: ignore[no-any-return]


async def prepare(api: Api, delivery_id: str) -> dict[str, Any]:
    data = await api.gql(
        f"mutation($id: ID!) {{ prepareDelivery(id: $id) {{ {DELIVERY_FIELDS} }} }}",
        {"id": delivery_id},
    )
    return data["prepareDelivery"]  # type: ignore[no-any-return]


async def confirm(api: Api, delivery_id: str, as_: str = "starter") -> dict[str, Any]:
    data = await api.gql(
        f"mutation($id: ID!) {{ confirmSend(deliveryId: $id) {{ {DELIVERY_FIELDS} }} }}",
        {"id": delivery_id},
        as_=as_,
    )
    return data["confirmSend"]  # type: ignore[no-any-return]


async def delivery(api: Api, delivery_id: str, fields: str = DELIVERY_FIELDS) -> dict[str, Any]:
    data = await api.gql(
        f"query($id: ID!) {{ delivery(id: $id) {{ {fields} }} }}", {"id": delivery_id}
    )
    return data["delivery"]  # type: ignore[no-any-return]


async def logs(api: Api, delivery_id: str, status: str | None = None) -> list[dict[str, Any]]:
    """Every sending log of a delivery, following the cursor pages."""
    out: list[dict[str, Any]] = []
    after = None
    while True:
        data = await api.gql(
            "query($d: ID!, $s: SendingLogStatus, $a: String) { sendingLogs(deliveryId: $d,"
            " status: $s, first: 500, after: $a) { totalCount pageInfo { hasNextPage endCursor }"
            " edges { node { id address status failureType failureReason messageId retries"
            " eventAt excluded } } } }",
            {"d": delivery_id, "s": status, "a": after},
        )
        page = data["sendingLogs"]
        out += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return out
        after = page["pageInfo"]["endCursor"]


async def wait_for(
    api: Api, delivery_id: str, predicate: Any, timeout: float = 20, fields: str = DELIVERY_FIELDS
) -> dict[str, Any]:
    """Poll the delivery (its `fields`) every 50 ms until `predicate` holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        current = await delivery(api, delivery_id, fields)
        if predicate(current):
            return current
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out; last state {current}")
        await asyncio.sleep(0.05)


async def sent_delivery(
    api: Api, emails: list[str | None], **extra: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Import, create, prepare, confirm, and wait until every message is relayed."""
    ids = await import_profiles(api, emails)
    created = await create_delivery(api, ids, **extra)
    await prepare(api, created["id"])
    await confirm(api, created["id"])
    done = await wait_for(api, created["id"], lambda d: d["status"] == "SENT")
    return done, [log for log in await logs(api, created["id"]) if not log["excluded"]]


def addresses(count: int, prefix: str = "efs") -> list[str]:
    """prefix0@example.com, prefix1@example.com, ...: `count` addresses."""
    return [f"{prefix}{i}@example.com" for i in range(count)]


async def delivery_with_ids(
    api: Api, count: int, prefix: str = "efs", **extra: Any
) -> tuple[dict[str, Any], list[str]]:
    """A delivery sent to `addresses(count, prefix)`: the delivery once SENT and each address's
    message id, in order (what a feedback test reports on). `extra` goes to createDelivery."""
    emails = addresses(count, prefix)
    done, sent = await sent_delivery(api, list(emails), **extra)
    by_address = {log["address"]: log["messageId"] for log in sent}
    return done, [by_address[e] for e in emails]


async def efs_delivery(
    api: Api, count: int, prefix: str = "efs", **extra: Any
) -> tuple[str, list[str]]:
    """A delivery in EFS mode sent to `addresses(count, prefix)`: its id and each address's
    message id, in order."""
    done, message_ids = await delivery_with_ids(api, count, prefix, feedbackMode="EFS", **extra)
    assert done["feedbackMode"] == "EFS"
    return done["id"], message_ids


async def feedback_snapshot(
    api: Api, delivery_id: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Everything feedback can change: every log field and every KPI."""
    return await logs(api, delivery_id), (await delivery(api, delivery_id))["kpis"]


def failure_state(log: dict[str, Any]) -> tuple[Any, ...]:
    """A sending log's outcome as one comparable tuple: status, failure type, reason, retries."""
    return log["status"], log["failureType"], log["failureReason"], log["retries"]


async def prepared_delivery(api: Api, emails: list[str | None], **extra: Any) -> dict[str, Any]:
    """Import, create and prepare: the delivery, READY (`extra` goes to createDelivery)."""
    created = await create_delivery(api, await import_profiles(api, emails), **extra)
    return await prepare(api, created["id"])


async def started_delivery(api: Api, emails: list[str | None], **extra: Any) -> str:
    """Import, create, prepare and confirm: the delivery's id (its sending has begun)."""
    prepared = await prepared_delivery(api, emails, **extra)
    await confirm(api, prepared["id"])
    return str(prepared["id"])


async def me(api: Api, as_: str) -> str:
    """The name of the operator whose token is `as_`."""
    return (await api.gql("{ me { name } }", as_=as_))["me"]["name"]  # type: ignore[no-any-return]


async def audit_trail(
    api: Api, delivery_id: str, fields: str = "action actor detail"
) -> list[dict[str, Any]]:
    """A delivery's audit events, oldest first (its first 100)."""
    data = await api.gql(
        "query($id: ID!) { delivery(id: $id) { auditTrail(first: 100) {"
        f" edges {{ node {{ {fields} }} }} }} }} }}",
        {"id": delivery_id},
    )
    return [e["node"] for e in data["delivery"]["auditTrail"]["edges"]]


async def delivery_in(api: Api, status: str, **extra: Any) -> str:
    """A delivery to two addresses (made as admin) in DRAFT, READY, SCHEDULED, IN_PROGRESS or
    PAUSED; its id."""
    ids = await import_profiles(api, ["a@example.com", "b@example.com"])
    if status == "SCHEDULED":
        extra["scheduledAt"] = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    delivery_id: str = (await create_delivery(api, ids, **extra))["id"]
    if status == "DRAFT":
        return delivery_id
    await prepare(api, delivery_id)
    if status == "READY":
        return delivery_id
    await confirm(api, delivery_id, as_="admin")
    if status == "PAUSED":
        await api.gql("mutation($id: ID!) { pauseDelivery(id: $id) { id } }", {"id": delivery_id})
    return delivery_id
