"""Releasing an address from quarantine and managing the deny list (administrators).

Each mutation is one domain transaction; the next preparation sees the change. Nothing is
published: no delivery changes (deliveries already prepared keep their logs).
"""

import strawberry
from strawberry.types import Info

from graphql_schema.addresses.types import AddressStatus
from graphql_schema.context import Context
from graphql_schema.permissions import needs, operator_of
from models import denylist, quarantine
from models.audit import Actor
from models.enums import Role


@strawberry.type
class AddressMutations:
    @strawberry.mutation(
        description="Take the address out of quarantine and reset its error counter;"
        " NOT_FOUND when it is not in quarantine.",
        extensions=needs(Role.ADMINISTRATION),
    )
    async def release_address(self, info: Info[Context, None], address: str) -> AddressStatus:
        by = Actor.of(operator_of(info))
        return AddressStatus.of(await quarantine.release(address, by))

    @strawberry.mutation(
        description="Exclude the address from every later preparation.",
        extensions=needs(Role.ADMINISTRATION),
    )
    async def denylist_address(self, info: Info[Context, None], address: str) -> AddressStatus:
        by = Actor.of(operator_of(info))
        return AddressStatus.of(await denylist.add_to_denylist(address, by))

    @strawberry.mutation(
        description="NOT_FOUND when the address is not on the deny list.",
        extensions=needs(Role.ADMINISTRATION),
    )
    async def remove_from_denylist(self, info: Info[Context, None], address: str) -> AddressStatus:
        by = Actor.of(operator_of(info))
        return AddressStatus.of(await denylist.remove_from_denylist(address, by))
