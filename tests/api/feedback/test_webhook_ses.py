"""Amazon SES notifications through SNS on `POST /mta/feedback/ses`.

The test plays SNS: it makes an RSA key and a self-signed certificate, serves the certificate
(and the SubscribeURL) from a small asyncio HTTP server, lets SNS_CERT_URL_PATTERN accept that
server's URLs, and signs each message as SNS does. The SES notifications are the recorded
samples in tests/support/samples/ses, with MESSAGE_ID replaced by the id the capture MTA relayed.
"""

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from server.http.ses import PATH, SIGNED_KEYS, SesWebhook
from server.settings import Settings
from tests.support import flows
from tests.support.client import Api
from tests.support.flows import efs_delivery
from tests.support.server import api_for

SAMPLES = Path(__file__).resolve().parents[2] / "support" / "samples" / "ses"
TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-feedback"
OTHER_TOPIC = "arn:aws:sns:us-east-1:999999999999:someone-elses"
CERT_PATH = "/sns/SimpleNotificationService-test.pem"


@cache
def keypair(name: str) -> tuple[rsa.RSAPrivateKey, bytes]:
    """An RSA key and its self-signed certificate (PEM), made once per name."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"sns.{name}.test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class FakeSns:
    """The HTTP side of SNS: serves the signing certificate and answers the SubscribeURL."""

    requests: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            target = head.split(b"\r\n", 1)[0].decode().split(" ")[1]
            self.requests.append(target)
            status, body = "404 Not Found", b"not found"
            if target == CERT_PATH:
                status, body = "200 OK", keypair("sns")[1]
            elif target.startswith("/?Action=ConfirmSubscription"):
                status, body = "200 OK", b"<ConfirmSubscriptionResponse/>"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n"
                f"Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def sns() -> AsyncIterator[FakeSns]:
    fake = FakeSns()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    fake.port = server.sockets[0].getsockname()[1]
    async with server:
        yield fake


@pytest.fixture
async def hook(make_server: Callable[..., Any], sns: FakeSns) -> AsyncIterator[Api]:
    running = await make_server(
        ses_topic_arns=f" {TOPIC} , arn:aws:sns:eu-west-1:123456789012:other",
        sns_cert_url_pattern=rf"^http://127\.0\.0\.1:{sns.port}/sns/[^?#]*\.pem$",
    )
    async for api in api_for(running):
        yield api


def ses_message(name: str, message_id: str) -> str:
    """A recorded SES notification, with our message id and its event time set to now."""
    ses = json.loads((SAMPLES / f"{name}.json").read_text().replace("MESSAGE_ID", message_id))
    for detail in ("bounce", "delivery", "deliveryDelay"):
        if detail in ses:
            ses[detail]["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return json.dumps(ses) + "\n"


def sign(message: dict[str, Any], key: rsa.RSAPrivateKey) -> dict[str, Any]:
    """Sign as SNS does: "Key\\nvalue\\n" for each signed key of the Type, RSA PKCS#1 v1.5."""
    text = "".join(f"{k}\n{message[k]}\n" for k in SIGNED_KEYS[message["Type"]] if k in message)
    algorithm = hashes.SHA1() if message["SignatureVersion"] == "1" else hashes.SHA256()
    signature = key.sign(text.encode(), padding.PKCS1v15(), algorithm)
    return {**message, "Signature": base64.b64encode(signature).decode()}


def envelope(
    sns: FakeSns,
    body: str,
    *,
    kind: str = "Notification",
    version: str = "1",
    key: str = "sns",
    **fields: Any,
) -> dict[str, Any]:
    """A signed SNS message, from the recorded envelope of its Type."""
    sample = "sns_notification" if kind == "Notification" else "sns_subscription_confirmation"
    message = json.loads((SAMPLES / f"{sample}.json").read_text())
    message.update(
        Type=kind,
        MessageId=str(uuid.uuid4()),
        TopicArn=TOPIC,
        Message=body,
        Timestamp=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        SignatureVersion=version,
        SigningCertURL=sns.base + CERT_PATH,
    )
    if kind != "Notification":
        message["SubscribeURL"] = f"{sns.base}/?Action=ConfirmSubscription&Token={message['Token']}"
    message.update(fields)
    return sign(message, keypair(key)[0])


