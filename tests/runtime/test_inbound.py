"""Bounces and feedback-loop reports by mail (issue 15 §2): each message's VERP envelope sender,
and the inbound SMTP listener that turns what comes back to it into feedback, over real SMTP.

The server runs with the capture MTA (no reports of its own) and `INBOUND_SMTP` on a free port;
the test plays the remote MTA with aiosmtplib, sending to the VERP address of a sending log.
The end-to-end test through a real Postfix is tests/runtime/test_postfix.py.
"""

import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from email.utils import formatdate
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from models.verp import read_verp_address, verp_address
from tests.support import clock, flows
from tests.support.client import Api
from tests.support.feedback_steps import opt_out_kpis, recounted, standing
from tests.support.server import SECRET, RunningServer, api_for, free_port

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = Path(__file__).resolve().parents[1] / "support" / "samples"
DOMAIN = "bounces.test"
LOG = "server.inbound"


# ---- The listener in a running server ----------------------------------------------------------


@pytest.fixture
async def inbound(make_server: Callable[..., Any]) -> AsyncIterator[tuple[Api, int]]:
    port = free_port()
    running = await make_server(
        bounce_domain=DOMAIN, inbound_smtp=f"127.0.0.1:{port}", inbound_max_bytes=64 * 1024
    )
    async for api in api_for(running):
        yield api, port


async def send(port: int, recipient: str, data: bytes) -> tuple[int, str]:
    """One SMTP transaction from the null sender, as a bounce comes: the reply to DATA (or to
    the first command that refused)."""
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=10)
    async with client:
        await client.ehlo()
        await client.mail("")
        try:
            await client.rcpt(recipient)
            reply = await client.data(data)
        except aiosmtplib.SMTPResponseException as refused:
            return refused.code, refused.message
        return reply.code, reply.message


def dsn(status: str, diagnostic: str, message_id: str, action: str = "failed") -> bytes:
    """A delivery status notification as Postfix writes one (RFC 3464)."""
    return f"""\
From: MAILER-DAEMON@relay.example.net (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: bounces@{DOMAIN}
Auto-Submitted: auto-replied
Date: {formatdate()}
Message-ID: <{message_id}>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="B1"

--B1
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

--B1
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.example.net
Arrival-Date: {formatdate()}

Final-Recipient: rfc822; someone@mailbox.example.net
Original-Recipient: rfc822;someone@mailbox.example.net
Action: {action}
Status: {status}
Remote-MTA: dns; mx.mailbox.example.net
Diagnostic-Code: smtp; {diagnostic}

--B1
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: Campaign <noreply@delivery.local>
Subject: Hello

--B1--
""".replace("\n", "\r\n").encode()


async def sent(api: Api, emails: list[str]) -> tuple[str, dict[str, int]]:
    """An EFS delivery relayed to `emails`: its id, and each address's sending log id."""
    done, logs = await flows.sent_delivery(api, list(emails), feedbackMode="EFS")
    return done["id"], {log["address"]: int(log["id"]) for log in logs}


def verp(log_id: int) -> str:
    return verp_address(SECRET, DOMAIN, log_id)


async def states(api: Api, delivery_id: str) -> dict[str, tuple[Any, ...]]:
    return {log["address"]: flows.failure_state(log) for log in await flows.logs(api, delivery_id)}


async def test_only_valid_verp_addresses_are_taken_and_refusals_are_logged(
    inbound: tuple[Api, int], caplog: pytest.LogCaptureFixture
) -> None:
    api, port = inbound
    delivery_id, ids = await sent(api, ["a@example.com"])
    before = await states(api, delivery_id)
    report = dsn("5.1.1", "550 5.1.1 User unknown", "r1@relay.example.net")
    caplog.set_level(logging.INFO, LOG)
    wrong = [
        f"someone@{DOMAIN}",
        verp(ids["a@example.com"]).replace(f"+{ids['a@example.com']}-", "+999-"),
        verp_address("not-our-secret", DOMAIN, ids["a@example.com"]),
        verp(ids["a@example.com"]).replace(DOMAIN, "elsewhere.test"),
    ]
    for address in wrong:
        code, _ = await send(port, address, report)
        assert code == 550, address
        assert f"refused RCPT TO:<{address}>" in caplog.text
    assert await states(api, delivery_id) == before
    assert await standing(api, "a@example.com") is None


