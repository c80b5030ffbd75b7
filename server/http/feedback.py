"""`POST /mta/feedback`: the MTA's reports, signed with HMAC-SHA256 (docs/contract.md).

The whole body is checked before anything is written: a bad or missing signature is 401, a
malformed body (or one event in it) is 400, and in both cases nothing changes.
"""

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from models.enums import (
    HARD_REASONS,
    IGNORED_REASONS,
    MTA_REASONS,
    SOFT_REASONS,
    FailureReason,
    FeedbackType,
)
from models.feedback import MAX_EVENTS, Event, FeedbackResult
from models.reasons import Verdict, check_table
from server.http import auth_failures, json_input

SIGNATURE_HEADER = "x-feedback-signature"
# The contract's webhook: the reasons each type of report may carry. A bounce carries one that
# SPEC §4 allows for its kind, or an ignored one (recorded, changes nothing); a delivery report's
# reason is not kept (an ignored one makes it change nothing); a complaint or an unsubscribe
# carries none. A report without a reason gets DEFAULT_REASONS (models/feedback.py).
ACCEPTED_REASONS: dict[FeedbackType, frozenset[FailureReason]] = {
    FeedbackType.DELIVERED: MTA_REASONS,
    FeedbackType.HARD_BOUNCE: HARD_REASONS | IGNORED_REASONS,
    FeedbackType.SOFT_BOUNCE: SOFT_REASONS | IGNORED_REASONS,
    FeedbackType.COMPLAINT: frozenset(),
    FeedbackType.UNSUBSCRIBE: frozenset(),
}
_VERDICTS = {FeedbackType.HARD_BOUNCE: Verdict.HARD, FeedbackType.SOFT_BOUNCE: Verdict.SOFT}
check_table(
    "the feedback webhook (ACCEPTED_REASONS, server/http/feedback.py)",
    (
        (kind.value, Verdict.IGNORED if r in IGNORED_REASONS else verdict, r)
        for kind, verdict in _VERDICTS.items()
        for r in ACCEPTED_REASONS[kind]
    ),
)


class Malformed(ValueError):
    pass


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """Compared as bytes: compare_digest refuses str with non-ASCII characters (TypeError),
    and a header may hold any Latin-1 text."""
    if header is None:
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode())


def _text(event: dict[str, Any], name: str, index: int, limit: int) -> str:
    value = event.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise Malformed(f"events[{index}].{name} must be a non-empty string of at most {limit}")
    if "\x00" in value:  # PostgreSQL text cannot hold NUL: a 400 here, not a 500 at insert
        raise Malformed(f"events[{index}].{name} must not contain NUL characters")
    return value


def parse_json(body: bytes) -> object:
    """The body's JSON value, or Malformed saying why not (server/http/json_input.py)."""
    try:
        return json_input.loads(body)
    except ValueError as error:
        raise Malformed(f"the body is not valid JSON: {error}") from None


def parse_events(body: bytes) -> list[Event]:
    data = parse_json(body)
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        raise Malformed('the body must be an object {"events": [...]}')
    raw = data["events"]
    if not 1 <= len(raw) <= MAX_EVENTS:
        raise Malformed(f"events must hold 1 to {MAX_EVENTS} events (got {len(raw)})")
    events = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise Malformed(f"events[{i}] must be an object")
        event_id = _text(item, "eventId", i, 200)
        message_id = _text(item, "messageId", i, 128)
        try:
            kind = FeedbackType(str(item.get("type")))
        except ValueError:
            allowed = ", ".join(t.value for t in FeedbackType)
            raise Malformed(f"events[{i}].type must be one of {allowed}") from None
        reason = item.get("reason")
        try:
            parsed_reason = FailureReason(reason) if reason is not None else None
            if parsed_reason is not None and parsed_reason not in MTA_REASONS:
                raise ValueError(reason)  # the product's own (INVALID_ADDRESS, CANCELLED)
        except ValueError:
            raise Malformed(
                f"events[{i}].reason {str(reason)[:40]!r} is not a known reason"
            ) from None
        if parsed_reason is not None and parsed_reason not in ACCEPTED_REASONS[kind]:
            allowed = ", ".join(sorted(ACCEPTED_REASONS[kind])) or "none"
            raise Malformed(
                f"events[{i}].reason {parsed_reason.value} is not a reason a {kind.value} report"
                f" may carry (SPEC §4; allowed: {allowed})"
            )
        stamp = _text(item, "timestamp", i, 64)
        try:
            at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            # In UTC now, so that a date at the edge of the calendar (0001-01-01T00:00+01:00)
            # is a 400 here rather than an OverflowError when it is stored.
            at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        except (ValueError, OverflowError):
            raise Malformed(f"events[{i}].timestamp is not an ISO 8601 date-time") from None
        events.append(Event(event_id, message_id, kind, at, parsed_reason))
    return events


def feedback_endpoint(
    secret: str, intake: Callable[[list[Event]], Awaitable[FeedbackResult]]
) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def endpoint(request: Request) -> JSONResponse:
        if (refused := auth_failures.refusal(request)) is not None:
            return refused
        body = await request.body()
        if not signature_ok(secret, body, request.headers.get(SIGNATURE_HEADER)):
            auth_failures.record_failure(request)
            return JSONResponse({"error": "missing or bad X-Feedback-Signature"}, status_code=401)
        try:
            events = parse_events(body)
        except Malformed as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        result = await intake(events)
        return JSONResponse(
            {
                "accepted": result.accepted,
                "duplicates": result.duplicates,
                "unknown": result.unknown,
            }
        )

    return endpoint
