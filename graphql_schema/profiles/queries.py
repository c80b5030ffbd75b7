"""Reading profiles."""

import strawberry
from strawberry.types import Info

from graphql_schema.context import Context
from graphql_schema.pagination import parse_id
from graphql_schema.permissions import ANY_ROLE, needs
from graphql_schema.profiles.types import Profile
from models import profile as m_profile


@strawberry.type
class ProfileQueries:
    @strawberry.field(
        description="Any role may read profiles; an operator without one may not.",
        extensions=needs(ANY_ROLE),
    )
    async def profile(self, info: Info[Context, None], id: strawberry.ID) -> Profile | None:
        found = await m_profile.Profile.get_or_none(id=parse_id(id, "profile"))
        return Profile.of(found) if found is not None else None
