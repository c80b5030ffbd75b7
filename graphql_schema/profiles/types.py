"""Profiles and their history (every message targeted at them)."""

import strawberry
from strawberry import UNSET
from strawberry.types import Info

from graphql_schema.context import Context
from graphql_schema.deliveries.types import SendingLog
from graphql_schema.loaders import PageKey
from graphql_schema.pagination import Connection, Cursors, by_id, connection, parse_id, window
from graphql_schema.permissions import ANY_ROLE, needs
from graphql_schema.plain_inputs import plain
from models import profile as m_profile
from models.errors import BadInput
from models.keyset import Window
from models.profile import DATA_FIELDS, ProfileData

HISTORY_PAGE = 50  # messages when `first` is not given
HISTORY_MAX = 100
HISTORY = Cursors("History")


@strawberry.type
class Profile:
    id: strawberry.ID
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    time_zone: str | None = strawberry.field(
        description="An IANA zone (Europe/Madrid): where a delivery sent in each recipient's"
        " zone relays this profile's message at the contact date's local time."
    )

    @strawberry.field(
        description=f"The messages targeted at this profile, newest first: `first` of them"
        f" ({HISTORY_PAGE} when not given, at most {HISTORY_MAX}), older than the message"
        " whose id is `after` when given.",
        extensions=needs(ANY_ROLE),
    )
    async def history(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: strawberry.ID | None = None,
    ) -> list[SendingLog]:
        size = HISTORY_PAGE if first is None else first
        if not 0 <= size <= HISTORY_MAX:
            raise BadInput(f"'first' must be between 0 and {HISTORY_MAX}")
        older = parse_id(after, "sending log") if after is not None else None
        asked = Window(size, after=None if older is None else (older,))
        key = PageKey(int(self.id), asked, (("excluded", False),))
        page = await info.context.loaders.histories.load(key)
        return [SendingLog.of(log) for log in page.rows]

    @strawberry.field(
        description="The messages targeted at this profile, newest first, as a connection"
        " (paged both ways, with a total); `history` is the short list.",
        extensions=needs(ANY_ROLE),
    )
    async def history_connection(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[SendingLog]:
        asked = window(HISTORY, first, after, last, before, default=HISTORY_PAGE, cap=HISTORY_MAX)
        key = PageKey(int(self.id), asked, (("excluded", False),))
        page = await info.context.loaders.history_pages.load(key)
        return connection(page, asked, HISTORY, by_id, SendingLog.of)

    @classmethod
    def of(cls, p: m_profile.Profile) -> "Profile":
        return cls(
            id=strawberry.ID(str(p.id)),
            email=p.email,
            phone=p.phone,
            first_name=p.first_name,
            last_name=p.last_name,
            time_zone=p.time_zone,
        )


@plain
@strawberry.input(description="A field left out keeps an existing profile's value; null clears it.")
class ProfileInput:
    email: str | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET
    first_name: str | None = strawberry.UNSET
    last_name: str | None = strawberry.UNSET
    time_zone: str | None = strawberry.field(
        default=strawberry.UNSET, description="An IANA zone such as Europe/Madrid; null clears it."
    )

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
