"""Reading profiles: one by id, or a page found by address or name."""

import strawberry
from strawberry.types import Info
from tortoise.expressions import Q

from graphql_schema.context import Context
from graphql_schema.pagination import (
    Connection,
    Cursors,
    by_id,
    connection,
    parse_id,
    search_term,
    window,
)
from graphql_schema.permissions import ANY_ROLE, needs
from graphql_schema.profiles.types import Profile
from models import profile as m_profile
from models.keyset import ID_ASCENDING, keyset_page

PROFILES = Cursors("Profile")


@strawberry.type
class ProfileQueries:
    @strawberry.field(
        description="Any role may read profiles; an operator without one may not. Null for an"
        " id that names no profile.",
        extensions=needs(ANY_ROLE),
    )
    async def profile(self, info: Info[Context, None], id: strawberry.ID) -> Profile | None:
        found = await info.context.loaders.profiles.load(parse_id(id, "profile"))
        return Profile.of(found) if found is not None else None

    @strawberry.field(
        description="Profiles in id order; `search`: a case-insensitive part of the email"
        " address, the phone number, the first or the last name. Any role may read them.",
        extensions=needs(ANY_ROLE),
    )
    async def profiles(
        self,
        info: Info[Context, None],
        search: str | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Profile]:
        asked = window(PROFILES, first, after, last, before)
        query = m_profile.Profile.all()
        if (term := search_term(search)) is not None:
            query = query.filter(
                Q(email__icontains=term)
                | Q(phone__icontains=term)
                | Q(first_name__icontains=term)
                | Q(last_name__icontains=term)
            )
        page = await keyset_page(query, ID_ASCENDING, asked)
        return connection(page, asked, PROFILES, by_id, Profile.of)
