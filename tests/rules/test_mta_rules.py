"""How the answers of an MTA are read, with no server and no network: the SMTP adapter's
MTA_URL options, its reply table and rate limit, the transient / permanent split of relay
errors, the simulator's settings and retry plan, VERP addresses (SPEC §4, docs/smtp.md)."""

import random
import socket
import ssl
import string
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiosmtplib import (
    SMTPAuthenticationError,
    SMTPConnectError,
    SMTPConnectResponseError,
    SMTPConnectTimeoutError,
    SMTPException,
    SMTPResponseException,
    SMTPServerDisconnected,
)
from aiosmtplib.email import quote_address

from models.enums import Channel, FailureReason, FeedbackType
from models.relay import Claimed
from models.verp import read_verp_address, verp_address
from server.app import create_app
from server.inbound.listener import InboundListener
from server.mta import make_mta
from server.mta.base import Content, Handover
from server.mta.simulator import retry_offsets
from server.mta.smtp import (
    DOT_ATOM_ADDRESS,
    REASONS,
    SmtpConfig,
    SmtpMta,
    StartTls,
    TokenBucket,
    _connect_failure,
    _lost,
    _session_reply,
    classify,
)
from server.settings import Settings

# ---- Alone: MTA_URL, the reply table, the rate limiter, other channels -------------------------

HOUR, DAY = 3600, 86400
DOMAIN = "bounces.test"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("smtp://mx.example:25?pool=0", "option pool='0' must be a whole number from 1 to 64"),
        ("smtp://mx.example?starttls=maybe", "starttls='maybe' must be auto, require or off"),
        ("smtp://mx.example?rate=-1", "option rate='-1' must be messages per second"),
        ("smtp://mx.example?timeout=0", "option timeout='0' must be a number of seconds"),
        ("smtp://mx.example?verify=perhaps", "verify='perhaps' must be true or false"),
        ("smtp://mx.example?cafile=/no/such.pem", "cafile='/no/such.pem' is not a readable file"),
        ("smtp://mx.example?poll=4", "unknown smtp option 'poll'"),
        ("smtp://mx.example?pool=2&pool=3", "option 'pool' is given twice"),
        ("smtp://mx.example:99999", "port must be a number from 1 to 65535"),
        ("smtp://:25", "has no host"),
        ("smtp://mx.example/path", "takes no path"),
        ("smtp://user@mx.example", "has a user but no password"),
        ("smtp://mx.example?starttls=off&verify=false", "starttls=off"),
    ],
)
def test_bad_mta_url_options_are_refused_with_a_clear_message(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=r"^MTA_URL") as error:
        SmtpConfig.from_url(url)
    assert says in str(error.value)


def test_mta_url_options_and_their_defaults() -> None:
    plain = SmtpConfig.from_url("smtp://mx.example")
    assert (plain.port, plain.starttls, plain.pool, plain.rate, plain.timeout) == (
        25,
        StartTls.AUTO,
        4,
        0.0,
        30.0,
    )
    full = SmtpConfig.from_url(
        "smtp://me%40corp:p%40ss%3Aw@mx.example:587?pool=8&rate=50&timeout=5&helo=app.example"
    )
    assert (full.user, full.password, full.port) == ("me@corp", "p@ss:w", 587)
    assert full.starttls is StartTls.REQUIRE  # a password never travels in clear by default
    assert (full.pool, full.rate, full.timeout, full.helo) == (8, 50.0, 5.0, "app.example")
    assert "p@ss:w" not in repr(full) and "p@ss:w" not in full.describe()


