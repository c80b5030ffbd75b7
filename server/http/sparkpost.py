"""`POST /mta/feedback/sparkpost`: Momentum / SparkPost event webhooks (docs/feedback-formats.md).

SparkPost posts a JSON array of `{"msys": {"<kind>_event": {...}}}`, authenticated with the
webhook's HTTP Basic credentials (SPARKPOST_WEBHOOK_AUTH). Basic auth does not sign the body, so
a replayed request cannot be told from a retry: the event ids make both harmless.
"""

import base64
import binascii
import hashlib
import hmac
from enum import Enum
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from models.enums import FailureReason, FeedbackType
from models.feedback import Event
from models.optouts import is_complaint
from models.reasons import Bounce, Verdict
from server.http import auth_failures
from server.http.feedback import Malformed, parse_json
from server.http.provider import (
    Batch,
    Intake,
    apply,
    error,
    event_id,
    our_message_id,
    parse_time,
)
from server.settings import Settings

PATH = "/mta/feedback/sparkpost"
REALM = 'Basic realm="sparkpost-webhook", charset="UTF-8"'

R = FailureReason
HARD, SOFT, IGNORED = Verdict.HARD, Verdict.SOFT, Verdict.IGNORED

# SparkPost's bounce classification codes -> (verdict, SPEC §4 reason). Blocks (50-54) are about
# the sender (IP, content), not the address: soft, so that they never quarantine at once.
# Admin failures (25, 26) are the provider's own policy (suppression list, sending limits) and
# replies that are not failures (60, 80, 90, 100) say nothing about delivery: ignored.
BOUNCE_CLASSES: dict[int, Bounce] = {
    1: Bounce(IGNORED, R.ERROR_IGNORED),  # Undetermined: the reply could not be classified
    10: Bounce(HARD, R.USER_UNKNOWN),  # Invalid Recipient
    20: Bounce(SOFT, R.UNDEFINED),  # Soft Bounce
    21: Bounce(SOFT, R.INVALID_DOMAIN),  # DNS Failure
    22: Bounce(SOFT, R.MAILBOX_FULL),  # Mailbox Full
    23: Bounce(SOFT, R.REFUSED),  # Too Large
    24: Bounce(SOFT, R.UNREACHABLE),  # Timeout
    25: Bounce(IGNORED, R.ERROR_IGNORED),  # Admin Failure (provider policy)
    26: Bounce(IGNORED, R.ERROR_IGNORED),  # Smart Send Suppression
    30: Bounce(HARD, R.USER_UNKNOWN),  # Generic Bounce: No RCPT
    40: Bounce(SOFT, R.UNDEFINED),  # Generic Bounce
    50: Bounce(SOFT, R.REFUSED),  # Mail Block
    51: Bounce(SOFT, R.REFUSED),  # Spam Block
    52: Bounce(SOFT, R.REFUSED),  # Spam Content
    53: Bounce(SOFT, R.REFUSED),  # Prohibited Attachment
    54: Bounce(SOFT, R.REFUSED),  # Relaying Denied
    60: Bounce(IGNORED, R.ERROR_IGNORED),  # Auto-Reply (the message was delivered)
    70: Bounce(SOFT, R.UNDEFINED),  # Transient Failure
    80: Bounce(IGNORED, R.ERROR_IGNORED),  # Subscribe request
    90: Bounce(IGNORED, R.ERROR_IGNORED),  # Unsubscribe request
    100: Bounce(IGNORED, R.ERROR_IGNORED),  # Challenge-Response
}
UNDETERMINED = BOUNCE_CLASSES[1]  # a missing or undocumented class


class Rule(Enum):
    DELIVERED = "delivered"
    BY_CLASS = "by bounce_class"
    DELAY = "soft bounce, reason by bounce_class"
    IGNORED = "ignored"
    COMPLAINT = "complaint (unless fbtype says not-spam)"
    UNSUBSCRIBE = "unsubscribe"


# Event types that are delivery feedback; every other type is counted `skipped`.
EVENT_RULES: dict[str, Rule] = {
    "delivery": Rule.DELIVERED,
    "bounce": Rule.BY_CLASS,
    "out_of_band": Rule.BY_CLASS,
    "delay": Rule.DELAY,
    # Rejections by SparkPost's policy carry a class (normally 25, Admin Failure: ignored).
    "policy_rejection": Rule.BY_CLASS,
    "generation_rejection": Rule.BY_CLASS,
    # The provider could not build the message: nothing about the address is known.
    "generation_failure": Rule.IGNORED,
    # The recipient said no: the deny list (COMPLAINT, UNSUBSCRIBED) and the delivery's KPIs.
    "spam_complaint": Rule.COMPLAINT,
    "list_unsubscribe": Rule.UNSUBSCRIBE,
    "link_unsubscribe": Rule.UNSUBSCRIBE,
}
FEEDBACK_WRAPPERS = frozenset({"message_event", "gen_event", "unsubscribe_event"})


