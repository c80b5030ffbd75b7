"""Importing profiles (upsert by email)."""

import strawberry
from strawberry.types import Info

from graphql_schema.context import Context
from graphql_schema.permissions import needs
from graphql_schema.profiles.types import ImportProfilesPayload, Profile, ProfileInput
from models.enums import Role
from models.profile import MAX_IMPORT, import_profiles


@strawberry.type
class ProfileMutations:
    @strawberry.mutation(
        description=f"Upsert by email; at most {MAX_IMPORT} a call. A field left out keeps"
        " an existing profile's value; null clears it.",
        extensions=needs(Role.PREPARE_DELIVERIES),
    )
    async def import_profiles(
        self, info: Info[Context, None], profiles: list[ProfileInput]
    ) -> ImportProfilesPayload:
        result = await import_profiles([p.data() for p in profiles])
        return ImportProfilesPayload(
            created=result.created,
            updated=result.updated,
            profiles=[Profile.of(p) for p in result.profiles],
        )
