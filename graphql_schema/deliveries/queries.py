"""Reading deliveries, their KPIs and their sending logs."""

import strawberry
from strawberry.types import Info

from graphql_schema.context import Context
from graphql_schema.deliveries.types import (
    Delivery,
    DeliveryConnection,
    DeliveryEdge,
    DeploymentKpis,
    SendingLogConnection,
    sending_log_page,
)
from graphql_schema.enums import DeliveryStatus, SendingLogStatus
from graphql_schema.pagination import encode_cursor, keyset_page, parse_id
from graphql_schema.permissions import require
from models import delivery as m_delivery
from models.lifecycle import get_delivery


@strawberry.type
class DeliveryQueries:
    @strawberry.field
    async def delivery(self, info: Info[Context, None], id: strawberry.ID) -> Delivery | None:
        require(info)
        found = await m_delivery.Delivery.get_or_none(id=parse_id(id, "delivery"))
        return Delivery.of(found) if found is not None else None

    @strawberry.field(description="Newest first.")
    async def deliveries(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        status: DeliveryStatus | None = None,
    ) -> DeliveryConnection:
        require(info)
        query = m_delivery.Delivery.all()
        if status is not None:
            query = query.filter(status=status)
        rows, page_info, total = await keyset_page(
            query, "Delivery", first, after, newest_first=True
        )
        edges = [
            DeliveryEdge(cursor=encode_cursor("Delivery", d.id), node=Delivery.of(d)) for d in rows
        ]
        return DeliveryConnection(edges=edges, page_info=page_info, total_count=total)

    @strawberry.field
    async def sending_logs(
        self,
        info: Info[Context, None],
        delivery_id: strawberry.ID,
        status: SendingLogStatus | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> SendingLogConnection:
        require(info)
        delivery = await get_delivery(parse_id(delivery_id, "delivery"))
        return await sending_log_page(info, delivery.id, status, first, after)

    @strawberry.field
    async def kpis(self, info: Info[Context, None], delivery_id: strawberry.ID) -> DeploymentKpis:
        require(info)
        delivery = await get_delivery(parse_id(delivery_id, "delivery"))
        return DeploymentKpis.of(delivery.kpis)