async def post(api: Api, message: dict[str, Any] | bytes) -> httpx.Response:
    content = message if isinstance(message, bytes) else json.dumps(message).encode()
    headers = {"content-type": "text/plain; charset=UTF-8"}  # as SNS sends it
    if isinstance(message, dict):
        for header, key in (("type", "Type"), ("id", "MessageId")):
            if isinstance(message.get(key), str):
                headers[f"x-amz-sns-message-{header}"] = message[key]
    return await api.http.post(PATH, content=content, headers=headers)


COUNTS = ("accepted", "duplicates", "unknown", "skipped")


def counts(accepted: int = 0, duplicates: int = 0, unknown: int = 0, skipped: int = 0) -> Any:
    return dict(zip(COUNTS, (accepted, duplicates, unknown, skipped), strict=True))


def test_the_default_cert_url_pattern_takes_sns_urls_only() -> None:
    def allowed(url: str) -> bool:
        settings = Settings(_env_file=None, ses_topic_arns=TOPIC)
        return SesWebhook(settings, None).cert_url.fullmatch(url) is not None  # type: ignore[arg-type]

    sample = json.loads((SAMPLES / "sns_notification.json").read_text())["SigningCertURL"]
    assert allowed(sample)
    assert allowed("https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-x.pem")
    for url in [
        sample.replace("https://", "http://"),
        "https://sns.us-east-1.amazonaws.com.evil.example/x.pem",
        "https://sns.us-east-1.amazonaws.com@evil.example/x.pem",
        "https://evil.example/sns.us-east-1.amazonaws.com/x.pem",
        "https://sns.us-east-1.amazonaws.com/x.pem?y.pem",
        sample + "\n",
    ]:
        assert not allowed(url), url
    with pytest.raises(ValueError, match="SNS_CERT_URL_PATTERN"):
        bad = Settings(_env_file=None, sns_cert_url_pattern="(")
        SesWebhook(bad, None)  # type: ignore[arg-type]


async def test_off_until_configured(api: Api) -> None:
    response = await api.http.post(PATH, content=b"{}")
    assert response.status_code == 404
    assert "SES_TOPIC_ARNS" in response.json()["error"]


async def test_signed_v1_and_v2_notifications_apply_and_replay_as_duplicates(
    hook: Api, sns: FakeSns
) -> None:
    delivery_id, ids = await efs_delivery(hook, 5)
    messages = [
        envelope(sns, ses_message("bounce_permanent", ids[0]), version="1"),
        envelope(sns, ses_message("bounce_transient", ids[1]), version="2"),
        envelope(sns, ses_message("bounce_undetermined", ids[2]), version="1"),
        envelope(sns, ses_message("delivery", ids[3]), version="2"),
        envelope(sns, ses_message("delivery_delay", ids[4]), version="2"),
    ]
    for message in messages:
        response = await post(hook, message)
        assert response.status_code == 200, response.text
        assert response.json() == counts(accepted=1)
    logs = {log["messageId"]: log for log in await flows.logs(hook, delivery_id)}
    assert [flows.failure_state(logs[m]) for m in ids] == [
        ("FAILED", "HARD", "USER_UNKNOWN", 0),  # Permanent / NoEmail
        ("FAILED", "SOFT", "MAILBOX_FULL", 1),  # Transient / MailboxFull
        ("PENDING", None, None, 0),  # Undetermined: recorded, ignored
        ("SENT", None, None, 0),  # Delivery
        ("FAILED", "SOFT", "MAILBOX_FULL", 1),  # DeliveryDelay / MailboxFull
    ]
    after = await flows.feedback_snapshot(hook, delivery_id)

    skipped = [  # complaints: tests/api/feedback/test_optouts.py
        envelope(sns, "Successfully validated SNS topic for Amazon SES event publishing."),
    ]
    for message in skipped:
        response = await post(hook, message)
        assert response.json() == counts(skipped=1), response.text
    unknown = envelope(sns, ses_message("delivery", "d999999.1@elsewhere.example"), version="2")
    assert (await post(hook, unknown)).json() == counts(unknown=1)
    for message in messages:  # SNS delivers a message again: the same MessageId
        response = await post(hook, message)
        assert response.json() == counts(duplicates=1), response.text
    assert await flows.feedback_snapshot(hook, delivery_id) == after
    assert sns.requests == [CERT_PATH]  # fetched once, then cached