def bounce_of(raw: dict[str, Any], where: str) -> Bounce:
    value = raw.get("bounce_class")
    if value is None or value == "":
        return UNDETERMINED
    # isdecimal, not isdigit: "²" is a digit that int() refuses; 3 digits: the longest class.
    if isinstance(value, str) and value.strip().isdecimal() and len(value.strip()) <= 3:
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise Malformed(f"{where}.bounce_class must be a number")
    return BOUNCE_CLASSES.get(value, UNDETERMINED)


def outcome(rule: Rule, raw: dict[str, Any], where: str) -> tuple[FeedbackType, R | None]:
    if rule is Rule.DELIVERED:
        return FeedbackType.DELIVERED, None
    if rule is Rule.COMPLAINT:
        return FeedbackType.COMPLAINT, None
    if rule is Rule.UNSUBSCRIBE:
        return FeedbackType.UNSUBSCRIBE, None
    if rule is Rule.IGNORED:
        bounce = Bounce(IGNORED, R.ERROR_IGNORED)
    elif rule is Rule.DELAY:
        bounce = bounce_of(raw, where).as_soft()
    else:
        bounce = bounce_of(raw, where)
    return bounce.type, bounce.reason


def message_id_of(raw: dict[str, Any]) -> str | None:
    """Ours travels in X-MSYS-API's metadata, which SparkPost reports as rcpt_meta."""
    for holder in ("rcpt_meta", "metadata"):
        meta = raw.get(holder)
        if isinstance(meta, dict):
            found = our_message_id(meta.get("delivery_message_id"))
            if found is not None:
                return found
    return None


def parse_batch(body: bytes) -> Batch:
    data = parse_json(body)
    if not isinstance(data, list):
        raise Malformed('the body must be a JSON array of {"msys": {...}} objects')
    batch = Batch()
    for i, item in enumerate(data):
        msys = item.get("msys") if isinstance(item, dict) else None
        if not isinstance(msys, dict):
            raise Malformed(f'[{i}] must be an object {{"msys": {{...}}}}')
        for wrapper, raw in msys.items():  # {} is the ping SparkPost sends on creation
            where = f"[{i}].msys.{wrapper}"
            if not isinstance(raw, dict):
                raise Malformed(f"{where} must be an object")
            rule = EVENT_RULES.get(str(raw.get("type")))
            if wrapper not in FEEDBACK_WRAPPERS or rule is None:
                batch.skipped += 1
                continue
            if rule is Rule.COMPLAINT and not is_complaint(raw.get("fbtype")):
                batch.skipped += 1  # a "not spam" report
                continue
            eid = event_id("sparkpost", raw.get("event_id"), f"{where}.event_id")
            at = parse_time(raw.get("timestamp"), f"{where}.timestamp")
            kind, reason = outcome(rule, raw, where)
            message_id = message_id_of(raw)
            if message_id is None:
                batch.unknown += 1
            else:
                batch.events.append(Event(eid, message_id, kind, at, reason))
    return batch


def parse_credentials(value: str | None) -> bytes | None:
    if not value:
        return None
    if ":" not in value:
        raise ValueError('SPARKPOST_WEBHOOK_AUTH must be "user:password"')
    return value.encode()


def basic_auth_ok(expected: bytes, header: str | None) -> bool:
    scheme, _, token = (header or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    # Digests compared, so that the time taken does not tell the length of the secret either.
    return hmac.compare_digest(hashlib.sha256(given).digest(), hashlib.sha256(expected).digest())


class SparkPostWebhook:
    def __init__(self, settings: Settings, intake: Intake) -> None:
        self.settings, self.intake = settings, intake
        self.credentials = parse_credentials(settings.sparkpost_webhook_auth)
        self.routes: list[BaseRoute] = [Route(PATH, self.endpoint, methods=["POST"])]

    async def endpoint(self, request: Request) -> JSONResponse:
        if self.credentials is None:
            return error(
                404, "the SparkPost webhook is off: set SPARKPOST_WEBHOOK_AUTH to turn it on"
            )
        if (refused := auth_failures.refusal(request)) is not None:
            return refused
        if not basic_auth_ok(self.credentials, request.headers.get("authorization")):
            auth_failures.record_failure(request)
            return error(401, "missing or bad Basic credentials", {"WWW-Authenticate": REALM})
        try:
            batch = parse_batch(await request.body())
        except Malformed as bad:
            return error(400, str(bad))
        return await apply(batch, self.intake)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None
