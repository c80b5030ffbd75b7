"""The deny list: an address on it is excluded by every later preparation (DENYLISTED).

Recipients join it by unsubscribing (`server/http/unsubscribe.py`), administrators add and
remove addresses. The flag lives on the address's `address_status` row
(`models/address_status.py`) beside its quarantine state, which the deny list never changes.
"""

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from models.address_status import AddressState, AddressStatus, Page, page, state_of
from models.addresses import normalise_address
from models.audit import Actor, AuditAction
from models.audit import record as audit
from models.errors import NotFound
from models.sql import Sql


async def denylist(sql: Sql, address: str) -> None:
    """Put an address (as preparation stores it) on the deny list; idempotent. An upsert of the
    flag alone: the address's error counter and quarantine are left as they are."""
    await sql.execute(
        "INSERT INTO address_status (address, error_count, denylisted) VALUES (?, ?, ?)"
        " ON CONFLICT (address) DO UPDATE SET denylisted = excluded.denylisted",
        [address, 0, True],
    )


# ---- The administrators' operations and list ---------------------------------------------------


async def add_to_denylist(address: str, by: Actor) -> AddressState:
    """An administrator deny-lists an address (idempotent), with its audit event."""
    address = normalise_address(address)
    async with in_transaction() as conn:
        await denylist(Sql(conn), address)
        await audit(AuditAction.ADDRESS_DENYLISTED, by, detail={"address": address})
        return state_of(await AddressStatus.get(address=address))


async def remove_from_denylist(address: str, by: Actor) -> AddressState:
    address = normalise_address(address)
    async with in_transaction():
        removed = await AddressStatus.filter(address=address, denylisted=True).update(
            denylisted=False
        )
        if not removed:
            raise NotFound(f"{address} is not on the deny list")
        await audit(AuditAction.ADDRESS_REMOVED_FROM_DENYLIST, by, detail={"address": address})
        return state_of(await AddressStatus.get(address=address))


async def denylisted_page(search: str | None, after: str | None, limit: int) -> Page:
    """Deny-listed addresses in address order (the table records no date for the deny list)."""
    keyset = None if after is None else Q(address__gt=after)
    return await page(AddressStatus.filter(denylisted=True), search, keyset, ("address",), limit)