async def test_dsns_bounce_hard_and_soft_with_the_smtp_reasons_once_each(
    inbound: tuple[Api, int], caplog: pytest.LogCaptureFixture
) -> None:
    api, port = inbound
    emails = ["gone@example.com", "full@example.com", "far@example.com", "ok@example.com"]
    delivery_id, ids = await sent(api, emails)
    caplog.set_level(logging.INFO, LOG)
    hard = dsn("5.1.1", "550 5.1.1 <gone@example.com>: User unknown", "h1@relay.example.net")
    soft = dsn("4.2.2", "452 4.2.2 Mailbox full", "s1@relay.example.net", action="delayed")
    route = dsn("4.4.1", "connect to mx: Connection timed out", "s2@relay.example.net", "delayed")
    for log_id, data in ((ids[emails[0]], hard), (ids[emails[1]], soft), (ids[emails[2]], route)):
        assert (await send(port, verp(log_id), data))[0] == 250
    # The same DSN sent again (an MTA that missed our answer): one event, nothing counts twice.
    assert (await send(port, verp(ids[emails[1]]), soft))[0] == 250
    assert "(0 new, 1 duplicate, 0 unknown)" in caplog.text
    assert await states(api, delivery_id) == {
        "gone@example.com": ("FAILED", "HARD", "USER_UNKNOWN", 0),
        "full@example.com": ("FAILED", "SOFT", "MAILBOX_FULL", 1),
        "far@example.com": ("FAILED", "SOFT", "UNREACHABLE", 1),
        "ok@example.com": ("PENDING", None, None, 0),
    }
    gone = await api.gql(
        '{ addressStatus(address: "gone@example.com") { quarantined quarantineReason } }'
    )
    assert gone["addressStatus"] == {"quarantined": True, "quarantineReason": "USER_UNKNOWN"}
    full = await api.gql(
        '{ addressStatus(address: "full@example.com") { quarantined errorCount } }'
    )
    assert full["addressStatus"] == {"quarantined": False, "errorCount": 1}
    kpis = (await flows.delivery(api, delivery_id))["kpis"]
    assert (kpis["failed"], kpis["pending"]) == (3, 1)


async def test_complaints_auto_replies_and_the_unrecognised(inbound: tuple[Api, int]) -> None:
    api, port = inbound
    emails = ["c@example.com", "n@example.com", "o@example.com", "r@example.com"]
    delivery_id, ids = await sent(api, emails)
    files = ["arf_abuse.eml", "arf_not_spam.eml", "out_of_office.eml", "plain_reply.eml"]
    for email, name in zip(emails, files, strict=True):
        data = (SAMPLES / "inbound" / name).read_bytes().replace(b"\n", b"\r\n")
        assert (await send(port, verp(ids[email]), data))[0] == 250
    # Only the ARF abuse report does anything: the deny list and the complaints KPI.
    assert set((await states(api, delivery_id)).values()) == {("PENDING", None, None, 0)}
    c = await standing(api, "c@example.com")
    assert c is not None and c["denylistReason"] == "COMPLAINT" and not c["quarantined"]
    for email in emails[1:]:
        assert await standing(api, email) is None
    kpis = await opt_out_kpis(api, delivery_id)
    assert kpis["complaints"] == 1
    assert await recounted(api, delivery_id) == kpis


async def test_a_message_over_the_size_limit_gets_552_and_is_logged(
    inbound: tuple[Api, int], caplog: pytest.LogCaptureFixture
) -> None:
    api, port = inbound
    delivery_id, ids = await sent(api, ["big@example.com"])
    caplog.set_level(logging.INFO, LOG)
    big = dsn("5.1.1", "550 5.1.1 unknown", "big@relay.example.net") + (b"x" * 78 + b"\r\n") * 900
    code, _ = await send(port, verp(ids["big@example.com"]), big)
    assert code == 552
    assert "larger than INBOUND_MAX_BYTES" in caplog.text
    assert (await states(api, delivery_id))["big@example.com"] == ("PENDING", None, None, 0)


async def test_a_bounce_after_the_validity_period_is_recorded_without_a_change(
    inbound: tuple[Api, int], caplog: pytest.LogCaptureFixture
) -> None:
    api, port = inbound
    done, logs = await flows.sent_delivery(
        api, ["late@example.com"], feedbackMode="EFS", validityPeriod=clock.VALIDITY
    )
    await clock.finished(api, done["id"])
    caplog.set_level(logging.INFO, LOG)
    late = dsn("5.1.1", "550 5.1.1 User unknown", "late@relay.example.net")
    assert (await send(port, verp(int(logs[0]["id"])), late))[0] == 250
    assert "(1 new, 0 duplicate, 0 unknown)" in caplog.text
    assert (await states(api, done["id"]))["late@example.com"] == ("PENDING", None, None, 0)
    status = await api.gql('{ addressStatus(address: "late@example.com") { quarantined } }')
    assert status["addressStatus"] is None


