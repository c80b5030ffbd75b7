"""Listing quarantined and deny-listed addresses, and one address's standing (administrators).

The cursors are keysets on the list's order (quarantine: quarantinedAt then address; deny
list: address), like the other connections, but on those keys rather than on an integer id.
"""

import strawberry
from strawberry.types import Info

from graphql_schema.addresses.types import AddressStatus
from graphql_schema.context import Context
from graphql_schema.pagination import TEXT_KEY, TIME_KEY, Connection, Cursors, connection, window
from graphql_schema.permissions import needs
from models import denylist, quarantine
from models.address_status import AddressState, address_state
from models.enums import Role
from models.keyset import Key

QUARANTINED = Cursors("QuarantinedAddress", (TIME_KEY, TEXT_KEY))
DENYLISTED = Cursors("DenylistedAddress", (TEXT_KEY,))


def quarantine_key(s: AddressState) -> Key:
    return (s.quarantined_at, s.address)


def denylist_key(s: AddressState) -> Key:
    return (s.address,)


@strawberry.type
class AddressQueries:
    @strawberry.field(
        description="Addresses in quarantine, the most recently quarantined first."
        " `search`: a case-insensitive part of the address.",
        extensions=needs(Role.ADMINISTRATION),
    )
    async def quarantined_addresses(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        search: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[AddressStatus]:
        asked = window(QUARANTINED, first, after, last, before)
        page = await quarantine.quarantined_page(search, asked)
        return connection(page, asked, QUARANTINED, quarantine_key, AddressStatus.of)

    @strawberry.field(
        description="Addresses on the deny list, in address order."
        " `search`: a case-insensitive part of the address.",
        extensions=needs(Role.ADMINISTRATION),
    )
    async def denylisted_addresses(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        search: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[AddressStatus]:
        asked = window(DENYLISTED, first, after, last, before)
        page = await denylist.denylisted_page(search, asked)
        return connection(page, asked, DENYLISTED, denylist_key, AddressStatus.of)

    @strawberry.field(
        description="Null when the address never failed nor was deny-listed.",
        extensions=needs(Role.ADMINISTRATION),
    )
    async def address_status(self, info: Info[Context, None], address: str) -> AddressStatus | None:
        state = await address_state(address)
        return AddressStatus.of(state) if state is not None else None
