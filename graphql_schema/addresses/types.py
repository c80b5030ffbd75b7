"""An address's standing: its error counter, its quarantine and the deny list."""

from datetime import datetime

import strawberry

from graphql_schema.enums import DenylistReason
from models.address_status import AddressState


@strawberry.type(description="An address that has failed or been deny-listed.")
class AddressStatus:
    id: strawberry.ID = strawberry.field(description="The address itself: a cache's key.")
    address: str = strawberry.field(
        description="As preparation stores it: an email lower-cased, an SMS number as +digits."
    )
    error_count: int = strawberry.field(description="Counted errors since the last reset.")
    last_error_at: datetime | None
    quarantined: bool
    quarantined_at: datetime | None
    quarantine_reason: str | None = strawberry.field(
        description="The hard bounce's failure reason, or SOFT_ERRORS."
    )
    denylisted: bool
    denylist_reason: DenylistReason | None = strawberry.field(
        description="Why the address is on the deny list: COMPLAINT, UNSUBSCRIBED or"
        " ADMINISTRATOR (null when it is not, or was listed before reasons were recorded)."
    )
    denylisted_at: datetime | None = strawberry.field(
        description="When the address went on the deny list."
    )

    @classmethod
    def of(cls, s: AddressState) -> "AddressStatus":
        return cls(
            id=strawberry.ID(s.address),
            address=s.address,
            error_count=s.error_count,
            last_error_at=s.last_error_at,
            quarantined=s.quarantined_at is not None,
            quarantined_at=s.quarantined_at,
            quarantine_reason=s.quarantine_reason,
            denylisted=s.denylisted,
            denylist_reason=s.denylist_reason,
            denylisted_at=s.denylisted_at,
        )
