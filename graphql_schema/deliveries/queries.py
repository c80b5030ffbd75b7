"""Reading deliveries, their KPIs and their sending logs."""

from datetime import datetime
from enum import StrEnum

import strawberry
from strawberry.types import Info

from graphql_schema.context import Context
from graphql_schema.deliveries.types import (
    DELIVERY_COLUMNS,
    SENDING_LOGS,
    Delivery,
    DeploymentKpis,
    SendingLog,
    log_filters,
    sending_log_page,
)
from graphql_schema.enums import (
    Channel,
    DeliveryStatus,
    FailureReason,
    FailureType,
    SendingLogStatus,
)
from graphql_schema.pagination import (
    ID_KEY,
    TEXT_KEY,
    TIME_KEY,
    Connection,
    Cursors,
    aware,
    connection,
    one_of,
    parse_id,
    search_term,
    window,
)
from graphql_schema.permissions import needs
from graphql_schema.selection import columns_for, selects
from models import delivery as m_delivery
from models.enums import Role
from models.keyset import ID_ASCENDING, ID_DESCENDING, Order, keyset_page

DELIVERIES = Cursors("Delivery")


@strawberry.enum(description="The order of the deliveries list.")
class DeliveryOrder(StrEnum):
    NEWEST_FIRST = "NEWEST_FIRST"
    OLDEST_FIRST = "OLDEST_FIRST"
    RECENTLY_UPDATED = "RECENTLY_UPDATED"
    LABEL = "LABEL"


# Each order's keyset and cursor codec (a cursor of one order is refused by another).
ORDERS: dict[DeliveryOrder, tuple[Order, Cursors]] = {
    DeliveryOrder.NEWEST_FIRST: (ID_DESCENDING, DELIVERIES),
    DeliveryOrder.OLDEST_FIRST: (ID_ASCENDING, Cursors("Delivery.OLDEST_FIRST")),
    DeliveryOrder.RECENTLY_UPDATED: (
        Order(("-updated_at", "-id")),
        Cursors("Delivery.RECENTLY_UPDATED", (TIME_KEY, ID_KEY)),
    ),
    DeliveryOrder.LABEL: (Order(("label", "id")), Cursors("Delivery.LABEL", (TEXT_KEY, ID_KEY))),
}


@strawberry.type
class DeliveryQueries:
    @strawberry.field(description="Null for an id that names no delivery.", extensions=needs())
    async def delivery(self, info: Info[Context, None], id: strawberry.ID) -> Delivery | None:
        found = await info.context.loaders.deliveries.load(parse_id(id, "delivery"))
        return Delivery.of(found) if found is not None else None

    @strawberry.field(
        description="Deliveries matching every filter given: `statuses` (any of them),"
        " `channel`, `search` (a case-insensitive part of the label), `createdSince`"
        " (inclusive) and `createdUntil` (exclusive), `parentId` (a recurring delivery's"
        " occurrences). `orderBy`: NEWEST_FIRST unless given. `status` is the older filter by"
        " one status.",
        extensions=needs(),
    )
    async def deliveries(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        status: DeliveryStatus | None = None,
        last: int | None = None,
        before: str | None = None,
        statuses: list[DeliveryStatus] | None = None,
        channel: Channel | None = None,
        search: str | None = None,
        created_since: datetime | None = None,
        created_until: datetime | None = None,
        parent_id: strawberry.ID | None = None,
        order_by: DeliveryOrder = DeliveryOrder.NEWEST_FIRST,
    ) -> Connection[Delivery]:
        order, cursors = ORDERS[order_by]
        asked = window(cursors, first, after, last, before)
        query = m_delivery.Delivery.all()
        if status is not None:
            query = query.filter(status=status)
        if statuses is not None:
            query = query.filter(status__in=one_of(statuses, "statuses", len(DeliveryStatus)))
        if channel is not None:
            query = query.filter(channel=channel)
        if (term := search_term(search)) is not None:
            query = query.filter(label__icontains=term)
        if created_since is not None:
            query = query.filter(created_at__gte=aware(created_since))
        if created_until is not None:
            query = query.filter(created_at__lt=aware(created_until))
        if parent_id is not None:
            query = query.filter(parent_id=parse_id(parent_id, "delivery"))
        page = await keyset_page(
            query,
            order,
            asked,
            counted=selects(info, "totalCount"),
            columns=columns_for(info, DELIVERY_COLUMNS),
        )
        return connection(page, asked, cursors, order.key, Delivery.of)

    @strawberry.field(
        description="Null for an id that names no delivery. Filters as Delivery.sendingLogs.",
        extensions=needs(Role.ADMINISTRATION),
    )
    async def sending_logs(
        self,
        info: Info[Context, None],
        delivery_id: strawberry.ID,
        status: SendingLogStatus | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        statuses: list[SendingLogStatus] | None = None,
        failure_type: FailureType | None = None,
        failure_reason: FailureReason | None = None,
        search: str | None = None,
        excluded: bool | None = None,
    ) -> Connection[SendingLog] | None:
        asked = window(SENDING_LOGS, first, after, last, before)
        where = log_filters(status, statuses, failure_type, failure_reason, search, excluded)
        number = parse_id(delivery_id, "delivery")
        if not await m_delivery.exists(number):
            return None
        return await sending_log_page(info, number, where, asked)

    @strawberry.field(description="Null for an id that names no delivery.", extensions=needs())
    async def kpis(
        self, info: Info[Context, None], delivery_id: strawberry.ID
    ) -> DeploymentKpis | None:
        found = await info.context.loaders.deliveries.load(parse_id(delivery_id, "delivery"))
        return DeploymentKpis.of(found.kpis, found.id) if found is not None else None
