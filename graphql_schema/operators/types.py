"""Operators as the API shows them (never their token, except once at creation or rotation)."""

from datetime import datetime

import strawberry

from graphql_schema.enums import Role
from graphql_schema.permissions import OWN, needs
from models import operator as m_operator


@strawberry.type
class Operator:
    id: strawberry.ID
    name: str
    roles: list[Role] = strawberry.field(
        description="Readable through `me`, and by administrators through any path.",
        extensions=needs(OWN),
    )
    created_at: datetime = strawberry.field(extensions=needs(OWN))
    revoked_at: datetime | None = strawberry.field(
        description="When the operator was revoked: its token no longer works. Null if it was"
        " not. Readable through `me`, and by administrators through any path.",
        extensions=needs(OWN),
    )

    # Reached through `me` or an administrator's mutation, not through a delivery's link.
    own: strawberry.Private[bool] = True

    @classmethod
    def of(cls, o: m_operator.Operator, *, own: bool = True) -> "Operator":
        return cls(
            own=own,
            id=strawberry.ID(str(o.id)),
            name=o.name,
            roles=sorted(o.role_set),
            created_at=o.created_at,
            revoked_at=o.revoked_at,
        )


@strawberry.type
class CreateOperatorPayload:
    operator: Operator
    token: str = strawberry.field(description="The bearer token; shown this once only.")


@strawberry.type
class RotateOperatorTokenPayload:
    operator: Operator
    token: str = strawberry.field(
        description="The new bearer token; shown this once only. The old one no longer works."
    )
