"""Profiles: the recipients. Imported by upsert on the email address (trimmed, case kept)."""

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime
from enum import Enum
from functools import lru_cache
from typing import Any, Final, Literal

from tortoise import fields
from tortoise.models import Model
from tortoise.transactions import in_transaction

from models.errors import BadInput
from models.sql import Sql, in_list
from models.timezones import zone

MAX_IMPORT = 10_000
# Rows per statement: 7 parameters each stays far below both databases' parameter limits.
ROWS_PER_STATEMENT = 1000


class Profile(Model):
    id = fields.IntField(primary_key=True)
    email = fields.CharField(max_length=320, null=True, unique=True)
    phone = fields.CharField(max_length=32, null=True)
    first_name = fields.CharField(max_length=200, null=True)
    last_name = fields.CharField(max_length=200, null=True)
    # An IANA zone (models/timezones.py): a delivery sent in each recipient's zone relays this
    # profile's message at the contact date's local time there (models/send_time.py).
    time_zone = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "profile"


# The column sizes: checked before anything is written (PostgreSQL would refuse the row).
FIELD_LIMITS = {"email": 320, "phone": 32, "first_name": 200, "last_name": 200}
_LIMITS = tuple(FIELD_LIMITS.items())


class _Keep(Enum):
    KEEP = "KEEP"


# A field an import row leaves out: an existing profile keeps its value (a new one has none).
# An explicit None clears the value.
KEEP: Final = _Keep.KEEP
Value = str | None | Literal[_Keep.KEEP]


# Not frozen: a frozen dataclass's __init__ was a fifth of the CPU a row of a CSV upload costs
# (bench/csv_import.py); nothing changes a row once made.
@dataclass(slots=True)
class ProfileData:
    email: str | None
    phone: Value = KEEP
    first_name: Value = KEEP
    last_name: Value = KEEP
    time_zone: Value = KEEP

    def given(self) -> dict[str, str | None]:
        """The fields this row sets (the email, the key, is not among them)."""
        return {name: value for name in DATA_FIELDS if (value := getattr(self, name)) is not KEEP}


# The columns an import writes besides the email, in a fixed order.
DATA_FIELDS = tuple(f.name for f in dataclass_fields(ProfileData) if f.name != "email")


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    profiles: list[Profile]  # in row order; every column loaded but the timestamps


_READ_BACK = sorted(Profile._meta.db_fields - {"created_at", "updated_at"})


def check_row(row: ProfileData) -> None:
    """What one row must satisfy to be written: the JSON import and the CSV upload both call
    this (BadInput says what is wrong; the caller says which row)."""
    for name, limit in _LIMITS:
        value = getattr(row, name)
        # (stripping only shortens: the email is stripped only when it may matter)
        too_long = isinstance(value, str) and len(value) > limit
        if too_long and (name != "email" or len(value.strip()) > limit):
            raise BadInput(f"{name} is longer than {limit} characters")
    if isinstance(row.time_zone, str):
        zone(row.time_zone)  # an IANA name, or BadInput saying so


def _check(rows: Sequence[ProfileData]) -> None:
    if len(rows) > MAX_IMPORT:
        raise BadInput(f"at most {MAX_IMPORT} profiles per import (got {len(rows)})")
    seen: set[str] = set()
    for index, row in enumerate(rows):
        try:
            check_row(row)
        except BadInput as error:
            raise BadInput(f"profile {index + 1}: {error.message}") from None
        key = _key(row.email)
        if key and key in seen:
            raise BadInput(f"the email {key!r} appears twice in this import")
        if key:
            seen.add(key)


async def import_profiles(rows: Sequence[ProfileData]) -> ImportResult:
    """Upsert profiles by email in one transaction; a row without email is always created.

    A field a row leaves out keeps the profile's value; None clears it. The email is the key as
    given (trimmed), even when it is not a valid address: preparation excludes invalid addresses
    and case-insensitive duplicates with a reason, which is what an operator wants to see.

    Concurrent imports that share new emails all succeed: each email is created by one of them
    (INSERT ... ON CONFLICT DO NOTHING) and updated by the others, and rows are written and
    locked in email order, so two imports never wait for each other in a cycle.
    """
    _check(rows)
    now = datetime.now(UTC)
    keyed = sorted(((key, row) for row in rows if (key := _key(row.email))), key=lambda kr: kr[0])
    async with in_transaction() as conn:
        sql = Sql(conn)
        ids = await _insert_new(sql, [(key, row.given()) for key, row in keyed], now)
        created = len(ids)
        existing = [(key, row) for key, row in keyed if key not in ids]
        ids.update(await _update(sql, existing, now))
        blank = [row.given() for row in rows if not _key(row.email)]
        no_email = iter(await _insert_without_email(sql, blank, now))
        created += len(blank)
        order = [ids[key] if (key := _key(row.email)) else next(no_email) for row in rows]
        # Read back without the timestamps: parsing them was two thirds of a 10,000-row import.
        found: dict[int, Profile] = {}
        for start in range(0, len(order), 5000):  # PostgreSQL takes at most 32,767 parameters
            chunk = order[start : start + 5000]
            for profile in await Profile.filter(id__in=chunk).only(*_READ_BACK):
                found[profile.id] = profile
    return ImportResult(created, len(existing), [found[i] for i in order])


