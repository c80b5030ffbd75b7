"""Live deployment progress over graphql-transport-ws."""

from collections.abc import AsyncGenerator

import strawberry
from strawberry.types import Info

from graphql_schema.context import Context
from graphql_schema.deliveries.types import (
    Delivery,
    DeliveryWaiting,
    DeploymentKpis,
    DeploymentProgress,
)
from graphql_schema.pagination import parse_id
from graphql_schema.permissions import require
from models.lifecycle import get_delivery


@strawberry.type
class DeliverySubscriptions:
    @strawberry.subscription(
        description="A snapshot at once, then one per change (coalesced); completes when the"
        " delivery is FINISHED, STOPPED or FAILED."
    )
    async def deployment_progress(
        self, info: Info[Context, None], delivery_id: strawberry.ID
    ) -> AsyncGenerator[DeploymentProgress, None]:
        require(info)
        delivery = await get_delivery(parse_id(delivery_id, "delivery"))
        snapshots = info.context.progress.snapshots(delivery.id)
        try:
            async for snap in snapshots:
                d = snap.delivery
                yield DeploymentProgress(
                    delivery=Delivery.of(d),
                    status=d.status,
                    kpis=DeploymentKpis.of(d.kpis),
                    at=snap.at,
                    waiting_for=DeliveryWaiting.of(d),
                )
        finally:
            await snapshots.aclose()  # type: ignore[attr-defined]
