"""Writes to the deny list: an address on it is excluded by every later preparation (DENYLISTED).

The flag lives on the address's `address_status` row beside its quarantine state; the upsert
below sets only the flag, so an address's error counter and quarantine are left as they are.
"""

from models.sql import Sql


async def denylist(sql: Sql, address: str) -> None:
    """Put an address on the deny list (idempotent)."""
    await sql.execute(
        "INSERT INTO address_status (address, error_count, denylisted) VALUES (?, ?, ?)"
        " ON CONFLICT (address) DO UPDATE SET denylisted = excluded.denylisted",
        [address, 0, True],
    )


async def is_denylisted(sql: Sql, address: str) -> bool:
    rows = await sql.rows("SELECT denylisted FROM address_status WHERE address = ?", [address])
    return bool(rows and rows[0]["denylisted"])
