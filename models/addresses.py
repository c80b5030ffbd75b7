"""Address hygiene: syntax checks, the deny list and quarantine (SPEC §4).

Quarantine rules: a hard bounce quarantines at once; a soft error increments the address's
error counter (two errors count separately only when at least `min_gap` apart); the address is
quarantined when the counter reaches `threshold`; the counter starts again when the last
significant error is older than `reset_after`. A successful delivery after a retry resets the
counter and releases the address. Ignored errors never count.
"""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise import fields
from tortoise.models import Model

_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)


def normalise_email(email: str | None) -> str | None:
    if email is None:
        return None
    email = email.strip().lower()
    return email or None


def is_valid_email(email: str) -> bool:
    return (
        len(email) <= 254
        and "." not in (email[0], email.split("@")[0][-1:])
        and bool(_EMAIL.match(email))
    )


@dataclass(frozen=True)
class QuarantinePolicy:
    threshold: int = 5
    min_gap: timedelta = timedelta(hours=24)
    reset_after: timedelta = timedelta(days=10)


class AddressStatus(Model):
    """One row per address that has ever failed or been deny-listed."""

    address = fields.CharField(max_length=320, primary_key=True)
    error_count = fields.IntField(default=0)
    last_error_at = fields.DatetimeField(null=True)
    quarantined_at = fields.DatetimeField(null=True)
    quarantine_reason = fields.CharField(max_length=32, null=True)
    denylisted = fields.BooleanField(default=False)

    class Meta:
        table = "address_status"


@dataclass
class AddressState:
    """A plain copy of an AddressStatus row that the rules below update in memory."""

    address: str
    error_count: int = 0
    last_error_at: datetime | None = None
    quarantined_at: datetime | None = None
    quarantine_reason: str | None = None
    denylisted: bool = False


def on_hard_error(state: AddressState, at: datetime, reason: str) -> None:
    state.error_count += 1
    state.last_error_at = at
    if state.quarantined_at is None:
        state.quarantined_at = at
        state.quarantine_reason = reason


def on_soft_error(state: AddressState, at: datetime, policy: QuarantinePolicy) -> None:
    last = state.last_error_at
    if last is not None and at - last > policy.reset_after:
        state.error_count = 0
        last = None
    if last is None or at - last >= policy.min_gap:
        state.error_count += 1
        state.last_error_at = at
    if state.error_count >= policy.threshold and state.quarantined_at is None:
        state.quarantined_at = at
        state.quarantine_reason = "SOFT_ERRORS"


def on_success_after_retry(state: AddressState) -> None:
    state.error_count = 0
    state.last_error_at = None
    state.quarantined_at = None
    state.quarantine_reason = None
