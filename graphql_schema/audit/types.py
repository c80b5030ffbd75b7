"""An audit event as the API shows it, and its keyset-paged connection."""

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info
from tortoise.queryset import QuerySet

from graphql_schema.context import Context
from graphql_schema.pagination import PageInfo, encode_cursor, keyset_page, page_info
from graphql_schema.permissions import is_administrator
from models import audit as m_audit
from models.audit import AuditAction, AuditActor
from models.redaction import public_detail

strawberry.enum(AuditAction)
strawberry.enum(AuditActor)
KIND = "AuditEvent"


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


@strawberry.type
class AuditEventEdge:
    cursor: str
    node: AuditEvent


@strawberry.type
class AuditEventConnection:
    edges: list[AuditEventEdge]
    page_info: PageInfo
    total_count: int


async def audit_page(
    query: QuerySet[m_audit.AuditEvent],
    first: int | None,
    after: str | None,
    *,
    newest_first: bool,
) -> AuditEventConnection:
    rows, info, total = await keyset_page(query, KIND, first, after, newest_first=newest_first)
    return audit_connection(rows, info.has_next_page, total)


def audit_connection(
    rows: list[m_audit.AuditEvent], has_next: bool, total: int
) -> AuditEventConnection:
    edges = [AuditEventEdge(cursor=encode_cursor(KIND, e.id), node=AuditEvent.of(e)) for e in rows]
    return AuditEventConnection(
        edges=edges, page_info=page_info(edges, has_next), total_count=total
    )
