"""The deny list: an address on it is excluded by every later preparation (DENYLISTED).

Recipients join it by complaining or unsubscribing (`models/optouts.py`: the providers' reports,
feedback-loop reports and the product's own unsubscribe link), administrators add and remove
addresses. Each entry keeps its reason (`DenylistReason`) and the time it was made. The flag
lives on the address's `address_status` row (`models/address_status.py`) beside its quarantine
state, which the deny list never changes.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

from tortoise.transactions import in_transaction

from models.address_status import AddressState, AddressStatus, page, state_of
from models.addresses import normalise_address
from models.audit import Actor, AuditAction
from models.audit import record as audit
from models.enums import DenylistReason
from models.errors import NotFound
from models.keyset import Order, Page, Window
from models.sql import Sql

Entry = tuple[str, DenylistReason, datetime]  # (address as preparation stores it, why, when)


async def denylist(sql: Sql, entries: Sequence[Entry]) -> None:
    """Put addresses on the deny list; idempotent. An address already on it keeps the reason
    and time it joined with. An upsert of the deny-list columns alone: the addresses' error
    counters and quarantine are left as they are. Rows are written in address order (the order
    feedback locks them in), and an address given twice keeps its earliest entry."""
    first: dict[str, Entry] = {}
    for entry in sorted(entries, key=lambda e: e[2]):
        first.setdefault(entry[0], entry)
    await sql.many(
        "INSERT INTO address_status (address, error_count, denylisted, denylist_reason,"
        " denylisted_at) VALUES (?, 0, ?, ?, ?) ON CONFLICT (address) DO UPDATE SET"
        " denylist_reason = CASE WHEN address_status.denylisted"
        " THEN address_status.denylist_reason ELSE excluded.denylist_reason END,"
        " denylisted_at = CASE WHEN address_status.denylisted"
        " THEN address_status.denylisted_at ELSE excluded.denylisted_at END,"
        " denylisted = excluded.denylisted",
        [[a, True, reason.value, sql.ts(at)] for a, reason, at in sorted(first.values())],
    )


# ---- The administrators' operations and list ---------------------------------------------------


async def add_to_denylist(address: str, by: Actor) -> AddressState:
    """An administrator deny-lists an address (idempotent), with its audit event."""
    address = normalise_address(address)
    async with in_transaction() as conn:
        await denylist(Sql(conn), [(address, DenylistReason.ADMINISTRATOR, datetime.now(UTC))])
        await audit(AuditAction.ADDRESS_DENYLISTED, by, detail={"address": address})
        return state_of(await AddressStatus.get(address=address))


async def remove_from_denylist(address: str, by: Actor) -> AddressState:
    address = normalise_address(address)
    async with in_transaction():
        removed = await AddressStatus.filter(address=address, denylisted=True).update(
            denylisted=False, denylist_reason=None, denylisted_at=None
        )
        if not removed:
            raise NotFound(f"{address} is not on the deny list")
        await audit(AuditAction.ADDRESS_REMOVED_FROM_DENYLIST, by, detail={"address": address})
        return state_of(await AddressStatus.get(address=address))


DENYLIST_ORDER = Order(("address",))  # the table records no date for the deny list


async def denylisted_page(search: str | None, window: Window) -> Page[AddressState]:
    """Deny-listed addresses in address order."""
    return await page(AddressStatus.filter(denylisted=True), search, DENYLIST_ORDER, window)
