"""The closed vocabularies of the domain: every status, mode and reason the SPEC names.

Values are the contract's UPPER_CASE names so that the database, GraphQL and the docs all
spell them the same way.
"""

from collections.abc import Iterable
from enum import StrEnum


class Channel(StrEnum):
    EMAIL = "EMAIL"
    SMS = "SMS"
    PUSH = "PUSH"


class DeliveryStatus(StrEnum):
    DRAFT = "DRAFT"
    READY = "READY"
    PENDING_CONFIRMATION = "PENDING_CONFIRMATION"
    SCHEDULED = "SCHEDULED"
    IN_PROGRESS = "IN_PROGRESS"
    PAUSED = "PAUSED"
    SENT = "SENT"
    FINISHED = "FINISHED"
    STOPPED = "STOPPED"
    FAILED = "FAILED"


# A delivery in one of these states never changes again; subscriptions complete on them.
TERMINAL_STATUSES = frozenset(
    {DeliveryStatus.FINISHED, DeliveryStatus.STOPPED, DeliveryStatus.FAILED}
)


class SendingLogStatus(StrEnum):
    TO_SEND = "TO_SEND"
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"
    IGNORED = "IGNORED"


class FailureType(StrEnum):
    HARD = "HARD"
    SOFT = "SOFT"
    IGNORED = "IGNORED"


class FeedbackMode(StrEnum):
    EFS = "EFS"
    LEGACY = "LEGACY"


class Role(StrEnum):
    ADMINISTRATION = "ADMINISTRATION"
    PREPARE_DELIVERIES = "PREPARE_DELIVERIES"
    APPROVE_DELIVERIES = "APPROVE_DELIVERIES"
    START_DELIVERIES = "START_DELIVERIES"


def holds(roles: Iterable[Role], role: Role) -> bool:
    """Whether these roles grant `role`: ADMINISTRATION may do everything, and
    START_DELIVERIES includes PREPARE_DELIVERIES (SPEC §1)."""
    held = frozenset(roles)
    if Role.ADMINISTRATION in held or role in held:
        return True
    return role is Role.PREPARE_DELIVERIES and Role.START_DELIVERIES in held


class FeedbackType(StrEnum):
    """What the MTA reports about one message (the webhook's `type`)."""

    DELIVERED = "delivered"
    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCE = "soft_bounce"
    # The recipient said no (issue 15): a spam complaint (a feedback loop, SES, SparkPost) and
    # an unsubscribe. They change no status; the address goes on the deny list.
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"


class DenylistReason(StrEnum):
    """Why an address is on the deny list (issue 15)."""

    COMPLAINT = "COMPLAINT"  # the recipient reported a message as spam (a feedback loop)
    UNSUBSCRIBED = "UNSUBSCRIBED"  # the recipient unsubscribed (our link, or the provider's)
    ADMINISTRATOR = "ADMINISTRATOR"  # an administrator added it (denylistAddress)


class FailureReason(StrEnum):
    """SPEC §4 failure reasons, plus the exclusion reasons of preparation."""

    # hard
    USER_UNKNOWN = "USER_UNKNOWN"
    ADDRESS_EMPTY = "ADDRESS_EMPTY"
    QUARANTINED_ADDRESS = "QUARANTINED_ADDRESS"
    DENYLISTED = "DENYLISTED"
    # soft
    MAILBOX_FULL = "MAILBOX_FULL"
    INVALID_DOMAIN = "INVALID_DOMAIN"
    UNDEFINED = "UNDEFINED"
    # soft or hard, as the MTA qualifies it
    UNREACHABLE = "UNREACHABLE"
    REFUSED = "REFUSED"
    ACCOUNT_DISABLED = "ACCOUNT_DISABLED"
    # ignored
    DUPLICATE = "DUPLICATE"
    ERROR_IGNORED = "ERROR_IGNORED"
    NOT_CONNECTED = "NOT_CONNECTED"
    # additions of this product (documented in docs/sending-logs.md)
    INVALID_ADDRESS = "INVALID_ADDRESS"
    CANCELLED = "CANCELLED"
    # the validity period ended before the message could be relayed (the MTA stayed down, or
    # the delivery stayed paused or failed): FAILED / SOFT, counted in processed and failed
    NOT_RELAYED = "NOT_RELAYED"


class WaitingReason(StrEnum):
    """What a delivery in progress is waiting for before it can go on."""

    MTA_UNAVAILABLE = "MTA_UNAVAILABLE"  # the relay is down, busy or unreachable: retrying


# SPEC §4's reason lists, row by row, as data. Every provider table is checked against them
# when its module is imported (models/reasons.py).
R = FailureReason
HARD_ONLY = frozenset({R.USER_UNKNOWN, R.ADDRESS_EMPTY, R.QUARANTINED_ADDRESS, R.DENYLISTED})
SOFT_ONLY = frozenset({R.MAILBOX_FULL, R.INVALID_DOMAIN, R.UNDEFINED})
EITHER = frozenset({R.UNREACHABLE, R.REFUSED, R.ACCOUNT_DISABLED})  # as the MTA qualifies it
# Errors with these reasons are recorded but never change a status or quarantine an address.
IGNORED_REASONS = frozenset({R.DUPLICATE, R.ERROR_IGNORED, R.NOT_CONNECTED})
# The product's own reasons (docs/sending-logs.md): preparation, a stop and the end of the
# validity period with messages never relayed give them; an MTA
# never reports them.
PRODUCT_ONLY = frozenset({R.INVALID_ADDRESS, R.CANCELLED, R.NOT_RELAYED})

HARD_REASONS = HARD_ONLY | EITHER  # what a hard failure may carry
SOFT_REASONS = SOFT_ONLY | EITHER  # what a soft failure may carry
MTA_REASONS = HARD_REASONS | SOFT_REASONS | IGNORED_REASONS  # what an MTA may report
