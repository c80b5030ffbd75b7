"""SMTP PIPELINING (RFC 2920): when the MTA's EHLO offers it, MAIL FROM, RCPT TO and DATA go in
one write; every outcome is what it is without it (docs/engine.md, server/mta/pipelining.py).

Each case runs against a real aiosmtpd server (tests/support/smtp_sink.py) that advertises
PIPELINING or not, through the SMTP adapter's `relay` on one pooled connection; the sink tells
whether each RCPT TO arrived with its MAIL FROM, before MAIL FROM's reply. The end-to-end case
goes through the server and its dispatcher.
"""

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from models.enums import Channel, FailureReason, FeedbackType
from models.relay import Claimed
from server.mta.base import Content, Handover, RelayError
from server.mta.compose import Composer
from server.mta.smtp import SmtpConfig, SmtpMta
from tests.support.lean_sink import LeanSession, lean_sink
from tests.support.smtp import people, relaying, send
from tests.support.smtp_sink import CountingSink, Script, SmtpSink, self_signed

HARD, SOFT = FeedbackType.HARD_BOUNCE, FeedbackType.SOFT_BOUNCE
MODES = pytest.mark.parametrize("pipelining", [False, True], ids=["plain", "pipelined"])


async def relay(
    sink: SmtpSink | CountingSink | None,
    addresses: list[str],
    pool: int = 1,
    url: str | None = None,
) -> Handover:
    """One batch over `pool` connections; the handover as the adapter left it."""
    batch = [Claimed(i, a, None, f"d1.{i}@delivery.local") for i, a in enumerate(addresses, 1)]
    content = Content(1, Channel.EMAIL, "Hi", "<p>Hello {{email}}</p>", datetime.now(UTC), 60)
    handover = Handover(batch)
    if url is None:
        assert sink is not None
        url = sink.url(pool=pool, starttls="off", timeout=5)
    config = SmtpConfig.from_url(url)
    composer = Composer("http://127.0.0.1", "key", "Us <us@example.org>", None)
    mta = SmtpMta(config, composer)
    try:
        await mta.relay(content, handover)
    finally:
        await mta.close()
    return handover


def refused(handover: Handover) -> list[tuple[int, FeedbackType, FailureReason]]:
    return [(c.log_id, kind, reason) for c, kind, reason in handover.refused]


def received(sink: SmtpSink) -> list[str]:
    return [r.recipients[0] for r in sink.messages()]


@MODES
async def test_each_refusal_is_classified_the_same_and_the_session_goes_on(
    pipelining: bool,
) -> None:
    script = Script(
        pipelining=pipelining,
        always={"gone@x.test": "550 5.1.1 No such user", "full@x.test": "452 4.2.2 Full"},
        data_command={"nodata@x.test": "554 5.7.1 Not from you"},
        data={"spam@x.test": "550 5.7.1 Looks like spam"},
    )
    addresses = [
        "a@ok.test",
        "gone@x.test",
        "b@ok.test",
        "full@x.test",
        "c@ok.test",
        "nodata@x.test",
        "d@ok.test",
        "spam@x.test",
        "e@ok.test",
    ]
    with SmtpSink(script) as sink:
        handover = await relay(sink, addresses)
    assert handover.error is None and handover.unsent == [] and handover.withheld == []
    assert handover.accepted == [1, 3, 5, 7, 9]
    assert refused(handover) == [
        (2, HARD, FailureReason.USER_UNKNOWN),
        (4, SOFT, FailureReason.MAILBOX_FULL),
        (6, HARD, FailureReason.REFUSED),
        (8, HARD, FailureReason.REFUSED),
    ]
    assert received(sink) == ["a@ok.test", "b@ok.test", "c@ok.test", "d@ok.test", "e@ok.test"]
    assert sink.sessions == 1  # each refusal left the session usable (RSET)
    # The first transaction says EHLO first (aiosmtplib's path); the others pipeline if offered.
    assert sink.pipelined == [False] + [pipelining] * 8


@MODES
@pytest.mark.parametrize(
    ("reply", "cause", "permanent"),
    [
        ("550 5.7.1 Sender blocked", "the MTA refused our sender (550)", True),
        ("421 4.3.2 Going down", "the MTA is busy (421)", False),
    ],
)
async def test_a_refused_sender_ends_the_session_and_hands_back_the_rest(
    pipelining: bool, reply: str, cause: str, permanent: bool
) -> None:
    with SmtpSink(Script(pipelining=pipelining, mail={3: reply})) as sink:
        handover = await relay(sink, ["a@ok.test", "b@ok.test", "c@ok.test", "d@ok.test"])
    assert handover.accepted == [1, 2] and handover.unsent == [3, 4] and handover.refused == []
    assert isinstance(handover.error, RelayError)
    assert (handover.error.cause, handover.error.permanent) == (cause, permanent)
    assert received(sink) == ["a@ok.test", "b@ok.test"]


@MODES
async def test_a_recipient_refused_with_421_ends_the_session(pipelining: bool) -> None:
    script = Script(pipelining=pipelining, always={"b@ok.test": "421 4.3.2 Going down"})
    with SmtpSink(script) as sink:
        handover = await relay(sink, ["a@ok.test", "b@ok.test", "c@ok.test"])
    assert handover.accepted == [1] and handover.unsent == [2, 3] and handover.refused == []
    assert isinstance(handover.error, RelayError)
    assert (handover.error.cause, handover.error.permanent) == ("the MTA is busy (421)", False)


