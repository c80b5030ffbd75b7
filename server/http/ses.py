"""`POST /mta/feedback/ses`: Amazon SES notifications delivered by SNS (docs/feedback-formats.md).

Each SNS message is checked as AWS documents for HTTP(S) subscribers, and nothing happens
before every check has passed: its TopicArn must be one of SES_TOPIC_ARNS (a valid signature
only proves that SNS sent it, not that the topic is ours), its SigningCertURL must match
SNS_CERT_URL_PATTERN (nothing is fetched before), its Timestamp must be recent, and its
Signature must verify, with the certificate's RSA key, over the canonical string of the keys
that SNS signs for its Type.
"""

import base64
import binascii
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from models.enums import FailureReason, FeedbackType
from models.feedback import Event
from models.optouts import is_complaint
from models.reasons import Bounce, Verdict, check_table
from server.http import auth_failures, json_input
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

log = logging.getLogger("server.ses")

PATH = "/mta/feedback/ses"
TYPE_HEADER = "x-amz-sns-message-type"

# The keys SNS signs, in this order, per message Type ("Subject" only when the message has one).
_SUBSCRIPTION_KEYS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
SIGNED_KEYS: dict[str, tuple[str, ...]] = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": _SUBSCRIPTION_KEYS,
    "UnsubscribeConfirmation": _SUBSCRIPTION_KEYS,
}
OPTIONAL_KEYS = frozenset({"Subject"})
SIGNATURE_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}

CERT_TIMEOUT_SECONDS = 5.0
CERT_MAX_BYTES = 64 * 1024
CERT_CACHE_SIZE = 16
FUTURE_SKEW = timedelta(minutes=5)  # a Timestamp later than this is refused as well

R = FailureReason
HARD, SOFT, IGNORED = Verdict.HARD, Verdict.SOFT, Verdict.IGNORED

# SES bounce (bounceType, bounceSubType) -> (verdict, SPEC §4 reason). SES's suppression lists
# hold addresses that bounced hard (or complained): a hard bounce, like a deny list.
BOUNCES: dict[tuple[str, str], Bounce] = {
    ("Permanent", "General"): Bounce(HARD, R.REFUSED),
    ("Permanent", "NoEmail"): Bounce(HARD, R.USER_UNKNOWN),
    ("Permanent", "Suppressed"): Bounce(HARD, R.DENYLISTED),
    ("Permanent", "OnAccountSuppressionList"): Bounce(HARD, R.DENYLISTED),
    ("Transient", "General"): Bounce(SOFT, R.UNDEFINED),
    ("Transient", "MailboxFull"): Bounce(SOFT, R.MAILBOX_FULL),
    ("Transient", "MessageTooLarge"): Bounce(SOFT, R.REFUSED),
    ("Transient", "ContentRejected"): Bounce(SOFT, R.REFUSED),
    ("Transient", "AttachmentRejected"): Bounce(SOFT, R.REFUSED),
    ("Undetermined", "Undetermined"): Bounce(IGNORED, R.ERROR_IGNORED),
}
# A sub-type SES may add later takes its bounce type's row; an unknown bounce type is
# Undetermined.
BY_BOUNCE_TYPE: dict[str, Bounce] = {
    "Permanent": BOUNCES["Permanent", "General"],
    "Transient": BOUNCES["Transient", "General"],
    "Undetermined": BOUNCES["Undetermined", "Undetermined"],
}
# SES DeliveryDelay (event publishing) delayType -> the soft bounce's reason.
DELAYS: dict[str, FailureReason] = {
    "MailboxFull": R.MAILBOX_FULL,
    "SpamDetected": R.REFUSED,
    "IPFailure": R.REFUSED,
    "RecipientServerError": R.UNREACHABLE,
    "TransientCommunicationFailure": R.UNREACHABLE,
    "BYOIPHostNameLookupUnavailable": R.UNREACHABLE,
}
check_table("SES delays (DELAYS, server/http/ses.py)", ((k, SOFT, r) for k, r in DELAYS.items()))
# The SES notification types that are feedback, and the key of their details.
FEEDBACK_KINDS = {
    "Bounce": "bounce",
    "Delivery": "delivery",
    "DeliveryDelay": "deliveryDelay",
    "Complaint": "complaint",  # the deny list (COMPLAINT) and the delivery's complaints
}


class Unauthorized(Exception):
    pass


class CertificateUnavailable(Exception):
    pass


def parse_envelope(body: bytes, header_type: str | None) -> dict[str, Any]:
    message = parse_json(body)
    if not isinstance(message, dict):
        raise Malformed("the body must be an SNS message (a JSON object)")
    kind = message.get("Type")
    if kind not in SIGNED_KEYS:
        raise Malformed(f"Type must be one of {', '.join(SIGNED_KEYS)}")
    if header_type is not None and header_type != kind:
        raise Malformed(f"the {TYPE_HEADER} header says {header_type[:40]!r}, the body {kind}")
    for key in SIGNED_KEYS[kind]:
        value = message.get(key)
        if value is None and key in OPTIONAL_KEYS:
            continue
        if not isinstance(value, str):
            raise Malformed(f"{key} must be a string")
    return message


