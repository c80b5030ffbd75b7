"""Live deployment progress over graphql-transport-ws."""

from collections.abc import AsyncGenerator

import strawberry
from strawberry.types import Info

from graphql_schema.context import Context
from graphql_schema.deliveries.types import (
    Delivery,
    DeliveryWaiting,
    DeploymentProgress,
    SendTimeWait,
    Waves,
)
from graphql_schema.pagination import parse_id
from graphql_schema.permissions import needs
from models.errors import NotFound


@strawberry.type
class DeliverySubscriptions:
    @strawberry.subscription(
        description="A snapshot at once, then one per change (coalesced); completes when the"
        " delivery is FINISHED, STOPPED or FAILED.",
        extensions=needs(),
    )
    async def deployment_progress(
        self, info: Info[Context, None], delivery_id: strawberry.ID
    ) -> AsyncGenerator[DeploymentProgress, None]:
        number = parse_id(delivery_id, "delivery")
        # The hub reads the delivery once for all its subscribers: a thousand subscriptions to
        # a watched delivery read nothing more (each read waits in the database's queue, with
        # every other request's).
        snapshots = info.context.progress.snapshots(number)
        seen = False
        try:
            async for snap in snapshots:
                seen = True
                # One payload per snapshot for all its subscribers, so that the selection is
                # executed once per distinct selection, not once per subscriber
                # (graphql_schema/execution.py).
                progress = snap.shared.get("progress")
                if progress is None:
                    d = snap.delivery
                    delivery = Delivery.of(d)
                    progress = snap.shared["progress"] = DeploymentProgress(
                        id=strawberry.ID(str(d.id)),
                        delivery=delivery,
                        status=d.status,
                        kpis=delivery.kpis,
                        at=snap.at,
                        waiting_for=DeliveryWaiting.of(d),
                        waves=Waves.of(d, snap.at),
                        waiting_for_send_time=SendTimeWait.of(d, snap.at),
                    )
                yield progress
            if not seen:
                raise NotFound(f"no delivery with id {number}")
        finally:
            await snapshots.aclose()  # type: ignore[attr-defined]