def _values(given: dict[str, str | None]) -> list[str | None]:
    return [given.get(name) for name in DATA_FIELDS]


async def _insert_new(
    sql: Sql, rows: Sequence[tuple[str, dict[str, str | None]]], now: datetime
) -> dict[str, int]:
    """Insert the rows whose email is new; returns email -> id of those inserted (a row whose
    email exists, or is being inserted by a concurrent import that then commits, is skipped)."""
    columns = ", ".join(["email", *DATA_FIELDS, "created_at", "updated_at"])
    width = len(DATA_FIELDS) + 3
    inserted: dict[str, int] = {}
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        params: list[Any] = []
        for key, given in chunk:
            params += [key, *_values(given), sql.ts(now), sql.ts(now)]
        found = await sql.rows(
            f"INSERT INTO profile ({columns}) VALUES "
            + ",".join([in_list(range(width))] * len(chunk))
            + " ON CONFLICT (email) DO NOTHING RETURNING id, email",
            params,
        )
        inserted.update({r["email"]: int(r["id"]) for r in found})
    return inserted


async def _insert_without_email(
    sql: Sql, rows: Sequence[dict[str, str | None]], now: datetime
) -> list[int]:
    """Create profiles without an email, one statement per chunk; their ids in row order."""
    ids: list[int] = []
    columns = ", ".join([*DATA_FIELDS, "created_at", "updated_at"])
    width = len(DATA_FIELDS) + 2
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        params: list[Any] = []
        for given in chunk:
            params += [*_values(given), sql.ts(now), sql.ts(now)]
        found = await sql.rows(
            f"INSERT INTO profile ({columns}) VALUES "
            + ",".join([in_list(range(width))] * len(chunk))
            + " RETURNING id",
            params,
        )
        # Both databases number a multi-row INSERT's rows in VALUES order.
        ids += sorted(int(r["id"]) for r in found)
    return ids


async def _update(
    sql: Sql, rows: Sequence[tuple[str, ProfileData]], now: datetime
) -> dict[str, int]:
    """Set the given fields of existing profiles; returns email -> id. The rows are locked in
    email order first (PostgreSQL), so concurrent imports cannot deadlock."""
    ids: dict[str, int] = {}
    for start in range(0, len(rows), 5000):
        emails = [key for key, _ in rows[start : start + 5000]]
        found = await sql.rows(
            f"SELECT id, email FROM profile WHERE email IN {in_list(emails)} ORDER BY email"
            + sql.for_update(),
            emails,
        )
        ids.update({r["email"]: int(r["id"]) for r in found})
    by_shape: dict[tuple[str, ...], list[tuple[str, dict[str, str | None]]]] = {}
    for key, row in rows:
        given = row.given()
        by_shape.setdefault(tuple(given), []).append((key, given))
    for shape, group in by_shape.items():
        # VALUES columns are column1 (the email), column2... on both databases.
        sets = ", ".join(
            ["updated_at = ?", *(f"{name} = v.column{i + 2}" for i, name in enumerate(shape))]
        )
        for start in range(0, len(group), ROWS_PER_STATEMENT):
            chunk = group[start : start + ROWS_PER_STATEMENT]
            params: list[Any] = [sql.ts(now)]
            for key, given in chunk:
                params += [key, *(given[name] for name in shape)]
            await sql.execute(
                f"UPDATE profile SET {sets} FROM (VALUES "
                + ",".join([in_list(range(len(shape) + 1))] * len(chunk))
                + ") AS v WHERE profile.email = v.column1",
                params,
            )
    return ids


def _key(email: str | None) -> str | None:
    return (email or "").strip() or None


@dataclass(frozen=True)
class UpsertCounts:
    created: int
    updated: int


