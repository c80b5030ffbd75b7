"""The SMTP adapter writes each MIME message straight as bytes (server/mta/compose.py): byte
for byte what the stdlib's `email.mime` generator writes for the same message."""

import binascii
import json
import uuid
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.parser import BytesParser
from email.policy import default
from unittest import mock

import pytest

from models.compose import Rendered
from server.mta import compose
from server.mta.compose import POLICY, Composer


def _text_part(subtype: str, body: str) -> MIMENonMultipart:
    part = MIMENonMultipart("text", subtype, charset="utf-8")
    del part["MIME-Version"]
    part["Content-Transfer-Encoding"] = "quoted-printable"
    data = body.replace("\r\n", "\n").replace("\r", "\n")
    part.set_payload(binascii.b2a_qp(data.encode("utf-8"), istext=True).decode("ascii"))
    return part


def generated(composer: Composer, copy: Rendered, to: str, message_id: str, proof: int | None):
    """The message as the `email.mime` classes build it (the adapter's former encoder)."""
    message = MIMEMultipart("alternative", boundary=f"=_{uuid.uuid4().hex}")
    message["From"] = composer.from_header
    message["To"] = to
    message["Subject"] = compose._header(copy.subject)
    message["Date"] = compose.formatdate(usegmt=True)
    message["Message-ID"] = f"<{message_id}>"
    message["X-Delivery-Message-Id"] = message_id
    if proof is None:
        message["X-MSYS-API"] = json.dumps(
            {"metadata": {"delivery_message_id": message_id}}, separators=(",", ":")
        )
        message["List-Unsubscribe"] = f"<{copy.unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    else:
        message["X-Delivery-Proof"] = str(proof)
    message.attach(_text_part("plain", copy.text))
    message.attach(_text_part("html", copy.html))
    return message.as_bytes(policy=POLICY)


LONG = "word " * 40
COPIES = [
    Rendered("Hello F1", "<p>Hi</p>", "Hi\n", "http://t.example/u/1.2.sig"),
    Rendered("", "", "", "http://t.example/u/1.2.sig"),
    Rendered("Grüße, Zoë", "<p>Grüße = ça</p>\r\n<p>x</p>\r", "Grüße\r\nça\rend", "http://x/u/1"),
    Rendered(LONG.strip(), f"<p>{LONG * 5}</p>", LONG * 5 + "\n", "http://x/u/" + "a" * 120),
    Rendered("a" * 300, "line\n.\nFrom me\n", ". dot\nFrom x\n\n\n", "http://x/u/" + "b" * 990),
    Rendered("tab\tand  spaces", "\x00\x7f é\t \n", "trailing \t\n", "http://x/u/1"),
]
SENDERS = ["Shop <shop@example.org>", "Ünïcode Näme <n@example.org>", "x" * 90 + " <a@b.example>"]


@pytest.mark.parametrize("copy", COPIES)
@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize("proof", [None, 3])
def test_the_message_is_what_email_mime_generates(
    copy: Rendered, sender: str, proof: int | None
) -> None:
    composer = Composer("http://t.example", "k" * 32, sender)
    addressed = [("u1@example.com", "d7.42@example.com"), ("x" * 200 + "@e.com", "i")]
    boundaries = [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), uuid.uuid4()]
    for (to, message_id), fixed in zip(addressed * 3, boundaries * 2, strict=True):
        with (
            mock.patch.object(uuid, "uuid4", return_value=fixed),
            mock.patch.object(compose, "formatdate", return_value="Mon, 07 Dec 2026 17:36:58 GMT"),
        ):
            ours = composer.encode(copy, to, message_id, proof=proof)
            theirs = generated(composer, copy, to, message_id, proof)
        assert ours == theirs
        parsed = BytesParser(policy=default).parsebytes(ours)
        assert parsed.get_content_type() == "multipart/alternative"
        plain, page = (part.get_content() for part in parsed.iter_parts())
        assert page == copy.html.replace("\r\n", "\n").replace("\r", "\n")
        assert plain == copy.text.replace("\r\n", "\n").replace("\r", "\n")
