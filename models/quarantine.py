"""Reading and writing address states: in bulk for feedback and preparation, one by one for
the administrators who list, release and deny-list addresses."""

from dataclasses import dataclass
from datetime import datetime

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from models.addresses import AddressState, AddressStatus
from models.audit import Actor, AuditAction
from models.audit import record as audit
from models.enums import Channel
from models.errors import BadInput, NotFound
from models.sql import Sql, in_list, parse_ts


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
        " denylisted FROM address_status WHERE address IN "
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
        )
        for r in rows
    }


async def save_address_states(sql: Sql, states: list[AddressState]) -> None:
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


# --- The administrators' view: listing, release and the deny list (SPEC §1: personal data) ---

MAX_ADDRESS_LENGTH = 320  # the column's width; a longer input cannot name a stored address


def normalise_address(raw: str) -> str:
    """The address as preparation stores it: an email trimmed and lower-cased, an SMS number as
    `+digits` (or digits alone when written without `+`), so that it matches the logs."""
    from models.preparation import address_for  # here: preparation imports this module

    text = raw.strip()
    if not text:
        raise BadInput("the address is empty")
    if len(text) > MAX_ADDRESS_LENGTH:
        raise BadInput(f"the address is longer than {MAX_ADDRESS_LENGTH} characters")
    channel = Channel.EMAIL if "@" in text else Channel.SMS
    address, valid = address_for(channel, text, text)
    if address is None or not valid:
        raise BadInput(f"{text[:64]!r} is neither a valid email address nor a phone number")
    return address


def normalise_search(raw: str | None) -> str | None:
    """A case-insensitive substring of the address; none (or blank) lists everything."""
    if raw is None or not raw.strip():
        return None
    if len(raw) > MAX_ADDRESS_LENGTH:
        raise BadInput(f"'search' is longer than {MAX_ADDRESS_LENGTH} characters")
    return raw.strip()


def state_of(row: AddressStatus) -> AddressState:
    return AddressState(
        address=row.address,
        error_count=row.error_count,
        last_error_at=row.last_error_at,
        quarantined_at=row.quarantined_at,
        quarantine_reason=row.quarantine_reason,
        denylisted=row.denylisted,
    )


async def address_state(address: str) -> AddressState | None:
    """The address's state; None when it never failed nor was deny-listed."""
    row = await AddressStatus.get_or_none(address=normalise_address(address))
    return state_of(row) if row is not None else None


@dataclass(frozen=True)
class Page:
    states: list[AddressState]
    has_more: bool
    total: int


async def quarantined_page(
    search: str | None, after: tuple[datetime, str] | None, limit: int
) -> Page:
    """Quarantined addresses, newest quarantine first (ties by address); keyset on that pair,
    so a page never shifts when addresses are quarantined while an administrator reads."""
    query = AddressStatus.filter(quarantined_at__isnull=False)
    if (term := normalise_search(search)) is not None:
        query = query.filter(address__icontains=term)
    total = await query.count()
    if after is not None:
        at, address = after
        query = query.filter(Q(quarantined_at__lt=at) | Q(quarantined_at=at, address__gt=address))
    rows = await query.order_by("-quarantined_at", "address").limit(limit + 1)
    return Page([state_of(r) for r in rows[:limit]], len(rows) > limit, total)


async def denylisted_page(search: str | None, after: str | None, limit: int) -> Page:
    """Deny-listed addresses in address order (the table records no date for the deny list)."""
    query = AddressStatus.filter(denylisted=True)
    if (term := normalise_search(search)) is not None:
        query = query.filter(address__icontains=term)
    total = await query.count()
    if after is not None:
        query = query.filter(address__gt=after)
    rows = await query.order_by("address").limit(limit + 1)
    return Page([state_of(r) for r in rows[:limit]], len(rows) > limit, total)


async def release(address: str, by: Actor) -> AddressState:
    """Take an address out of quarantine and start its error counter again.

    One conditional UPDATE: it takes the row lock that the feedback path's
    `load_address_states` (FOR UPDATE) waits for, so feedback either ran before (and the
    release clears what it wrote) or reads the released row afresh; it never writes back a
    state read before the release.
    """
    address = normalise_address(address)
    async with in_transaction():
        released = await AddressStatus.filter(address=address, quarantined_at__isnull=False).update(
            error_count=0, last_error_at=None, quarantined_at=None, quarantine_reason=None
        )
        if not released:
            raise NotFound(f"{address} is not in quarantine")
        await audit(AuditAction.ADDRESS_RELEASED, by, detail={"address": address})
        return state_of(await AddressStatus.get(address=address))


async def add_to_denylist(address: str, by: Actor) -> AddressState:
    """Put an address on the deny list (idempotent); its quarantine state is left as it is."""
    address = normalise_address(address)
    async with in_transaction() as conn:
        await Sql(conn).execute(
            "INSERT INTO address_status (address, error_count, denylisted) VALUES (?, ?, ?)"
            " ON CONFLICT (address) DO UPDATE SET denylisted = excluded.denylisted",
            [address, 0, True],
        )
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
