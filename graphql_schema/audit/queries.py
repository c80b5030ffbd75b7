"""Reading the audit trail across deliveries: administrators only.

It names every operator's actions and the addresses that were released or deny-listed
(personal data, SPEC §1), and it outlives deleted deliveries. One delivery's own trail is
`Delivery.auditTrail`.
"""

from datetime import datetime

import strawberry
from strawberry.types import Info

from graphql_schema.audit.types import AUDIT_EVENTS, AuditEvent, audit_page
from graphql_schema.context import Context
from graphql_schema.pagination import Connection, parse_id, window
from graphql_schema.permissions import needs
from models import audit as m_audit
from models.audit import AuditAction
from models.enums import Role


@strawberry.type
class AuditQueries:
    @strawberry.field(
        description="Audit events, newest first, matching every filter given: `deliveryId`"
        " (deleted deliveries too), `operatorId`, `action`, `since` (inclusive) and `until`"
        " (exclusive). Administrators only.",
        extensions=needs(Role.ADMINISTRATION),
    )
    async def audit_events(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        delivery_id: strawberry.ID | None = None,
        operator_id: strawberry.ID | None = None,
        action: AuditAction | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Connection[AuditEvent]:
        asked = window(AUDIT_EVENTS, first, after, last, before)
        query = m_audit.events(
            delivery_id=parse_id(delivery_id, "delivery") if delivery_id is not None else None,
            operator_id=parse_id(operator_id, "operator") if operator_id is not None else None,
            action=action,
            since=since,
            until=until,
        )
        return await audit_page(query, asked, newest_first=True)
