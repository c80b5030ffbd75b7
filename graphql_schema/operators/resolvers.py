"""Who am I, and operator management (administrators): create, revoke, rotate the token.

Revoking or rotating tells the server at once (`Context.operator_changed`): its cached token is
forgotten and the operator's open WebSockets on this server are closed with 4403; other
servers find out within TOKEN_CACHE_SECONDS.
"""

import strawberry
from strawberry.types import Info

from graphql_schema.context import Context
from graphql_schema.enums import Role
from graphql_schema.operators.types import (
    CreateOperatorPayload,
    Operator,
    RotateOperatorTokenPayload,
)
from graphql_schema.pagination import parse_id
from graphql_schema.permissions import needs, operator_of
from models import operator as m_operator
from models.audit import Actor
from models.enums import Role as DomainRole
from models.errors import BadInput

WHICH = "Give the operator's `name` or its `id` (one of them)."


def _target(id: strawberry.ID | None) -> int | None:
    return parse_id(id, "operator") if id is not None else None


@strawberry.type
class OperatorQueries:
    @strawberry.field(description="The operator behind the bearer token.", extensions=needs())
    def me(self, info: Info[Context, None]) -> Operator:
        return Operator.of(operator_of(info))


@strawberry.type
class OperatorMutations:
    @strawberry.mutation(
        description="Create an operator; the payload holds its token. The name is trimmed, its"
        " spaces collapsed; at most 100 visible characters (BAD_USER_INPUT otherwise).",
        extensions=needs(DomainRole.ADMINISTRATION),
    )
    async def create_operator(
        self, info: Info[Context, None], name: str, roles: list[Role]
    ) -> CreateOperatorPayload:
        by = Actor.of(operator_of(info))
        if len(roles) > len(DomainRole):  # every list argument has a cap (docs/limits.md)
            raise BadInput(f"at most {len(DomainRole)} roles, one of each (got {len(roles)})")
        operator, token = await m_operator.create_operator(name, [DomainRole(r) for r in roles], by)
        return CreateOperatorPayload(operator=Operator.of(operator), token=token)

    @strawberry.mutation(
        description=f"Revoke an operator: its token stops working everywhere, open WebSockets"
        f" included (within TOKEN_CACHE_SECONDS). {WHICH} Audited.",
        extensions=needs(DomainRole.ADMINISTRATION),
    )
    async def revoke_operator(
        self,
        info: Info[Context, None],
        name: str | None = None,
        id: strawberry.ID | None = None,
    ) -> Operator:
        by = Actor.of(operator_of(info))
        revoked = await m_operator.revoke_operator(by, name=name, operator_id=_target(id))
        await info.context.operator_changed(revoked.id)
        return Operator.of(revoked)

    @strawberry.mutation(
        description=f"Give an operator a new token (in the payload); the old one stops working"
        f" as a revoked one does. {WHICH} Audited.",
        extensions=needs(DomainRole.ADMINISTRATION),
    )
    async def rotate_operator_token(
        self,
        info: Info[Context, None],
        name: str | None = None,
        id: strawberry.ID | None = None,
    ) -> RotateOperatorTokenPayload:
        by = Actor.of(operator_of(info))
        rotated, token = await m_operator.rotate_operator_token(
            by, name=name, operator_id=_target(id)
        )
        await info.context.operator_changed(rotated.id)
        return RotateOperatorTokenPayload(operator=Operator.of(rotated), token=token)
