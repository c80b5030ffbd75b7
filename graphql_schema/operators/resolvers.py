"""Who am I, and operator management (administrators)."""

import strawberry
from strawberry.types import Info

from graphql_schema.context import Context
from graphql_schema.enums import Role
from graphql_schema.operators.types import CreateOperatorPayload, Operator
from graphql_schema.permissions import require
from models import operator as m_operator
from models.enums import Role as DomainRole
from models.errors import BadInput


@strawberry.type
class OperatorQueries:
    @strawberry.field(description="The operator behind the bearer token.")
    def me(self, info: Info[Context, None]) -> Operator:
        return Operator.of(require(info))


@strawberry.type
class OperatorMutations:
    @strawberry.mutation
    async def create_operator(
        self, info: Info[Context, None], name: str, roles: list[Role]
    ) -> CreateOperatorPayload:
        require(info, DomainRole.ADMINISTRATION)
        if len(roles) > len(DomainRole):  # every list argument has a cap (docs/limits.md)
            raise BadInput(f"at most {len(DomainRole)} roles, one of each (got {len(roles)})")
        operator, token = await m_operator.create_operator(name, [DomainRole(r) for r in roles])
        return CreateOperatorPayload(operator=Operator.of(operator), token=token)
