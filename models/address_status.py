"""What is known about each address: one `address_status` row per address that has failed or
been deny-listed, holding its error counter, its quarantine and the deny-list flag.

Feedback reads and writes the rows in bulk, under lock (`load_address_states`,
`save_address_states`); preparation reads the addresses it must exclude (`blocked_addresses`);
administrators read one address or a page of them. The rules that change a row are in
`models/quarantine.py` (errors, quarantine, release) and `models/denylist.py` (the deny list).
"""

from dataclasses import dataclass
from datetime import datetime

from tortoise import fields
from tortoise.models import Model
from tortoise.queryset import QuerySet

from models.addresses import MAX_ADDRESS_LENGTH, normalise_address
from models.enums import DenylistReason
from models.errors import BadInput
from models.keyset import Order, Page, Window, keyset_page
from models.sql import Sql, in_list, parse_ts


class AddressStatus(Model):
    """One row per address that has ever failed or been deny-listed."""

    address = fields.CharField(max_length=320, primary_key=True)
    error_count = fields.IntField(default=0)
    last_error_at = fields.DatetimeField(null=True)
    quarantined_at = fields.DatetimeField(null=True)
    quarantine_reason = fields.CharField(max_length=32, null=True)
    denylisted = fields.BooleanField(default=False)
    # Why and since when the address is on the deny list (null for entries made before the
    # reasons were recorded, and when it is not on the list).
    denylist_reason = fields.CharEnumField(
        DenylistReason, max_length=16, null=True, description="deny-list reason"
    )
    denylisted_at = fields.DatetimeField(null=True)

    class Meta:
        table = "address_status"


@dataclass
class AddressState:
    """A plain copy of an AddressStatus row that the quarantine rules update in memory."""

    address: str
    error_count: int = 0
    last_error_at: datetime | None = None
    quarantined_at: datetime | None = None
    quarantine_reason: str | None = None
    denylisted: bool = False
    denylist_reason: DenylistReason | None = None
    denylisted_at: datetime | None = None


def state_of(row: AddressStatus) -> AddressState:
    return AddressState(
        address=row.address,
        error_count=row.error_count,
        last_error_at=row.last_error_at,
        quarantined_at=row.quarantined_at,
        quarantine_reason=row.quarantine_reason,
        denylisted=row.denylisted,
        denylist_reason=row.denylist_reason,
        denylisted_at=row.denylisted_at,
    )


# ---- In bulk: feedback and preparation --------------------------------------------------------


async def load_address_states(sql: Sql, addresses: list[str]) -> dict[str, AddressState]:
    """The rows of these addresses, locked until the transaction ends (PostgreSQL). Rows are
    created first, so that two transactions touching a new address serialise on its row rather
    than both inserting and the second overwriting the first; locks are taken in address order,
    so concurrent batches cannot deadlock."""
    if not addresses:
        return {}
    addresses = sorted(set(addresses))
    if sql.postgres:
        await sql.execute(
            "INSERT INTO address_status (address, error_count, denylisted) VALUES "
            + ",".join(["(?, 0, FALSE)"] * len(addresses))
            + " ON CONFLICT (address) DO NOTHING",
            addresses,
        )
    rows = await sql.rows(
        "SELECT address, error_count, last_error_at, quarantined_at, quarantine_reason,"
        " denylisted, denylist_reason, denylisted_at FROM address_status WHERE address IN "
        + in_list(addresses)
        + " ORDER BY address"
        + sql.for_update(),
        addresses,
    )
    return {
        r["address"]: AddressState(
            address=r["address"],
            error_count=r["error_count"],
            last_error_at=parse_ts(r["last_error_at"]),
            quarantined_at=parse_ts(r["quarantined_at"]),
            quarantine_reason=r["quarantine_reason"],
            denylisted=bool(r["denylisted"]),
            denylist_reason=DenylistReason(r["denylist_reason"]) if r["denylist_reason"] else None,
            denylisted_at=parse_ts(r["denylisted_at"]),
        )
        for r in rows
    }


async def save_address_states(sql: Sql, states: list[AddressState]) -> None:
    """Write the counters and quarantine states back (the deny-list flag is left as it is)."""
    await sql.many(
        "INSERT INTO address_status (address, error_count, last_error_at, quarantined_at,"
        " quarantine_reason, denylisted) VALUES (?,?,?,?,?,?) ON CONFLICT (address) DO UPDATE SET"
        " error_count = excluded.error_count, last_error_at = excluded.last_error_at,"
        " quarantined_at = excluded.quarantined_at,"
        " quarantine_reason = excluded.quarantine_reason",
        [
            [
                s.address,
                s.error_count,
                sql.ts(s.last_error_at),
                sql.ts(s.quarantined_at),
                s.quarantine_reason,
                s.denylisted,
            ]
            for s in sorted(states, key=lambda s: s.address)
        ],
    )


async def blocked_addresses(sql: Sql) -> dict[str, str]:
    """Addresses preparation must exclude, with the reason (deny list wins over quarantine)."""
    rows = await sql.rows(
        "SELECT address, denylisted FROM address_status"
        " WHERE denylisted = ? OR quarantined_at IS NOT NULL",
        [True],
    )
    return {r["address"]: "DENYLISTED" if r["denylisted"] else "QUARANTINED_ADDRESS" for r in rows}


# ---- One by one, and a page at a time: the administrators (SPEC §1: personal data) -------------


async def address_state(address: str) -> AddressState | None:
    """The address's state; None when it never failed nor was deny-listed."""
    row = await AddressStatus.get_or_none(address=normalise_address(address))
    return state_of(row) if row is not None else None


def normalise_search(raw: str | None) -> str | None:
    """A case-insensitive substring of the address; none (or blank) lists everything."""
    if raw is None or not raw.strip():
        return None
    if len(raw) > MAX_ADDRESS_LENGTH:
        raise BadInput(f"'search' is longer than {MAX_ADDRESS_LENGTH} characters")
    return raw.strip()


async def page(
    query: QuerySet[AddressStatus], search: str | None, order: Order, window: Window
) -> Page[AddressState]:
    """One window of a list in its `order`: `search` narrows it (and its total)."""
    if (term := normalise_search(search)) is not None:
        query = query.filter(address__icontains=term)
    found = await keyset_page(query, order, window)
    return Page([state_of(r) for r in found.rows], found.has_more, found.total)
