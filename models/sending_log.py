"""Sending logs and the feedback transitions of SPEC §4, written as the spec's two tables.

A log's state is its status plus the type of its last failure; an outcome is what happened to
the message. `EFS_TABLE` and `LEGACY_TABLE` map (status, failure type, outcome) to the new
(status, failure type). A pair that is not in a table changes nothing: the event is recorded
and the log keeps its status (for example a report that arrives for a hard-bounced message).
KPI changes follow from the status change alone (sent / pending / failed counters), which is
how the "KPIs" column of the spec falls out of the "log status" column.
"""

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from models.enums import FailureType, FeedbackMode, FeedbackType, SendingLogStatus

if TYPE_CHECKING:
    from models.delivery import Delivery
    from models.profile import Profile


class Outcome(StrEnum):
    RELAYED = "relayed"  # the message was handed to the MTA
    DELIVERED = "delivered"  # the MTA reports delivery (first try or a retry)
    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCE = "soft_bounce"  # a first soft bounce, or a retry that soft-bounces again
    EXPIRED = "expired"  # the validity period is over


OUTCOME_OF_FEEDBACK = {
    FeedbackType.DELIVERED: Outcome.DELIVERED,
    FeedbackType.HARD_BOUNCE: Outcome.HARD_BOUNCE,
    FeedbackType.SOFT_BOUNCE: Outcome.SOFT_BOUNCE,
}

TO_SEND, PENDING, SENT, FAILED = (
    SendingLogStatus.TO_SEND,
    SendingLogStatus.PENDING,
    SendingLogStatus.SENT,
    SendingLogStatus.FAILED,
)
HARD, SOFT = FailureType.HARD, FailureType.SOFT

State = tuple[SendingLogStatus, FailureType | None]
Table = dict[tuple[SendingLogStatus, FailureType | None, Outcome], State]

# With the Email Feedback Service (SPEC §4, first table).
EFS_TABLE: Table = {
    # step                                         before              -> after
    # message relayed to the MTA: Delivered % and Bounces + errors % start at 0 %
    (TO_SEND, None, Outcome.RELAYED): (PENDING, None),
    # MTA reports delivery in real time: Delivered % goes up
    (PENDING, None, Outcome.DELIVERED): (SENT, None),
    # MTA reports a hard bounce: Bounces + errors % goes up
    (PENDING, None, Outcome.HARD_BOUNCE): (FAILED, HARD),
    # MTA reports a soft bounce: Bounces + errors % goes up
    (PENDING, None, Outcome.SOFT_BOUNCE): (FAILED, SOFT),
    # a retry soft-bounces again: no change (the retry count grows)
    (FAILED, SOFT, Outcome.SOFT_BOUNCE): (FAILED, SOFT),
    # a retry of a soft bounce succeeds: Delivered % up, Bounces + errors % down
    (FAILED, SOFT, Outcome.DELIVERED): (SENT, None),
    # a retry ends in a hard bounce: still failed, now for good
    (FAILED, SOFT, Outcome.HARD_BOUNCE): (FAILED, HARD),
    # the retries fail (validity period over): no change
    (FAILED, SOFT, Outcome.EXPIRED): (FAILED, SOFT),
}

# Without it (SPEC §4, second table).
LEGACY_TABLE: Table = {
    # message relayed to the MTA: Delivered % starts at 100 %
    (TO_SEND, None, Outcome.RELAYED): (SENT, None),
    # MTA reports a hard bounce: Delivered % down, Bounces + errors % up
    (SENT, None, Outcome.HARD_BOUNCE): (FAILED, HARD),
    # MTA reports a soft bounce: no change
    (SENT, None, Outcome.SOFT_BOUNCE): (SENT, SOFT),
    (SENT, SOFT, Outcome.SOFT_BOUNCE): (SENT, SOFT),
    # a retry of a soft bounce succeeds: no change
    (SENT, SOFT, Outcome.DELIVERED): (SENT, None),
    # a retry ends in a hard bounce
    (SENT, SOFT, Outcome.HARD_BOUNCE): (FAILED, HARD),
    # the retries of a soft bounce fail (validity period over): Delivered % down, Bounces up
    (SENT, SOFT, Outcome.EXPIRED): (FAILED, SOFT),
    # delivery confirms what LEGACY already assumed: no change
    (SENT, None, Outcome.DELIVERED): (SENT, None),
}