async def test_subscription_confirmation_visits_subscribe_url_on_the_certificate_host(
    hook: Api, sns: FakeSns
) -> None:
    elsewhere = envelope(
        sns, "confirm", kind="SubscriptionConfirmation", SubscribeURL="http://localhost:9/?x=1"
    )
    response = await post(hook, elsewhere)
    assert response.status_code == 400, response.text
    assert sns.requests == [CERT_PATH]

    confirmation = envelope(sns, "You have chosen to subscribe", kind="SubscriptionConfirmation")
    response = await post(hook, confirmation)
    assert response.status_code == 200, response.text
    assert response.json() == {"subscription": "confirmed"}
    assert sns.requests == [CERT_PATH, confirmation["SubscribeURL"].removeprefix(sns.base)]

    goodbye = envelope(sns, "unsubscribed", kind="UnsubscribeConfirmation", version="2")
    response = await post(hook, goodbye)
    assert response.status_code == 200, response.text
    assert len(sns.requests) == 2  # an unsubscription visits nothing


async def test_forged_tampered_foreign_unsigned_or_stale_messages_get_401_and_change_nothing(
    hook: Api, sns: FakeSns
) -> None:
    delivery_id, (message_id,) = await efs_delivery(hook, 1)
    before = await flows.feedback_snapshot(hook, delivery_id)
    body = ses_message("bounce_permanent", message_id)
    evil_cert = f"{sns.base}/evil/cert.txt"

    def unsigned() -> dict[str, Any]:
        message = envelope(sns, body)
        del message["Signature"]
        return message

    now = datetime.now(UTC)
    cases: dict[str, dict[str, Any]] = {
        # First, before any certificate is cached: a URL the pattern refuses is never fetched.
        "cert URL not matching the pattern": envelope(sns, body, SigningCertURL=evil_cert),
        "cert URL on another host": envelope(
            sns, body, SigningCertURL=f"http://localhost:{sns.port}{CERT_PATH}"
        ),
        "forged (another key)": envelope(sns, body, key="forger"),
        "forged v2 (another key)": envelope(sns, body, key="forger", version="2"),
        "tampered Message": {**envelope(sns, body), "Message": body.replace("NoEmail", "General")},
        "tampered MessageId": {**envelope(sns, body), "MessageId": str(uuid.uuid4())},
        "Subject changed": {**envelope(sns, body), "Subject": "Hello"},
        "Subject removed": {k: v for k, v in envelope(sns, body).items() if k != "Subject"},
        "v1 signature said to be v2": {**envelope(sns, body), "SignatureVersion": "2"},
        "wrong topic (validly signed)": envelope(sns, body, TopicArn=OTHER_TOPIC),
        "unsigned": unsigned(),
        "empty signature": {**envelope(sns, body), "Signature": ""},
        "signature not base64": {**envelope(sns, body), "Signature": "%%%"},
        "unknown SignatureVersion": {**envelope(sns, body), "SignatureVersion": "3"},
        "stale Timestamp (signed)": envelope(
            sns, body, Timestamp=(now - timedelta(hours=2)).isoformat()
        ),
        "Timestamp in the future (signed)": envelope(
            sns, body, Timestamp=(now + timedelta(hours=1)).isoformat()
        ),
    }
    for name, message in cases.items():
        response = await post(hook, message)
        assert response.status_code == 401, (name, response.text)
        assert "accepted" not in response.json(), name
        if name == "cert URL not matching the pattern":
            assert sns.requests == [], sns.requests
    assert all(not r.startswith("/evil") for r in sns.requests), sns.requests
    assert await flows.feedback_snapshot(hook, delivery_id) == before

    valid = envelope(sns, body)
    assert (await post(hook, valid)).json() == counts(accepted=1)
    (log,) = await flows.logs(hook, delivery_id)
    assert flows.failure_state(log) == ("FAILED", "HARD", "USER_UNKNOWN", 0)