@MODES
@pytest.mark.parametrize("where", ["drop_at_rcpt", "drop_at"])
async def test_a_connection_lost_mid_transaction_hands_back_the_message_and_the_rest(
    pipelining: bool, where: str
) -> None:
    """Lost at the third RCPT TO (nothing of it sent), or once its body was sent and before its
    reply (the only message that can arrive twice, when claimed again)."""
    drop: dict[str, Any] = {where: 3}
    script = Script(pipelining=pipelining, **drop)
    addresses = ["a@ok.test", "b@ok.test", "c@ok.test", "d@ok.test"]
    with SmtpSink(script) as sink:
        handover = await relay(sink, addresses)
    assert handover.accepted == [1, 2] and handover.unsent == [3, 4] and handover.refused == []
    assert isinstance(handover.error, RelayError)
    assert (handover.error.cause, handover.error.permanent) == ("connection lost", False)
    assert received(sink) == addresses[: 3 if where == "drop_at" else 2]


@MODES
@pytest.mark.parametrize("script", [{"drop_at_mail": 3}, {"close_after": 2}])
async def test_a_connection_gone_before_mail_from_is_answered_is_reopened_once(
    pipelining: bool, script: dict[str, Any]
) -> None:
    """Closed by the MTA between two messages, or at MAIL FROM without a word: no body went
    out, so a fresh connection carries the message, and nothing arrives twice."""
    addresses = ["a@ok.test", "b@ok.test", "c@ok.test", "d@ok.test"]
    with SmtpSink(Script(pipelining=pipelining, **script)) as sink:
        handover = await relay(sink, addresses)
    assert handover.error is None and handover.accepted == [1, 2, 3, 4]
    assert received(sink) == addresses
    assert sink.sessions == 2


async def test_pipelining_over_starttls_and_auth(tmp_path: Path) -> None:
    """After STARTTLS and AUTH (EHLO said already), every transaction pipelines, over TLS."""
    cert, key = self_signed(tmp_path)
    script = Script(pipelining=True, always={"gone@x.test": "550 5.1.1 No such user"})
    with SmtpSink(script, tls=(cert, key), credentials=("relay", "pw")) as sink:
        url = sink.url("relay", "pw", cafile=cert, pool=1)
        handover = await relay(sink, ["a@ok.test", "gone@x.test", "b@ok.test"], url=url)
    assert handover.error is None and handover.accepted == [1, 3]
    assert refused(handover) == [(2, HARD, FailureReason.USER_UNKNOWN)]
    assert received(sink) == ["a@ok.test", "b@ok.test"]
    assert sink.pipelined == [True, True, True]


@MODES
async def test_the_lean_sink_takes_pipelined_groups_as_they_come(
    pipelining: bool, tmp_path: Path
) -> None:
    """tests/support/lean_sink.py offers PIPELINING (or not), and answers each command of a
    group in order, with its replies late as over a network."""
    addresses = [f"user{i}@example.com" for i in range(1, 201)]
    with lean_sink(tmp_path, delay=0.001, pipelining=pipelining) as sink:
        handover = await relay(sink, addresses, pool=4)
    assert handover.error is None and sorted(handover.accepted) == list(range(1, 201))
    assert sink.ids == {f"d1.{i}@delivery.local": 1 for i in range(1, 201)}


async def test_a_pipelined_send_records_what_the_mta_answered(
    make_sink: Any, make_server: Any
) -> None:
    """End to end: the dispatcher records the same fates with pipelining."""
    sink = make_sink(
        Script(pipelining=True, always={"gone@x.test": "550 5.1.1 No such user"}),
    )
    addresses = ["a@ok.test", "gone@x.test", "b@ok.test", "c@ok.test"]
    async with relaying(make_server, sink.url(pool=1)) as (api, _):
        done, logs = await send(api, people(*addresses), lambda d: d["status"] == "SENT")
    assert done["kpis"]["processed"] == 4
    assert logs["gone@x.test"]["status"] == "FAILED"
    assert {a: logs[a]["status"] for a in addresses if a != "gone@x.test"} == dict.fromkeys(
        ["a@ok.test", "b@ok.test", "c@ok.test"], logs["a@ok.test"]["status"]
    )
    assert sorted(received(sink)) == ["a@ok.test", "b@ok.test", "c@ok.test"]
    assert True in sink.pipelined


class SilentAtMail(LeanSession):
    """An MTA that reads the second MAIL FROM and never answers it (nor anything after it)."""

    mails = 0

    def reply(self, data: bytes, message_id: bytes | None = None) -> None:
        if self.mails < 2:
            super().reply(data, message_id)

    def data_received(self, data: bytes) -> None:
        self.mails += data.upper().count(b"MAIL FROM")
        super().data_received(data)


@MODES
async def test_an_mta_silent_at_mail_from_times_out_and_hands_back_the_rest(
    pipelining: bool,
) -> None:
    """docs/smtp.md: the cause is "timed out", not an unexpected error (the first message
    opens the session; the second goes pipelined when the MTA offers it)."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SilentAtMail(lambda _id: None, pipelining=pipelining), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    try:
        url = f"smtp://127.0.0.1:{port}?pool=1&starttls=off&timeout=0.3"
        handover = await relay(None, ["a@ok.test", "b@ok.test", "c@ok.test"], url=url)
    finally:
        server.close()
    assert handover.accepted == [1] and handover.unsent == [2, 3] and handover.refused == []
    assert isinstance(handover.error, RelayError)
    assert (handover.error.cause, handover.error.permanent) == ("timed out", False)
