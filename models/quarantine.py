"""Reading and writing address states in bulk, and the quarantine queries of preparation."""

from models.addresses import AddressState
from models.sql import Sql, in_list, parse_ts


async def load_address_states(sql: Sql, addresses: list[str]) -> dict[str, AddressState]:
    if not addresses:
        return {}
    rows = await sql.rows(
        "SELECT address, error_count, last_error_at, quarantined_at, quarantine_reason,"
        " denylisted FROM address_status WHERE address IN " + in_list(addresses) + sql.for_update(),
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