async def test_malformed_messages_get_400_and_an_unusable_certificate_502(
    hook: Api, sns: FakeSns
) -> None:
    delivery_id, (message_id,) = await efs_delivery(hook, 1)
    before = await flows.feedback_snapshot(hook, delivery_id)
    body = ses_message("bounce_transient", message_id)
    without_mail = json.loads(body)
    del without_mail["mail"]
    cases: dict[str, Any] = {
        "not JSON": b"{not json",
        "not an object": b"[]",
        "no Type": {k: v for k, v in envelope(sns, body).items() if k != "Type"},
        "unknown Type": {**envelope(sns, body), "Type": "Surprise"},
        "Message not a string": {**envelope(sns, body), "Message": {"notificationType": "x"}},
        "no MessageId": {k: v for k, v in envelope(sns, body).items() if k != "MessageId"},
        "bad Timestamp": envelope(sns, body, Timestamp="yesterday"),
        "Bounce without mail (signed)": envelope(sns, json.dumps(without_mail)),
    }
    for name, message in cases.items():
        response = await post(hook, message)
        assert response.status_code == 400, (name, response.text)
        assert response.json()["error"], name
    mismatched = envelope(sns, body)
    response = await hook.http.post(
        PATH, content=json.dumps(mismatched).encode(), headers={"x-amz-sns-message-type": "Other"}
    )
    assert response.status_code == 400, response.text

    missing_cert = envelope(sns, body, SigningCertURL=f"{sns.base}/sns/missing.pem")
    response = await post(hook, missing_cert)
    assert response.status_code == 502, response.text
    assert await flows.feedback_snapshot(hook, delivery_id) == before

    assert (await post(hook, envelope(sns, body))).json() == counts(accepted=1)


async def test_a_complaint_deny_lists_the_address_and_counts_once(hook: Api, sns: FakeSns) -> None:
    """SES `Complaint` (issue 15): recorded on the log, counted, the address deny-listed as
    COMPLAINT at the complaint's time; a redelivery is a duplicate, a second report of the same
    recipient counts nothing again, a "not-spam" report is skipped, and a forged or malformed
    one writes nothing."""
    from tests.api.feedback.test_optouts import (
        excluded_later,
        log_marks,
        opt_out_kpis,
        recounted,
        standing,
    )

    delivery_id, ids = await efs_delivery(hook, 3, prefix="ses")
    for i in (0, 2):
        await post(hook, envelope(sns, ses_message("delivery", ids[i])))
    forged = envelope(sns, ses_message("complaint", ids[0]))
    forged["Message"] = forged["Message"].replace("abuse", "other")  # the signature breaks
    assert (await post(hook, forged)).status_code == 401
    no_mail = json.loads(ses_message("complaint", ids[0]))
    del no_mail["mail"]
    assert (await post(hook, envelope(sns, json.dumps(no_mail)))).status_code == 400
    assert (await opt_out_kpis(hook, delivery_id))["complaints"] == 0
    assert await standing(hook, "ses0@example.com") is None

    complaint = envelope(sns, ses_message("complaint", ids[0]))
    assert (await post(hook, complaint)).json() == counts(accepted=1)
    assert (await post(hook, complaint)).json() == counts(duplicates=1)
    again = envelope(sns, ses_message("complaint", ids[0]))  # another SNS message, same recipient
    assert (await post(hook, again)).json() == counts(accepted=1)
    not_spam = json.loads(ses_message("complaint", ids[1]))
    not_spam["complaint"]["complaintFeedbackType"] = "not-spam"
    assert (await post(hook, envelope(sns, json.dumps(not_spam)))).json() == counts(skipped=1)

    expected = {"toSend": 3, "sent": 2, "complaints": 1, "unsubscriptions": 0}
    assert await opt_out_kpis(hook, delivery_id) == {**expected, "complaintRate": 50.0}
    assert await recounted(hook, delivery_id) == {**expected, "complaintRate": 50.0}
    marks = await log_marks(hook, delivery_id)
    assert marks["ses0@example.com"][0] == "SENT"
    assert marks["ses0@example.com"][1].startswith("2016-01-27T14:59:38")  # the complaint's time
    assert marks["ses1@example.com"][1] is None
    ses0 = await standing(hook, "ses0@example.com")
    assert ses0 is not None and ses0["denylistReason"] == "COMPLAINT"
    assert ses0["denylistedAt"].startswith("2016-01-27T14:59:38")
    emails = [f"ses{i}@example.com" for i in range(3)]
    assert await excluded_later(hook, emails) == {"ses0@example.com": "DENYLISTED"}
