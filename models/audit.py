"""The audit trail: who did what to which delivery (or address), and when.

An event is written by the same transaction as the action it records (`record` is called inside
the action's `in_transaction()` block), so a refused or failed action leaves none and a
committed one always has its event. Rows hold plain values, never foreign keys: the operator's
name and the delivery's label are snapshots, and a deleted delivery keeps its history.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from tortoise import fields
from tortoise.models import Model
from tortoise.queryset import QuerySet

from models.delivery import utcnow
from models.enums import Role, holds

if TYPE_CHECKING:
    from models.delivery import Delivery


class AuditAction(StrEnum):
    # an operator's actions on a delivery
    CREATED = "CREATED"  # also the engine, for each occurrence of a recurring delivery
    UPDATED = "UPDATED"
    DELETED = "DELETED"
    PREPARED = "PREPARED"
    APPROVED = "APPROVED"
    CONFIRMED = "CONFIRMED"  # confirmSend, occurrences waiting in PENDING_CONFIRMATION too
    PAUSED = "PAUSED"
    RESUMED = "RESUMED"
    STOPPED = "STOPPED"
    PROOF_SENT = "PROOF_SENT"  # sendProof: its number, recipients and the MTA's outcome
    # the engine's status changes
    STARTED = "STARTED"  # a scheduled delivery (or an occurrence) starts sending
    SENT = "SENT"  # every message relayed
    FINISHED = "FINISHED"  # validity period over, or the last occurrence of a recurrence
    FAILED = "FAILED"
    # the MTA is down: the delivery waits (recorded once per outage), then it answers again
    WAITING_FOR_MTA = "WAITING_FOR_MTA"
    MTA_RECOVERED = "MTA_RECOVERED"
    # messages inside an SMTP transaction when the stop came, which the MTA then accepted
    RELAYED_AFTER_STOP = "RELAYED_AFTER_STOP"
    # the administrators' address list actions (no delivery)
    ADDRESS_RELEASED = "ADDRESS_RELEASED"
    ADDRESS_DENYLISTED = "ADDRESS_DENYLISTED"
    ADDRESS_REMOVED_FROM_DENYLIST = "ADDRESS_REMOVED_FROM_DENYLIST"
    # operator management (no delivery): by an administrator, or on the command line
    OPERATOR_CREATED = "OPERATOR_CREATED"
    OPERATOR_REVOKED = "OPERATOR_REVOKED"
    OPERATOR_TOKEN_ROTATED = "OPERATOR_TOKEN_ROTATED"


class AuditActor(StrEnum):
    OPERATOR = "OPERATOR"
    ENGINE = "ENGINE"
    COMMAND_LINE = "COMMAND_LINE"  # `python -m server operator ...`: whoever runs the server


class OperatorLike(Protocol):
    """What an actor is made from (models.operator.Operator; a protocol, so that the audit,
    which the operator module records into, does not import it back)."""

    @property
    def id(self) -> int: ...

    @property
    def name(self) -> str: ...

    @property
    def role_set(self) -> frozenset[Role]: ...


@dataclass(frozen=True)
class Actor:
    """Who acts: an operator (id, name and roles, snapshotted), the engine or the command line
    (neither). The roles let domain rules that depend on them (who may turn approval off)
    live in models/."""

    operator_id: int | None = None
    name: str | None = None
    roles: frozenset[Role] = frozenset()
    console: bool = False

    @classmethod
    def of(cls, operator: OperatorLike) -> "Actor":
        return cls(operator_id=operator.id, name=operator.name, roles=operator.role_set)

    @property
    def kind(self) -> AuditActor:
        if self.operator_id is not None:
            return AuditActor.OPERATOR
        return AuditActor.COMMAND_LINE if self.console else AuditActor.ENGINE

    def may(self, role: Role) -> bool:
        """The engine and the command line act for the system: they hold every role."""
        return self.operator_id is None or holds(self.roles, role)


ENGINE = Actor()
COMMAND_LINE = Actor(console=True)


class AuditEvent(Model):
    id = fields.IntField(primary_key=True)
    at = fields.DatetimeField()
    action = fields.CharEnumField(AuditAction, max_length=40, description="action")
    actor = fields.CharEnumField(AuditActor, max_length=16, description="actor")
    operator_id = fields.IntField(null=True)
    operator_name = fields.CharField(max_length=200, null=True)
    delivery_id = fields.IntField(null=True)
    delivery_label = fields.CharField(max_length=255, null=True)
    detail = fields.JSONField[dict[str, Any]](default=dict)

    class Meta:
        table = "audit_event"
        # A delivery's trail, one operator's events, one action, and a time range; each in id
        # (= time) order for the keyset pages.
        indexes = (("delivery_id", "id"), ("operator_id", "id"), ("action", "id"), ("at",))


async def record(
    action: AuditAction,
    by: Actor,
    *,
    delivery: "Delivery | None" = None,
    at: datetime | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Write one event. Call it inside the action's transaction, after the checks passed."""
    return await AuditEvent.create(
        at=at or utcnow(),
        action=action,
        actor=by.kind,
        operator_id=by.operator_id,
        operator_name=by.name,
        delivery_id=delivery.id if delivery is not None else None,
        delivery_label=delivery.label if delivery is not None else None,
        detail={k: v for k, v in (detail or {}).items() if v is not None},
    )


def events(
    *,
    delivery_id: int | None = None,
    operator_id: int | None = None,
    action: AuditAction | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEvent]:
    """The events that match every filter given; the caller pages them by id (keyset)."""
    query = AuditEvent.all()
    if delivery_id is not None:
        query = query.filter(delivery_id=delivery_id)
    if operator_id is not None:
        query = query.filter(operator_id=operator_id)
    if action is not None:
        query = query.filter(action=action)
    if since is not None:
        query = query.filter(at__gte=_utc(since))
    if until is not None:
        query = query.filter(at__lt=_utc(until))
    return query


def _utc(value: datetime) -> datetime:
    """A time given without an offset is taken as UTC, like every time the product stores."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
