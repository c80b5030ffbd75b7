"""Quarantine (SPEC §4): the rules that count an address's errors and quarantine it, and the
administrators' release and list.

A hard bounce quarantines at once; a soft error increments the address's error counter (two
errors count separately only when at least `min_gap` apart); the address is quarantined when
the counter reaches `threshold`; the counter starts again when the last significant error is
older than `reset_after`. A successful delivery after a retry resets the counter and releases
the address. Ignored errors never count. Feedback applies the rules (`models/feedback.py`) to
the states of `models/address_status.py`; preparation excludes quarantined addresses.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from models.address_status import AddressState, AddressStatus, page, state_of
from models.addresses import normalise_address
from models.audit import Actor, AuditAction
from models.audit import record as audit
from models.errors import NotFound
from models.keyset import Order, Page, Window


@dataclass(frozen=True)
class QuarantinePolicy:
    threshold: int = 5
    min_gap: timedelta = timedelta(hours=24)
    reset_after: timedelta = timedelta(days=10)


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


# ---- The administrators' release and list ------------------------------------------------------


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


# Newest quarantine first (ties by address): a page never shifts when addresses are
# quarantined while an administrator reads.
QUARANTINE_ORDER = Order(("-quarantined_at", "address"))


async def quarantined_page(search: str | None, window: Window) -> Page[AddressState]:
    """Quarantined addresses, in QUARANTINE_ORDER."""
    query = AddressStatus.filter(quarantined_at__isnull=False)
    return await page(query, search, QUARANTINE_ORDER, window)
