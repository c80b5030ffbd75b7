"""Profiles and their history (every message targeted at them)."""

import strawberry
from strawberry import UNSET
from strawberry.types import Info

from graphql_schema.context import Context
from graphql_schema.deliveries.types import SendingLog
from graphql_schema.permissions import require_any_role
from models import profile as m_profile
from models import sending_log as m_log
from models.profile import DATA_FIELDS, ProfileData

HISTORY_LIMIT = 100


@strawberry.type
class Profile:
    id: strawberry.ID
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None

    @strawberry.field(description="The newest messages targeted at this profile (at most 100).")
    async def history(self, info: Info[Context, None]) -> list[SendingLog]:
        require_any_role(info)  # whichever path reached the profile
        logs = (
            await m_log.SendingLog.filter(profile_id=int(self.id), excluded=False)
            .order_by("-id")
            .limit(HISTORY_LIMIT)
        )
        return [SendingLog.of(log) for log in logs]

    @classmethod
    def of(cls, p: m_profile.Profile) -> "Profile":
        return cls(
            id=strawberry.ID(str(p.id)),
            email=p.email,
            phone=p.phone,
            first_name=p.first_name,
            last_name=p.last_name,
        )


@strawberry.input(description="A field left out keeps an existing profile's value; null clears it.")
class ProfileInput:
    email: str | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET
    first_name: str | None = strawberry.UNSET
    last_name: str | None = strawberry.UNSET

    def data(self) -> ProfileData:
        """The row to import: only the fields the client gave (UNSET ones keep their value)."""
        given = {name: value for name in DATA_FIELDS if (value := getattr(self, name)) is not UNSET}
        email = None if self.email is UNSET else self.email
        return ProfileData(email, **given)


@strawberry.type
class ImportProfilesPayload:
    created: int
    updated: int
    profiles: list[Profile]
