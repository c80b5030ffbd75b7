"""Listing quarantined and deny-listed addresses, and one address's standing (administrators).

The cursors are keysets on the list's order (quarantine: quarantinedAt then address; deny
list: address), like the other connections, but on those keys rather than on an integer id.
"""

import base64
import binascii
from collections.abc import Callable
from datetime import datetime

import strawberry
from strawberry.types import Info

from graphql_schema.addresses.types import AddressStatus, AddressStatusConnection, AddressStatusEdge
from graphql_schema.context import Context
from graphql_schema.pagination import PageInfo, page_size
from graphql_schema.permissions import require
from models import denylist, quarantine
from models.address_status import AddressState, Page, address_state
from models.enums import Role
from models.errors import BadInput

QUARANTINED = "QuarantinedAddress"
DENYLISTED = "DenylistedAddress"


def encode_cursor(kind: str, key: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{key}".encode()).decode()


def decode_cursor(kind: str, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        prefix, _, key = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if prefix == kind and key:
            return key
    except (ValueError, binascii.Error, UnicodeDecodeError):
        pass
    raise BadInput(f"'after' is not a valid cursor for this list: {cursor[:64]!r}")


def quarantine_key(s: AddressState) -> str:
    assert s.quarantined_at is not None
    return f"{s.quarantined_at.isoformat()}|{s.address}"


def parse_quarantine_key(cursor: str | None) -> tuple[datetime, str] | None:
    key = decode_cursor(QUARANTINED, cursor)
    if key is None:
        return None
    at, _, address = key.partition("|")
    try:
        return datetime.fromisoformat(at), address
    except ValueError:
        raise BadInput(f"'after' is not a valid cursor for this list: {cursor!r}") from None


def connection(
    page: Page, kind: str, key: Callable[[AddressState], str]
) -> AddressStatusConnection:
    edges = [
        AddressStatusEdge(cursor=encode_cursor(kind, key(s)), node=AddressStatus.of(s))
        for s in page.states
    ]
    end = edges[-1].cursor if edges else None
    return AddressStatusConnection(
        edges=edges,
        page_info=PageInfo(has_next_page=page.has_more, end_cursor=end),
        total_count=page.total,
    )


@strawberry.type
class AddressQueries:
    @strawberry.field(
        description="Addresses in quarantine, the most recently quarantined first."
        " `search`: a case-insensitive part of the address."
    )
    async def quarantined_addresses(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        search: str | None = None,
    ) -> AddressStatusConnection:
        require(info, Role.ADMINISTRATION)
        page = await quarantine.quarantined_page(
            search, parse_quarantine_key(after), page_size(first)
        )
        return connection(page, QUARANTINED, quarantine_key)

    @strawberry.field(
        description="Addresses on the deny list, in address order."
        " `search`: a case-insensitive part of the address."
    )
    async def denylisted_addresses(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        search: str | None = None,
    ) -> AddressStatusConnection:
        require(info, Role.ADMINISTRATION)
        page = await denylist.denylisted_page(
            search, decode_cursor(DENYLISTED, after), page_size(first)
        )
        return connection(page, DENYLISTED, lambda s: s.address)

    @strawberry.field(description="Null when the address never failed nor was deny-listed.")
    async def address_status(self, info: Info[Context, None], address: str) -> AddressStatus | None:
        require(info, Role.ADMINISTRATION)
        state = await address_state(address)
        return AddressStatus.of(state) if state is not None else None
