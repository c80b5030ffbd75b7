"""Profiles and their history (every message targeted at them)."""

import strawberry
from strawberry.types import Info

from graphql_schema.context import Context
from graphql_schema.deliveries.types import SendingLog
from graphql_schema.permissions import require_any_role
from models import profile as m_profile
from models import sending_log as m_log

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


@strawberry.input
class ProfileInput:
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None


@strawberry.type
class ImportProfilesPayload:
    created: int
    updated: int
    profiles: list[Profile]