def expected_samples() -> list[tuple[str, str, str]]:
    rows = (SAMPLES / "bounces" / "EXPECTED.tsv").read_text().splitlines()
    return [tuple(r.split("\t")[:3]) for r in rows if r and not r.startswith("#")]  # type: ignore[misc]


async def test_real_world_bounces_replayed_over_smtp(inbound: tuple[Api, int]) -> None:
    """The bounces flufl.bounce collected from real MTAs (qmail, Exim, Exchange, Yahoo,
    GroupWise, DSNs ...), each sent to its own log's VERP address: each log ends as
    tests/support/samples/bounces/EXPECTED.tsv says (hard, soft, or untouched when ignored)."""
    api, port = inbound
    samples = expected_samples()
    assert len(samples) > 100
    emails = [f"r{i}@example.com" for i in range(len(samples))]
    delivery_id, ids = await sent(api, emails)

    async def replay(i: int, name: str) -> None:
        raw = (SAMPLES / "bounces" / name).read_bytes()
        data = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        assert (await send(port, verp(ids[emails[i]]), data))[0] == 250, name

    for start in range(0, len(samples), 8):  # a few sessions at a time, as an MTA does
        await asyncio.gather(
            *(replay(i, samples[i][0]) for i in range(start, min(start + 8, len(samples))))
        )
    got = await states(api, delivery_id)
    wrong = []
    for i, (name, verdict, reason) in enumerate(samples):
        expected = {
            "hard_bounce": ("FAILED", "HARD", reason, 0),
            "soft_bounce": ("FAILED", "SOFT", reason, 1),
            "ignored": ("PENDING", None, None, 0),
        }[verdict]
        if got[emails[i]] != expected:
            wrong.append((name, got[emails[i]], expected))
    assert wrong == []
    kpis = (await flows.delivery(api, delivery_id))["kpis"]
    ignored = sum(1 for s in samples if s[1] == "ignored")
    assert (kpis["failed"], kpis["pending"]) == (len(samples) - ignored, ignored)


# ---- `python -m server inbound` alone -----------------------------------------------------------


async def test_the_inbound_command_runs_the_listener_alone(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite://{tmp_path}/inbound.sqlite3",
        "INBOUND_SMTP": f"127.0.0.1:{port}",
        "BOUNCE_DOMAIN": DOMAIN,
        "FEEDBACK_SECRET": SECRET,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        "inbound",
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            try:
                code, _ = await send(port, f"nobody@{DOMAIN}", b"Subject: x\r\n\r\nx\r\n")
                break
            except (OSError, aiosmtplib.SMTPException):
                assert process.returncode is None, "the listener stopped"
                assert asyncio.get_running_loop().time() < deadline, "the listener never came up"
                await asyncio.sleep(0.1)
        assert code == 550
        # A valid address of a log this (empty) database does not have: taken, counted unknown.
        data = dsn("5.1.1", "550 5.1.1 unknown", "x@relay.example.net")
        assert (await send(port, verp(7), data))[0] == 250
    finally:
        process.send_signal(signal.SIGTERM)
        raw, _ = await asyncio.wait_for(process.communicate(), 30)
    output = raw.decode()
    assert process.returncode == 0, output
    assert f"refused RCPT TO:<nobody@{DOMAIN}>" in output
    assert "(0 new, 0 duplicate, 1 unknown)" in output


async def test_the_envelope_sender_is_the_verp_address_and_from_stays_mail_from(
    make_server: Callable[..., Any],
) -> None:
    from tests.support.smtp_sink import SmtpSink

    with SmtpSink() as sink:
        running: RunningServer = await make_server(
            mta_url=sink.url(), bounce_domain=DOMAIN, mail_from="Shop <news@shop.example>"
        )
        async for api in api_for(running):
            _, logs = await flows.sent_delivery(api, ["v0@example.com", "v1@example.com"])
            got = await sink.wait_for(2)
            by_to = {m.recipients[0]: m for m in got}
            for log in logs:
                message = by_to[log["address"]]
                assert message.sender == verp(int(log["id"]))
                assert read_verp_address(SECRET, DOMAIN, message.sender) == int(log["id"])
                assert message.message["From"] == "Shop <news@shop.example>"
