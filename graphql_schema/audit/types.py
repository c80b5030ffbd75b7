"""An audit event as the API shows it, and its keyset-paged connection."""

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info
from tortoise.queryset import QuerySet

from graphql_schema.context import Context
from graphql_schema.pagination import Connection, Cursors, by_id, connection
from graphql_schema.permissions import is_administrator
from models import audit as m_audit
from models.audit import AuditAction, AuditActor
from models.keyset import ID_ASCENDING, ID_DESCENDING, Page, Window, keyset_page
from models.redaction import public_detail

strawberry.enum(AuditAction)
strawberry.enum(AuditActor)


@strawberry.type(description="One action on a delivery or an address, as it was committed.")
class AuditEvent:
    id: strawberry.ID
    at: datetime = strawberry.field(description="When the action was committed (UTC).")
    action: AuditAction
    actor: AuditActor = strawberry.field(description="OPERATOR, or ENGINE for its own steps.")
    operator_id: strawberry.ID | None = strawberry.field(description="Null for the engine.")
    operator_name: str | None = strawberry.field(
        description="The operator's name at the time of the action."
    )
    delivery_id: strawberry.ID | None = strawberry.field(
        description="Kept after the delivery is deleted; null for address actions."
    )
    delivery_label: str | None = strawberry.field(
        description="The delivery's label at the time of the action."
    )
    _detail: strawberry.Private[dict[str, Any]]

    @strawberry.field(
        graphql_type=JSON,
        description="What else is worth knowing: the statuses left and reached (`from`, `to`),"
        " toSend at confirmation, messages cancelled by a stop, the address ... Operators who"
        " are not administrators read counts, statuses and times, and a plain `reason`.",
    )
    def detail(self, info: Info[Context, None]) -> dict[str, Any]:
        return self._detail if is_administrator(info) else public_detail(self._detail)

    @classmethod
    def of(cls, e: m_audit.AuditEvent) -> "AuditEvent":
        return cls(
            id=strawberry.ID(str(e.id)),
            at=e.at,
            action=e.action,
            actor=e.actor,
            operator_id=strawberry.ID(str(e.operator_id)) if e.operator_id is not None else None,
            operator_name=e.operator_name,
            delivery_id=strawberry.ID(str(e.delivery_id)) if e.delivery_id is not None else None,
            delivery_label=e.delivery_label,
            _detail=dict(e.detail),
        )


AUDIT_EVENTS = Cursors("AuditEvent")


async def audit_page(
    query: QuerySet[m_audit.AuditEvent], window: Window, *, newest_first: bool
) -> Connection[AuditEvent]:
    order = ID_DESCENDING if newest_first else ID_ASCENDING
    return audit_connection(await keyset_page(query, order, window), window)


def audit_connection(page: Page[m_audit.AuditEvent], window: Window) -> Connection[AuditEvent]:
    return connection(page, window, AUDIT_EVENTS, by_id, AuditEvent.of)
