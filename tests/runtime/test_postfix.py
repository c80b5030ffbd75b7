"""End to end through a real Postfix (Debian's package, a private instance:
tests/support/postfix.py).

The server relays over SMTP to Postfix, which takes every message and relays it on to a local
SMTP sink playing the recipients' servers: one refuses for good (550), one refuses for now and
then for good (451, then 550), one refuses for now until Postfix gives up (452, past a queue
lifetime of seconds), one takes the message. Postfix writes its own delivery status
notifications to each message's VERP envelope sender, and routes BOUNCE_DOMAIN to the server's
inbound listener: the sending logs end FAILED HARD / SOFT with the reasons of the sink's replies.
Skipped, with the reason, where Postfix cannot run (not installed, not root).
"""

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from models.verp import read_verp_address
from tests.support import flows
from tests.support.postfix import Postfix, unavailable
from tests.support.server import SECRET, api_for, free_port
from tests.support.smtp_sink import Script, SmtpSink

DOMAIN = "bounces.test"


async def test_postfix_dsns_come_back_to_the_listener_and_fail_the_logs(
    make_server: Callable[..., Any],
) -> None:
    why = unavailable()
    if why is not None:
        pytest.skip(why)
    script = Script(
        always={
            "hard@example.com": "550 5.1.1 <hard@example.com>: Recipient address rejected",
            "full@example.com": "452 4.2.2 <full@example.com>: Mailbox full",
            "later@example.com": "550 5.2.1 <later@example.com>: Mailbox disabled",
        },
        once={"later@example.com": ["451 4.7.1 <later@example.com>: Try again later"]},
    )
    inbound_port = free_port()
    with SmtpSink(script) as sink:
        postfix = Postfix(free_port(), sink.port, DOMAIN, inbound_port, queue_lifetime_seconds=6)
        try:
            failed = postfix.start()
            if failed is not None:
                pytest.skip(f"postfix cannot run here: {failed}")
            running = await make_server(
                mta_url=f"smtp://127.0.0.1:{postfix.port}?starttls=off&pool=2",
                bounce_domain=DOMAIN,
                inbound_smtp=f"127.0.0.1:{inbound_port}",
                feedback_mode="EFS",
                mail_from="Shop <news@shop.example>",
            )
            async for api in api_for(running):
                emails = ["hard@example.com", "later@example.com", "full@example.com"]
                done, logs = await flows.sent_delivery(api, [*emails, "ok@example.com"])
                log_ids = {log["address"]: int(log["id"]) for log in logs}

                expected = {
                    "hard@example.com": ("FAILED", "HARD", "USER_UNKNOWN", 0),
                    "later@example.com": ("FAILED", "HARD", "ACCOUNT_DISABLED", 0),
                    "full@example.com": ("FAILED", "SOFT", "MAILBOX_FULL", 1),
                    "ok@example.com": ("PENDING", None, None, 0),
                }
                states: dict[str, Any] = {}
                for _ in range(600):  # up to a minute: the expiry comes after 6 s
                    got = await flows.logs(api, done["id"])
                    states = {log["address"]: flows.failure_state(log) for log in got}
                    if states == expected:
                        break
                    await asyncio.sleep(0.1)
                log_text = postfix.logged()[-4000:]
                assert states == expected, f"{states}\n--- postfix log ---\n{log_text}"
                # The message that got through went with its own VERP envelope sender.
                (delivered,) = [m for m in sink.messages() if m.recipients == ["ok@example.com"]]
                assert (
                    read_verp_address(SECRET, DOMAIN, delivered.sender) == log_ids["ok@example.com"]
                )
                assert delivered.message["From"] == "Shop <news@shop.example>"
                status = await api.gql(
                    '{ addressStatus(address: "hard@example.com") { quarantined } }'
                )
                assert status["addressStatus"] == {"quarantined": True}
                assert "status=bounced" in postfix.logged()
        finally:
            postfix.stop()
