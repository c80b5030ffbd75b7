"""Profiles: the recipients. Imported by upsert on the email address (trimmed, case kept)."""

from dataclasses import dataclass

from tortoise import fields
from tortoise.models import Model
from tortoise.transactions import in_transaction

from models.errors import BadInput

MAX_IMPORT = 10_000


class Profile(Model):
    id = fields.IntField(primary_key=True)
    email = fields.CharField(max_length=320, null=True, unique=True)
    phone = fields.CharField(max_length=32, null=True)
    first_name = fields.CharField(max_length=200, null=True)
    last_name = fields.CharField(max_length=200, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "profile"


# The column sizes: checked before anything is written (PostgreSQL would refuse the row).
FIELD_LIMITS = {"email": 320, "phone": 32, "first_name": 200, "last_name": 200}


@dataclass(frozen=True)
class ProfileData:
    email: str | None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    profiles: list[Profile]


async def import_profiles(rows: list[ProfileData]) -> ImportResult:
    """Upsert profiles by email in one transaction; a row without email is always created.

    The email is the key as given (trimmed), even when it is not a valid address: preparation
    excludes invalid addresses and case-insensitive duplicates with a reason, which is what an
    operator wants to see.
    """
    if len(rows) > MAX_IMPORT:
        raise BadInput(f"at most {MAX_IMPORT} profiles per import (got {len(rows)})")
    for index, row in enumerate(rows):
        for name, limit in FIELD_LIMITS.items():
            value = getattr(row, name)
            if value is not None and len(value.strip() if name == "email" else value) > limit:
                raise BadInput(f"profile {index + 1}: {name} is longer than {limit} characters")
    seen: set[str] = set()
    for row in rows:
        key = _key(row.email)
        if key and key in seen:
            raise BadInput(f"the email {key!r} appears twice in this import")
        if key:
            seen.add(key)
    created = updated = 0
    async with in_transaction():
        existing = {
            p.email: p for p in await Profile.filter(email__in=list(seen)) if p.email is not None
        }
        fresh: list[Profile] = []
        for row in rows:
            key = _key(row.email)
            values = {
                "email": key,
                "phone": row.phone,
                "first_name": row.first_name,
                "last_name": row.last_name,
            }
            profile = existing.get(key) if key else None
            if profile is None:
                fresh.append(Profile(**values))
            else:
                profile.update_from_dict(values)
                await profile.save()
                updated += 1
        with_email = [p for p in fresh if p.email]
        if with_email:
            await Profile.bulk_create(with_email, batch_size=1000)
            for p in await Profile.filter(email__in=[p.email for p in with_email]):
                existing[p.email] = p  # type: ignore[index]
        for p in fresh:
            if not p.email:
                await p.save()
        created = len(fresh)
    out = [existing[key] if (key := _key(row.email)) else None for row in rows]
    # Rows without an email have no key: give them the created objects, in order.
    no_email = iter(p for p in fresh if not p.email)
    profiles = [p if p is not None else next(no_email) for p in out]
    return ImportResult(created=created, updated=updated, profiles=profiles)


def _key(email: str | None) -> str | None:
    return (email or "").strip() or None