async def upsert_profiles(rows: Sequence[ProfileData]) -> UpsertCounts:
    """Write one batch of a bulk upload (each row already passed `check_row`), in one
    transaction, without reading the profiles back: the CSV upload's path.

    The same upsert as `import_profiles` (a field a row leaves out keeps its value, a row
    without email is always created), but rows of a stream apply in order: an email on several
    rows gets each of them as a patch, the later one winning field by field, instead of being
    refused (a file has no answer that lists one profile per row). `INSERT ... ON CONFLICT
    (email) DO UPDATE`, one statement per run of rows that give the same fields: executemany on
    SQLite (a row is one statement, written whole or not at all), arrays through unnest on
    PostgreSQL (the statement says which rows it inserted, so the counts stay exact while other
    uploads run). Rows go in email order, so concurrent uploads that share emails lock them in
    the same order and never wait for each other in a cycle."""
    now = datetime.now(UTC)
    merged: dict[str, dict[str, str | None]] = {}
    repeats = 0
    blank: list[dict[str, str | None]] = []
    for row in rows:
        key = _key(row.email)
        if key is None:
            blank.append(row.given())
        elif key in merged:
            merged[key].update(row.given())
            repeats += 1
        else:
            merged[key] = row.given()
    keys = sorted(merged)
    async with in_transaction() as conn:
        sql = Sql(conn)
        if not sql.postgres:
            top = await sql.rows("SELECT COALESCE(MAX(id), 0) AS top FROM profile")
        stamp = sql.ts(now)
        inserted = 0
        run: list[list[Any]] = []
        shape: tuple[str, ...] | None = None
        for key in [*keys, None]:  # a statement per run of rows that give the same fields
            given = merged[key] if key is not None else None
            if run and shape is not None and (given is None or tuple(given) != shape):
                if sql.postgres:  # arrays, and the count of rows inserted
                    arrays = [list(column) for column in zip(*run, strict=True)]
                    found = await sql.rows(_upsert_arrays(shape), [stamp, stamp, *arrays])
                    inserted += sum(1 for r in found if r["inserted"])
                else:  # the rows as they are: a copy of a million rows is CPU time too
                    await conn.execute_many(_upsert(shape), run)
                run = []
            if key is not None and given is not None:
                shape = tuple(given)
                run.append(
                    [key, *given.values()] if sql.postgres else [key, *given.values(), stamp, stamp]
                )
        if blank:
            columns = ", ".join([*DATA_FIELDS, "created_at", "updated_at"])
            await sql.many(
                f"INSERT INTO profile ({columns}) VALUES {in_list(range(len(DATA_FIELDS) + 2))}",
                [[*_values(given), stamp, stamp] for given in blank],
            )
        if not sql.postgres:  # one writer: what has an id above the largest before is new
            new = await sql.rows("SELECT COUNT(*) AS n FROM profile WHERE id > ?", [top[0]["top"]])
            inserted = int(new[0]["n"]) - len(blank)
    return UpsertCounts(inserted + len(blank), len(keys) - inserted + repeats)


@lru_cache(maxsize=64)
def _upsert_arrays(shape: tuple[str, ...]) -> str:
    """PostgreSQL: the same upsert from one array per column, in one statement, saying which
    rows it inserted (xmax is 0 on a row version no transaction has updated or locked)."""
    columns = ", ".join(["email", *shape, "created_at", "updated_at"])
    sets = ", ".join(["updated_at = excluded.updated_at", *(f"{n} = excluded.{n}" for n in shape)])
    arrays = ", ".join(["?::text[]"] * (len(shape) + 1))
    return (
        f"INSERT INTO profile ({columns}) SELECT u.*, ?, ? FROM unnest({arrays}) AS u"
        f" ON CONFLICT (email) DO UPDATE SET {sets} RETURNING (xmax = 0) AS inserted"
    )


@lru_cache(maxsize=64)
def _upsert(shape: tuple[str, ...]) -> str:
    """The upsert of rows that give the fields `shape` (in that order): a new profile gets
    them (and null for the others), an existing one only them."""
    columns = ", ".join(["email", *shape, "created_at", "updated_at"])
    sets = ", ".join(["updated_at = excluded.updated_at", *(f"{n} = excluded.{n}" for n in shape)])
    return (
        f"INSERT INTO profile ({columns}) VALUES {in_list(range(len(shape) + 3))}"
        f" ON CONFLICT (email) DO UPDATE SET {sets}"
    )