def test_the_server_does_not_start_on_a_bad_mta_url_and_says_why_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from server.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MTA_URL", "smtp://relay:hunter2@mx.example?pool=100")
    assert main(["serve", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("configuration error: MTA_URL: smtp option pool='100'")
    assert len(err.strip().splitlines()) == 1 and "hunter2" not in err


def test_smtp_needs_a_public_url_for_tracking() -> None:
    settings = Settings(_env_file=None, mta_url="smtp://mx.example", public_url=None)
    with pytest.raises(ValueError, match="PUBLIC_URL"):
        make_mta(settings)


@pytest.mark.parametrize(
    ("code", "text", "kind", "reason"),
    [
        (550, "5.1.1 <x@example.com>: Recipient address rejected", "hard", "USER_UNKNOWN"),
        (553, "5.1.3 Bad recipient address syntax", "hard", "USER_UNKNOWN"),
        (550, "5.1.2 Host unknown", "hard", "UNREACHABLE"),
        (550, "5.2.1 Mailbox disabled", "hard", "ACCOUNT_DISABLED"),
        (552, "5.2.2 Over quota", "hard", "REFUSED"),
        (554, "5.7.1 Relay access denied", "hard", "REFUSED"),
        (550, "5.4.4 Unable to route", "hard", "UNREACHABLE"),
        (554, "Transaction failed", "hard", "REFUSED"),
        (551, "User not local", "hard", "USER_UNKNOWN"),
        (452, "4.2.2 Mailbox full", "soft", "MAILBOX_FULL"),
        (450, "4.1.2 Domain not found", "soft", "INVALID_DOMAIN"),
        (450, "4.2.1 Mailbox disabled for now", "soft", "ACCOUNT_DISABLED"),
        (451, "4.4.1 No answer from host", "soft", "UNREACHABLE"),
        (450, "4.7.1 Greylisted, try again later", "soft", "REFUSED"),
        (451, "4.3.0 Local error", "soft", "UNDEFINED"),
        (450, "Mailbox busy", "soft", "UNDEFINED"),
    ],
)
def test_smtp_replies_map_to_feedback_types_and_reasons(
    code: int, text: str, kind: str, reason: str
) -> None:
    expected = FeedbackType.HARD_BOUNCE if kind == "hard" else FeedbackType.SOFT_BOUNCE
    assert classify(code, text) == (expected, FailureReason(reason))


def test_every_reason_in_the_table_is_one_spec_allows_for_its_failure_type() -> None:
    """SPEC §4: which reasons are hard, soft, or either as the MTA qualifies them."""
    either = {FailureReason.UNREACHABLE, FailureReason.REFUSED, FailureReason.ACCOUNT_DISABLED}
    hard = {FailureReason.USER_UNKNOWN, FailureReason.ADDRESS_EMPTY} | either
    soft = {FailureReason.MAILBOX_FULL, FailureReason.INVALID_DOMAIN, FailureReason.UNDEFINED}
    for key, reason in REASONS.items():
        assert reason in (hard if key.startswith("5") else soft | either), key


def test_the_rate_limit_is_a_token_bucket_with_one_second_of_burst() -> None:
    now = [0.0]
    bucket = TokenBucket(4, clock=lambda: now[0])
    assert [bucket.reserve() for _ in range(4)] == [0.0] * 4  # the burst
    assert [bucket.reserve() for _ in range(3)] == [0.25, 0.5, 0.75]  # then booked in turn
    now[0] = 2.0  # idle: the bucket refills, never beyond its capacity
    assert [bucket.reserve() for _ in range(5)] == [0.0] * 4 + [0.25]


async def test_sms_and_push_over_smtp_are_refused_for_good() -> None:
    settings = Settings(_env_file=None, mta_url="smtp://127.0.0.1:9", public_url="http://127.0.0.1")
    mta = SmtpMta.from_settings(settings)
    batch = [Claimed(1, "+33600000000", None, "d1.1@x"), Claimed(2, "+33600000001", None, "d1.2@x")]
    content = Content(1, Channel.SMS, None, "Hi", datetime.now(UTC), 60)
    result = Handover(batch)
    await mta.relay(content, result)
    assert result.accepted == [] and result.unsent == [] and result.error is None
    assert [(c.log_id, k, r) for c, k, r in result.refused] == [
        (1, FeedbackType.HARD_BOUNCE, FailureReason.REFUSED),
        (2, FeedbackType.HARD_BOUNCE, FailureReason.REFUSED),
    ]


# ---- the classification alone ----------------------------------------------------------------


CONFIG = SmtpConfig.from_url("smtp://relay:pw@mx.example:587")


def wrapped(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


@pytest.mark.parametrize(
    ("error", "cause", "permanent"),
    [
        (wrapped(SMTPConnectError("x"), ConnectionRefusedError()), "connection refused", False),
        (
            wrapped(SMTPConnectError("x"), socket.gaierror(-2, "Name or service not known")),
            "the MTA's host name does not resolve",
            False,
        ),
        (SMTPConnectTimeoutError("x"), "timed out", False),
        (wrapped(SMTPConnectError("x"), ConnectionResetError()), "connection lost", False),
        (SMTPServerDisconnected("Connection lost"), "connection lost", False),
        (ssl.SSLError(1, "EOF occurred in violation of protocol"), "TLS handshake failed", False),
        (SMTPConnectResponseError(421, "4.3.2 try later"), "the MTA is busy (421)", False),
        (
            SMTPAuthenticationError(454, "4.7.0 Temporary failure"),
            "authentication unavailable for now",
            False,
        ),
        # permanent
        (SMTPAuthenticationError(535, "5.7.8 bad credentials"), "authentication refused", True),
        (
            SMTPException("SMTP STARTTLS extension not supported by server."),
            "STARTTLS required but not offered by the MTA",
            True,
        ),
        (
            ssl.SSLCertVerificationError(1, "certificate verify failed"),
            "the MTA's certificate is not trusted",
            True,
        ),
        (
            SMTPConnectResponseError(554, "5.7.1 no service for you"),
            "the MTA refused us (554)",
            True,
        ),
    ],
)
def test_connection_failures_are_transient_or_permanent(
    error: BaseException, cause: str, permanent: bool
) -> None:
    failure = _connect_failure(CONFIG, error)
    assert (failure.cause, failure.permanent) == (cause, permanent)
    assert "pw" not in str(failure).replace("587", "")


@pytest.mark.parametrize(
    ("code", "cause", "permanent"),
    [
        (421, "the MTA is busy (421)", False),
        (451, "the MTA ended the session (451)", False),
        (503, "the MTA ended the session (503)", False),
        (530, "the MTA requires authentication", True),
        (550, "the MTA refused our sender (550)", True),
        (553, "the MTA refused our sender (553)", True),
    ],
)
def test_replies_that_end_a_session_are_transient_or_permanent(
    code: int, cause: str, permanent: bool
) -> None:
    failure = _session_reply(CONFIG, "refused the sender", SMTPResponseException(code, "text"))
    assert (failure.cause, failure.permanent) == (cause, permanent)


def test_a_connection_lost_mid_transaction_is_transient() -> None:
    assert _lost(CONFIG, SMTPServerDisconnected("gone")).permanent is False
    assert _lost(CONFIG, TimeoutError()).cause == "timed out"


def test_the_settings_have_sensible_defaults() -> None:
    from server.settings import Settings

    settings = Settings(_env_file=None)
    assert settings.relay_backoff_initial_seconds == 1.0
    assert settings.relay_backoff_max_seconds == 30.0
    assert settings.relay_record_interval_seconds == 0.1


def test_an_unknown_simulator_setting_is_refused_at_start_up() -> None:
    settings = Settings(_env_file=None, mta_url="simulator://?delay=0&bounce=0.5")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="bounce"):
        create_app(settings)


@pytest.mark.parametrize(
    "query", ["delivered=-1", "delivered=0&hard=0&soft=0", "retry_success=2", "time_scale=0"]
)
def test_impossible_simulator_settings_are_refused_at_start_up(query: str) -> None:
    settings = Settings(_env_file=None, mta_url=f"simulator://?{query}")  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        create_app(settings)


def test_the_retry_plan_is_five_hourly_retries_then_one_a_day_within_the_validity_period() -> None:
    assert retry_offsets(3.5 * DAY) == [HOUR, 2 * HOUR, 3 * HOUR, 4 * HOUR, 5 * HOUR,
                                        DAY, 2 * DAY, 3 * DAY]  # fmt: skip
    assert retry_offsets(2.5 * HOUR) == [HOUR, 2 * HOUR]


# ---- VERP addresses: no server ----------------------------------------------------------------


def test_verp_addresses_name_their_log_and_cannot_be_forged() -> None:
    address = verp_address("k", DOMAIN, 12345)
    local, _, host = address.partition("@")
    assert host == DOMAIN and local.startswith("bounces+12345-") and len(local) <= 40
    assert read_verp_address("k", DOMAIN, address) == 12345
    assert read_verp_address("k", DOMAIN, f"<{address.upper()}>") == 12345  # any case
    assert read_verp_address("k", DOMAIN + ".", address) == 12345
    forged = [
        address.replace("12345", "12346"),  # another log, same signature
        verp_address("another key", DOMAIN, 12345),
        verp_address("k", "elsewhere.test", 12345),
        address[: -len(DOMAIN) - 2] + "@" + DOMAIN,  # signature cut short
        f"bounces+99999999999-{'a' * 16}@{DOMAIN}",  # beyond a log id
        f"postmaster@{DOMAIN}",
        "",
        "@",
    ]
    assert [read_verp_address("k", DOMAIN, a) for a in forged] == [None] * len(forged)


def test_inbound_smtp_needs_a_bounce_domain() -> None:
    settings = Settings(_env_file=None, inbound_smtp="127.0.0.1:2525")
    with pytest.raises(ValueError, match="BOUNCE_DOMAIN"):
        InboundListener(settings, None)  # type: ignore[arg-type]


def test_a_dot_atom_address_is_what_aiosmtplib_would_put_on_the_command_line() -> None:
    """MAIL FROM and RCPT TO skip aiosmtplib's address parser for an address that matches
    DOT_ATOM_ADDRESS (server/mta/smtp.py): only because that parser gives it back unchanged."""
    rng = random.Random(5)
    atom = string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-"
    label = string.ascii_letters + string.digits + "-"

    def word(alphabet: str) -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))

    addresses = ["u1@example.com", "d7.42@example.com", "b.123.abc@bounces.example.org", "a@b"]
    for _ in range(2000):
        local = ".".join(word(atom) for _ in range(rng.randint(1, 3)))
        domain = ".".join(word(label) for _ in range(rng.randint(1, 3)))
        addresses.append(f"{local}@{domain}")
    for address in addresses:
        assert DOT_ATOM_ADDRESS.match(address), address
        assert quote_address(address) == f"<{address}>", address
    others = [
        '"a b"@example.com',
        "a..b@example.com",
        ".a@example.com",
        "a@[127.0.0.1]",
        "a@",
        "A <a@example.com>",
        "a@example.com (me)",
        "a@b\r\nRSET",
        "é@example.com",
        "a@b.",
    ]
    for other in others:
        assert not DOT_ATOM_ADDRESS.match(other), other
