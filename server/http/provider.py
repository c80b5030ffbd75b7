"""What the provider webhooks (SparkPost, Amazon SES) share: our message id as an event may carry
it, event times, and the reply. (The rows of their bounce tables, `Bounce`, and their check
against SPEC §4's lists are in models/reasons.py.)

A provider batch is validated whole first; the events are then handed to the intake in chunks
of MAX_EVENTS (each chunk one transaction). If a later chunk fails, the provider retries the
whole batch and the chunks already applied come back as duplicates, so nothing counts twice.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from starlette.responses import JSONResponse

from models.feedback import MAX_EVENTS, Event, FeedbackResult
from server.http.feedback import Malformed

Intake = Callable[[list[Event]], Awaitable[FeedbackResult]]

MESSAGE_ID_LIMIT = 128  # sending_log.message_id
EVENT_ID_LIMIT = 200  # feedback_event.event_id


def our_message_id(value: object) -> str | None:
    """Our message id (`d{delivery}.{log}@domain`) if `value` can be one; None otherwise, and
    the event is then counted `unknown` (a value no log can have is not worth a 400)."""
    if not isinstance(value, str):
        return None
    value = value.strip().removeprefix("<").removesuffix(">").strip()
    if not value or len(value) > MESSAGE_ID_LIMIT or "\x00" in value:
        return None
    return value


def event_id(prefix: str, value: object, where: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise Malformed(f"{where} must be a non-empty string")
    full = f"{prefix}-{value}"
    if len(full) > EVENT_ID_LIMIT:
        raise Malformed(f"{where} is longer than {EVENT_ID_LIMIT - len(prefix) - 1} characters")
    return full


def parse_time(value: object, where: str) -> datetime:
    """Unix seconds (a number or a string of digits, as SparkPost sends them) or ISO 8601."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(value), UTC)
        if isinstance(value, str) and len(value) <= 64:
            at = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise Malformed(f"{where} is not a time (unix seconds or ISO 8601)")


@dataclass
class Batch:
    """A provider request, validated: the events to apply and what was counted on the way."""

    events: list[Event] = field(default_factory=list)
    unknown: int = 0  # delivery feedback that carries no message id of ours
    skipped: int = 0  # provider events that are not delivery feedback (opens, complaints...)


async def apply(batch: Batch, intake: Intake) -> JSONResponse:
    totals = FeedbackResult(unknown=batch.unknown)
    for start in range(0, len(batch.events), MAX_EVENTS):
        result = await intake(batch.events[start : start + MAX_EVENTS])
        totals.accepted += result.accepted
        totals.duplicates += result.duplicates
        totals.unknown += result.unknown
    return JSONResponse(
        {
            "accepted": totals.accepted,
            "duplicates": totals.duplicates,
            "unknown": totals.unknown,
            "skipped": batch.skipped,
        }
    )


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)