def canonical(message: dict[str, Any]) -> bytes:
    """The string SNS signs: "Key\\nvalue\\n" for each signed key present, in order."""
    return "".join(
        f"{key}\n{message[key]}\n"
        for key in SIGNED_KEYS[message["Type"]]
        if message.get(key) is not None
    ).encode()


def signature_of(message: dict[str, Any]) -> tuple[bytes, type[hashes.HashAlgorithm], str]:
    version, signature, cert_url = (
        message.get(k) for k in ("SignatureVersion", "Signature", "SigningCertURL")
    )
    if not (isinstance(signature, str) and isinstance(cert_url, str) and signature):
        raise Unauthorized("the message is not signed (Signature, SigningCertURL)")
    algorithm = SIGNATURE_HASHES.get(str(version))
    if algorithm is None:
        raise Unauthorized('SignatureVersion must be "1" or "2"')
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise Unauthorized("Signature is not base64") from None
    return raw, algorithm, cert_url


def same_origin(url: str, other: str) -> bool:
    try:
        a, b = urlsplit(url), urlsplit(other)
    except ValueError:  # "https://[::1" and the like
        return False
    return (a.scheme.lower(), a.netloc.lower()) == (b.scheme.lower(), b.netloc.lower())


def fetchable(url: str) -> bool:
    """Would httpx take this URL? (A pattern such as `[^?#]*` lets control characters through,
    and httpx refuses them with InvalidURL, which is not an HTTPError.)"""
    try:
        httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        return False
    return True


def message_id_of(mail: dict[str, Any]) -> str | None:
    """X-Delivery-Message-Id from the original headers (when the identity includes them),
    else the Message-ID header as SES reports it."""
    headers = mail.get("headers")
    if isinstance(headers, list):
        for header in headers:
            if (
                isinstance(header, dict)
                and str(header.get("name", "")).lower() == "x-delivery-message-id"
            ):
                found = our_message_id(header.get("value"))
                if found is not None:
                    return found
    common = mail.get("commonHeaders")
    return our_message_id(common.get("messageId")) if isinstance(common, dict) else None


def ses_batch(message: dict[str, Any], sent_at: datetime) -> Batch:
    """The one event an SES notification is (one message, one recipient), or a skip."""
    try:
        ses = json_input.loads(message["Message"])
    except ValueError:  # SES's "Successfully validated SNS topic ..." notice is plain text
        return Batch(skipped=1)
    kind = (ses.get("eventType") or ses.get("notificationType")) if isinstance(ses, dict) else None
    if kind not in FEEDBACK_KINDS:
        return Batch(skipped=1)
    mail, detail = ses.get("mail"), ses.get(FEEDBACK_KINDS[kind])
    if not isinstance(mail, dict) or not isinstance(detail, dict):
        raise Malformed(f"a {kind} notification needs the objects mail and {FEEDBACK_KINDS[kind]}")
    stamp = detail.get("timestamp")
    at = sent_at if stamp is None else parse_time(stamp, f"{FEEDBACK_KINDS[kind]}.timestamp")
    reason: FailureReason | None = None
    if kind == "Delivery":
        type_ = FeedbackType.DELIVERED
    elif kind == "Complaint":
        if not is_complaint(detail.get("complaintFeedbackType")):
            return Batch(skipped=1)  # a "not spam" report
        type_ = FeedbackType.COMPLAINT
    elif kind == "Bounce":
        bounce_type, sub_type = detail.get("bounceType"), detail.get("bounceSubType")
        if not isinstance(bounce_type, str):
            raise Malformed("bounce.bounceType must be a string")
        row = BOUNCES.get((bounce_type, str(sub_type))) or BY_BOUNCE_TYPE.get(
            bounce_type, BY_BOUNCE_TYPE["Undetermined"]
        )
        type_, reason = row.type, row.reason
    else:
        type_ = FeedbackType.SOFT_BOUNCE
        reason = DELAYS.get(str(detail.get("delayType")), R.UNDEFINED)
    eid = event_id("ses", message["MessageId"], "MessageId")
    message_id = message_id_of(mail)
    if message_id is None:
        return Batch(unknown=1)
    return Batch(events=[Event(eid, message_id, type_, at, reason)])


