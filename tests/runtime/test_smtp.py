"""`MTA_URL=smtp://...`: the server relays each message over SMTP to a real MTA (docs/smtp.md).

End to end: the real server relays to a real aiosmtpd server (tests/support/smtp_sink.py) that
records what it gets and answers as each test scripts it; everything else goes through the
GraphQL API. The reply table, the rate limiter and MTA_URL checking are also tested alone.
"""

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support import clock, flows
from tests.support.client import Api
from tests.support.smtp import people, relaying, send
from tests.support.smtp_sink import Received, Script, SmtpSink, self_signed

BODY = (
    "<html><body><h1>Hello {{firstName}} {{lastName}}</h1>"
    '<p>Our <a href="https://example.com/offer?who={{email}}">spring offer</a> and'
    " <a href='https://example.com/news'>news</a>.</p>"
    '<p><a href="{{unsubscribeUrl}}">Unsubscribe</a></p></body></html>'
)


async def wait_for_log(
    api: Api, delivery_id: str, address: str, until: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        (log,) = [x for x in await flows.logs(api, delivery_id) if x["address"] == address]
        if until(log):
            return log
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out; last state {log}")
        await asyncio.sleep(0.05)


def is_sent(d: dict[str, Any]) -> bool:
    return bool(d["status"] == "SENT")


def by_message_id(received: list[Received]) -> Counter[str]:
    return Counter(r.message_id for r in received)


# ---- What each recipient receives -------------------------------------------------------------


async def test_each_recipient_gets_one_personalised_tracked_mime_message(
    make_sink: Callable[..., SmtpSink], make_server: Callable[..., Any]
) -> None:
    sink = make_sink()
    shop = "Spring Shop <shop@example.org>"
    async with relaying(make_server, sink.url(pool=2), mail_from=shop) as (api, running):
        base = running.base_url
        _, logs = await send(
            api,
            [
                {"email": "ada@example.com", "firstName": "Ada", "lastName": "Lovelace"},
                {"email": "bob@example.com", "firstName": "<Bob>", "lastName": "O'Neil & Co"},
            ],
            is_sent,
            subject="Hello {{firstName}}",
            body=BODY,
        )
        received = await sink.wait_for(2)
        assert sorted(r.recipients[0] for r in received) == ["ada@example.com", "bob@example.com"]
        for item in received:
            address = item.recipients[0]
            log, message = logs[address], item.message
            assert item.sender == "shop@example.org" and item.recipients == [address]

            # Headers: who, what, and the ids that bring the MTA's reports back to this log.
            assert message["From"] == "Spring Shop <shop@example.org>"
            assert message["To"] == address and message["Date"]
            assert message["Message-ID"] == f"<{log['messageId']}>"
            assert message["X-Delivery-Message-Id"] == log["messageId"]
            assert json.loads(str(message["X-MSYS-API"])) == {
                "metadata": {"delivery_message_id": log["messageId"]}
            }
            unsubscribe = str(message["List-Unsubscribe"])
            assert unsubscribe.startswith(f"<{base}/u/") and unsubscribe.endswith(">")
            assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

            # multipart/alternative: a text part, then the HTML part.
            assert message.get_content_type() == "multipart/alternative"
            parts = [p.get_content_type() for p in message.iter_parts()]
            assert parts == ["text/plain", "text/html"]
            text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            page = message.get_body(("html",)).get_content()  # type: ignore[union-attr]

            # Links go through the server's click tracking; the pixel goes before </body>.
            assert "example.com" not in page and "example.com/" not in text
            assert page.count(f'href="{base}/t/c/') == 2
            pixel = f'<img src="{base}/t/o/'
            assert pixel in page and page.index(pixel) < page.index("</body>")
            assert f'href="{unsubscribe[1:-1]}"' in page
            assert f"spring offer ({base}/t/c/" in text and f"news ({base}/t/c/" in text
            assert f"Unsubscribe ({unsubscribe[1:-1]})" in text
            assert "<" not in text.replace("<Bob>", "")

        ada = next(r.message for r in received if r.recipients == ["ada@example.com"])
        bob = next(r.message for r in received if r.recipients == ["bob@example.com"])
        assert ada["Subject"] == "Hello Ada" and bob["Subject"] == "Hello <Bob>"
        ada_page = ada.get_body(("html",)).get_content()  # type: ignore[union-attr]
        bob_page = bob.get_body(("html",)).get_content()  # type: ignore[union-attr]
        bob_text = bob.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "<h1>Hello Ada Lovelace</h1>" in ada_page
        assert "<h1>Hello &lt;Bob&gt; O&#x27;Neil &amp; Co</h1>" in bob_page
        assert "Hello <Bob> O'Neil & Co" in bob_text

        # The links work on this server: the click leads to the delivery's own link (its
        # fields filled), the pixel answers, the unsubscribe page asks before acting.
        click = bob_page.split(f'href="{base}/t/c/', 1)[1].split('"', 1)[0]
        response = await api.http.get(f"/t/c/{click}")
        assert response.is_redirect
        assert response.headers["location"] == "https://example.com/offer?who=bob%40example.com"
        opened = ada_page.split(f'<img src="{base}/t/o/', 1)[1].split('"', 1)[0]
        assert (await api.http.get(f"/t/o/{opened}")).status_code == 200
        assert (await api.http.get(unsubscribe[1 + len(base) : -1])).status_code == 200


# ---- SMTP replies: 4xx soft (retried), 5xx hard -------------------------------------------------


async def test_a_4xx_is_a_soft_bounce_that_is_retried_until_the_mta_takes_the_message(
    make_sink: Callable[..., SmtpSink], make_server: Callable[..., Any]
) -> None:
    busy = "busy@example.com"
    sink = make_sink(Script(once={busy: ["451 4.2.2 Mailbox full", "452 4.2.2 Still full"]}))
    async with relaying(make_server, sink.url(), retry_interval_seconds=0.2) as (api, _):
        done, logs = await send(api, people("calm@example.com", busy), is_sent, feedbackMode="EFS")
        log = await wait_for_log(api, done["id"], busy, lambda x: x["status"] == "SENT")
        # Two soft bounces (the first refusal and one retry), then the MTA took it.
        assert (log["failureType"], log["failureReason"], log["retries"]) == (None, None, 2)
        assert logs["calm@example.com"]["status"] == "PENDING"  # EFS: relayed, no report yet
        assert sink.refusals[busy] == 2
        counts = Counter(r.recipients[0] for r in await sink.wait_for(2))
        assert counts == {"calm@example.com": 1, busy: 1}
        kpis = (await flows.delivery(api, done["id"]))["kpis"]
        assert (kpis["sent"], kpis["pending"], kpis["failed"]) == (1, 1, 0)


async def test_a_4xx_that_never_ends_fails_for_good_when_the_validity_period_ends(
    make_sink: Callable[..., SmtpSink], make_server: Callable[..., Any]
) -> None:
    full = "full@example.com"
    sink = make_sink(Script(always={full: "452 4.2.2 Mailbox full"}))
    async with relaying(make_server, sink.url(), retry_interval_seconds=0.2) as (api, _):
        sending, _ = await send(
            api,
            people("fine@example.com", full),
            lambda d: d["kpis"]["processed"] >= 1,
            feedbackMode="LEGACY",
            validityPeriod=clock.VALIDITY,
        )
        # Refused for now, retried, refused again, while the validity period runs ...
        await wait_for_log(api, sending["id"], full, lambda log: log["retries"] >= 2)
        # ... until it ends.
        await clock.past_validity(api, sending["id"])
        done = await flows.wait_for(api, sending["id"], lambda d: d["status"] == "FINISHED")
        logs = {log["address"]: log for log in await flows.logs(api, sending["id"])}
        assert logs[full]["status"] == "FAILED"
        assert (logs[full]["failureType"], logs[full]["failureReason"]) == ("SOFT", "MAILBOX_FULL")
        # Each refusal counts, but one that ends just after the period changes nothing.
        assert 2 <= logs[full]["retries"] <= sink.refusals[full]
        assert logs["fine@example.com"]["status"] == "SENT"
        assert done["kpis"]["sent"] == 1 and done["kpis"]["failed"] == 1


async def test_a_5xx_is_a_hard_bounce_with_its_reason_and_quarantines_the_address(
    make_sink: Callable[..., SmtpSink], make_server: Callable[..., Any]
) -> None:
    gone, spam = "gone@example.com", "spam@example.com"
    sink = make_sink(
        Script(
            always={gone: "550 5.1.1 <gone@example.com>: Recipient address rejected"},
            data={spam: "554 5.7.1 Message rejected as spam"},
        )
    )
    async with relaying(make_server, sink.url()) as (api, _):
        done, logs = await send(
            api, people(gone, spam, "ok@example.com"), is_sent, feedbackMode="EFS"
        )
        assert {
            a: (x["status"], x["failureType"], x["failureReason"]) for a, x in logs.items()
        } == {
            gone: ("FAILED", "HARD", "USER_UNKNOWN"),
            spam: ("FAILED", "HARD", "REFUSED"),
            "ok@example.com": ("PENDING", None, None),
        }
        assert [r.recipients for r in sink.messages()] == [["ok@example.com"]]
        assert done["kpis"]["failed"] == 2

        # Both addresses are in quarantine: a later delivery excludes them.
        ids = await flows.import_profiles(api, [gone, spam, "new@example.com"])
        later = await flows.create_delivery(api, ids, label="Later")
        await flows.prepare(api, later["id"])
        excluded = {
            x["address"]: x["failureReason"]
            for x in await flows.logs(api, later["id"])
            if x["excluded"]
        }
        assert excluded == {gone: "QUARANTINED_ADDRESS", spam: "QUARANTINED_ADDRESS"}


# ---- Connections that fail ----------------------------------------------------------------------


async def test_a_connection_dropped_mid_batch_loses_nothing_and_repeats_only_the_message_in_flight(
    make_sink: Callable[..., SmtpSink], make_server: Callable[..., Any]
) -> None:
    sink = make_sink(Script(drop_at=5))
    emails = [f"r{i}@example.com" for i in range(20)]
    async with relaying(make_server, sink.url(pool=2)) as (api, _):
        done, logs = await send(api, people(*emails), is_sent)
        assert done["kpis"]["processed"] == done["kpis"]["toSend"] == 20
        assert {x["status"] for x in logs.values()} == {"SENT"}
        received = await sink.wait_for(20)
        assert {r.recipients[0] for r in received} == set(emails)
        # The DATA the sink took but never answered was sent again; nothing else was.
        in_flight = sink.messages()[4].message_id
        counts = by_message_id(await sink.wait_for(21))
        assert {mid for mid, n in counts.items() if n > 1} == {in_flight}
        assert counts[in_flight] == 2 and len(sink.messages()) == 21


async def test_a_connection_closed_between_two_messages_is_reopened_without_repeating_any(
    make_sink: Callable[..., SmtpSink], make_server: Callable[..., Any]
) -> None:
    sink = make_sink(Script(close_after=3))
    emails = [f"c{i}@example.com" for i in range(8)]
    async with relaying(make_server, sink.url(pool=1)) as (api, _):
        done, _ = await send(api, people(*emails), is_sent)
        assert done["failureMessage"] is None
        received = await sink.wait_for(8)
        assert sorted(r.recipients[0] for r in received) == sorted(emails)
        assert set(by_message_id(received).values()) == {1}


async def test_starttls_and_auth_relay_with_the_right_credentials(
    make_sink: Callable[..., SmtpSink], make_server: Callable[..., Any], tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    sink = make_sink(tls=(cert, key), credentials=("relay", "s3cret:/@x"))
    url = sink.url("relay", "s3cret%3A%2F%40x", cafile=cert, pool=2)
    async with relaying(make_server, url) as (api, _):
        await send(api, people("a@example.com", "b@example.com", "c@example.com"), is_sent)
        received = await sink.wait_for(3)
        assert sorted(r.recipients[0] for r in received) == [
            "a@example.com",
            "b@example.com",
            "c@example.com",
        ]
        # The sink refuses MAIL before STARTTLS and AUTH: a message is proof of both.
        assert ("relay", True) in sink.logins and ("relay", False) not in sink.logins


async def test_a_wrong_password_fails_the_delivery_with_the_auth_error_and_not_the_password(
    make_sink: Callable[..., SmtpSink], make_server: Callable[..., Any], tmp_path: Path
) -> None:
    sink = make_sink(tls=self_signed(tmp_path), credentials=("relay", "s3cret"))
    url = sink.url("relay", "wrong-pass-123", verify="false")
    settings = {"max_relay_failures": 2, "relay_backoff_initial_seconds": 0.05}
    async with relaying(make_server, url, **settings) as (api, _):
        done, logs = await send(api, people("a@example.com"), lambda d: d["status"] == "FAILED")
        message = done["failureMessage"]
        assert "authentication as 'relay' failed: 535" in message, message
        assert "wrong-pass-123" not in message
        # A FAILED delivery keeps its unrelayed message, to be resumed once the cause is fixed.
        assert logs["a@example.com"]["status"] == "TO_SEND" and sink.messages() == []
