"""Reading deliveries, their KPIs and their sending logs."""

import strawberry
from strawberry.types import Info

from graphql_schema.context import Context
from graphql_schema.deliveries.types import (
    SENDING_LOGS,
    Delivery,
    DeploymentKpis,
    SendingLog,
    sending_log_page,
)
from graphql_schema.enums import DeliveryStatus, SendingLogStatus
from graphql_schema.pagination import Connection, Cursors, by_id, connection, parse_id, window
from graphql_schema.permissions import needs
from models import delivery as m_delivery
from models.enums import Role
from models.keyset import ID_DESCENDING, keyset_page
from models.lifecycle import get_delivery

DELIVERIES = Cursors("Delivery")


@strawberry.type
class DeliveryQueries:
    @strawberry.field(extensions=needs())
    async def delivery(self, info: Info[Context, None], id: strawberry.ID) -> Delivery | None:
        found = await m_delivery.Delivery.get_or_none(id=parse_id(id, "delivery"))
        return Delivery.of(found) if found is not None else None

    @strawberry.field(description="Newest first.", extensions=needs())
    async def deliveries(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        status: DeliveryStatus | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Delivery]:
        asked = window(DELIVERIES, first, after, last, before)
        query = m_delivery.Delivery.all()
        if status is not None:
            query = query.filter(status=status)
        page = await keyset_page(query, ID_DESCENDING, asked)
        return connection(page, asked, DELIVERIES, by_id, Delivery.of)

    @strawberry.field(extensions=needs(Role.ADMINISTRATION))
    async def sending_logs(
        self,
        info: Info[Context, None],
        delivery_id: strawberry.ID,
        status: SendingLogStatus | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[SendingLog]:
        asked = window(SENDING_LOGS, first, after, last, before)
        delivery = await get_delivery(parse_id(delivery_id, "delivery"))
        return await sending_log_page(info, delivery.id, status, asked)

    @strawberry.field(extensions=needs())
    async def kpis(self, info: Info[Context, None], delivery_id: strawberry.ID) -> DeploymentKpis:
        delivery = await get_delivery(parse_id(delivery_id, "delivery"))
        return DeploymentKpis.of(delivery.kpis)