class SesWebhook:
    def __init__(self, settings: Settings, intake: Intake) -> None:
        self.settings, self.intake = settings, intake
        self.topics = frozenset(
            arn.strip() for arn in (settings.ses_topic_arns or "").split(",") if arn.strip()
        )
        try:
            self.cert_url = re.compile(settings.sns_cert_url_pattern)
        except re.error as bad:  # the CLI reports a ValueError as a configuration error
            raise ValueError(f"SNS_CERT_URL_PATTERN is not a regular expression: {bad}") from None
        self.max_age = timedelta(seconds=settings.sns_max_age_seconds)
        self.keys: dict[str, rsa.RSAPublicKey] = {}  # certificate URL -> its key
        self.http: httpx.AsyncClient | None = None
        self.routes: list[BaseRoute] = [Route(PATH, self.endpoint, methods=["POST"])]

    async def start(self) -> None:
        if self.topics:  # a client loads the CA bundle (0.2 s of CPU): only when the webhook is on
            self.http = httpx.AsyncClient(timeout=CERT_TIMEOUT_SECONDS, follow_redirects=False)

    async def close(self) -> None:
        if self.http is not None:
            await self.http.aclose()
            self.http = None

    async def endpoint(self, request: Request) -> JSONResponse:
        if not self.topics:
            return error(404, "the SES webhook is off: set SES_TOPIC_ARNS to turn it on")
        if (refused := auth_failures.refusal(request)) is not None:
            return refused
        try:
            message = parse_envelope(await request.body(), request.headers.get(TYPE_HEADER))
            sent_at = parse_time(message["Timestamp"], "Timestamp")
            await self.authenticate(message, sent_at)
            if message["Type"] == "SubscriptionConfirmation":
                return await self.confirm(message)
            if message["Type"] == "UnsubscribeConfirmation":
                log.warning("SNS unsubscribed this endpoint from %s", message["TopicArn"])
                return JSONResponse({"subscription": "unsubscribed"})
            batch = ses_batch(message, sent_at)
        except Malformed as bad:
            return error(400, str(bad))
        except Unauthorized as unauthorized:
            auth_failures.record_failure(request)
            return error(401, str(unauthorized))
        except CertificateUnavailable as failed:
            return error(502, f"the signing certificate could not be used: {failed}")
        return await apply(batch, self.intake)

    async def authenticate(self, message: dict[str, Any], sent_at: datetime) -> None:
        """Cheap checks first; the certificate is fetched only for a URL the pattern allows."""
        if message["TopicArn"] not in self.topics:
            raise Unauthorized(f"TopicArn {message['TopicArn'][:200]!r} is not in SES_TOPIC_ARNS")
        signature, algorithm, cert_url = signature_of(message)
        if not self.cert_url.fullmatch(cert_url) or not fetchable(cert_url):
            raise Unauthorized("SigningCertURL does not match SNS_CERT_URL_PATTERN")
        now = datetime.now(UTC)
        if sent_at < now - self.max_age or sent_at > now + FUTURE_SKEW:
            raise Unauthorized(
                f"Timestamp is more than {self.max_age.total_seconds():.0f} s old, or in the future"
            )
        key = await self.public_key(cert_url)
        try:
            key.verify(signature, canonical(message), padding.PKCS1v15(), algorithm())
        except InvalidSignature:
            raise Unauthorized("the signature does not verify") from None

    async def public_key(self, url: str) -> rsa.RSAPublicKey:
        key = self.keys.get(url)
        if key is None:
            key = await self.fetch_key(url)
            if len(self.keys) >= CERT_CACHE_SIZE:
                self.keys.pop(next(iter(self.keys)))
            self.keys[url] = key
        return key

    async def fetch_key(self, url: str) -> rsa.RSAPublicKey:
        assert self.http is not None, "SesWebhook.start() was not called"
        data = bytearray()
        try:
            async with self.http.stream("GET", url) as response:
                if response.status_code != 200:
                    raise CertificateUnavailable(f"GET answered {response.status_code}")
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > CERT_MAX_BYTES:
                        raise CertificateUnavailable(f"larger than {CERT_MAX_BYTES} bytes")
        except httpx.HTTPError as failed:
            raise CertificateUnavailable(type(failed).__name__) from None
        try:
            key = x509.load_pem_x509_certificate(bytes(data)).public_key()
        except ValueError:
            raise CertificateUnavailable("not a PEM certificate") from None
        if not isinstance(key, rsa.RSAPublicKey):
            raise CertificateUnavailable("not an RSA certificate")
        return key

    async def confirm(self, message: dict[str, Any]) -> JSONResponse:
        """Visit SubscribeURL, but only on the host that served the verified certificate."""
        url = message["SubscribeURL"]
        if not same_origin(url, message["SigningCertURL"]) or not fetchable(url):
            return error(400, "SubscribeURL is not on the scheme and host of SigningCertURL")
        assert self.http is not None, "SesWebhook.start() was not called"
        try:
            async with self.http.stream("GET", url) as response:
                status = response.status_code
        except httpx.HTTPError as failed:
            return error(502, f"confirming the subscription failed: {type(failed).__name__}")
        if not 200 <= status < 300:
            return error(502, f"confirming the subscription failed: GET answered {status}")
        log.info("SNS subscription to %s confirmed", message["TopicArn"])
        return JSONResponse({"subscription": "confirmed"})