TABLES: dict[FeedbackMode, Table] = {FeedbackMode.EFS: EFS_TABLE, FeedbackMode.LEGACY: LEGACY_TABLE}


def transition(
    mode: FeedbackMode,
    status: SendingLogStatus,
    failure_type: FailureType | None,
    outcome: Outcome,
) -> State | None:
    """The new state, or None when the table has no row (the event changes nothing)."""
    return TABLES[mode].get((status, failure_type, outcome))


# Statuses that the delivery's KPI counters count (to send = all non-excluded logs).
COUNTED = {SENT: "sent", PENDING: "pending", FAILED: "failed"}
PROCESSED_STATUSES = frozenset({PENDING, SENT, FAILED})


def counter_deltas(before: SendingLogStatus, after: SendingLogStatus) -> dict[str, int]:
    """How the delivery's counters move when one log goes from `before` to `after`."""
    deltas: dict[str, int] = {}
    if before == after:
        return deltas
    if before in COUNTED:
        deltas[COUNTED[before]] = deltas.get(COUNTED[before], 0) - 1
    if after in COUNTED:
        deltas[COUNTED[after]] = deltas.get(COUNTED[after], 0) + 1
    if before not in PROCESSED_STATUSES and after in PROCESSED_STATUSES:
        deltas["processed"] = 1
    return deltas


class SendingLog(Model):
    """One per targeted recipient. Excluded recipients get one too (status IGNORED, excluded)."""

    id = fields.IntField(primary_key=True)
    delivery: fields.ForeignKeyRelation["Delivery"] = fields.ForeignKeyField(
        "models.Delivery", related_name="sending_logs", on_delete=fields.CASCADE
    )
    profile: fields.ForeignKeyNullableRelation["Profile"] = fields.ForeignKeyField(
        "models.Profile", related_name="sending_logs", null=True, on_delete=fields.SET_NULL
    )
    address = fields.CharField(max_length=320)
    status = fields.CharEnumField(
        SendingLogStatus, max_length=8, default=TO_SEND, description="status"
    )
    excluded = fields.BooleanField(default=False)
    failure_type = fields.CharEnumField(
        FailureType, max_length=8, null=True, description="failure type"
    )
    failure_reason = fields.CharField(max_length=32, null=True)
    message_id = fields.CharField(max_length=128, null=True, unique=True)
    retries = fields.IntField(default=0)
    event_at = fields.DatetimeField(null=True)
    # Epoch milliseconds until which an engine worker holds this log (internal; see relay.py).
    claimed_until = fields.BigIntField(null=True)
    # Epoch milliseconds at which the product retries a message the MTA refused for now
    # (an SMTP 4xx): see relay.claim_retries. Null when no retry is planned.
    retry_at = fields.BigIntField(null=True)
    # Epoch milliseconds before which the engine does not relay this message: its recipient's
    # send time (models/send_time.py) or its wave's (models/waves.py). Null: at once.
    due_at = fields.BigIntField(null=True)
    # When the recipient complained about this message (a spam report) and when they
    # unsubscribed from it: the first time of each, which the KPIs count (models/optouts.py).
    complained_at = fields.DatetimeField(null=True)
    unsubscribed_at = fields.DatetimeField(null=True)

    delivery_id: int
    profile_id: int | None

    class Meta:
        table = "sending_log"
        # (delivery_id, status, id): a claim takes the next batch of TO_SEND logs in id order
        # straight from the index; on (delivery_id, status) PostgreSQL walked the primary key
        # past every log already sent, 66 ms per claim half-way through 100,000.
        # (delivery_id, id): the CSV export's keyset pages (models/exports.py).
        indexes = (
            ("delivery_id", "status", "id"),
            ("profile_id", "id"),
            ("retry_at",),
            ("delivery_id", "id"),
        )
