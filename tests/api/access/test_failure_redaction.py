"""Issue 11, finding 7: the MTA's own words are for administrators.

A failure message may quote the MTA's reply (with a recipient's address), the relay's host and
port. `Delivery.failureMessage` and the `reason` in audit details read in full for
administrators and as a plain reason for everyone else, whichever code path wrote them
(models/redaction.py decides when the text is read).
"""

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from models.delivery import utcnow
from models.lifecycle import fail_delivery
from models.redaction import plain_failure, public_detail
from server.bus import DELIVERY_TOPIC
from tests.support import flows
from tests.support.client import Api
from tests.support.server import RunningServer, api_for
from tests.support.smtp import people, relaying, send
from tests.support.smtp_sink import SmtpSink, self_signed

MTA_TEXT = (
    "the MTA failed 5 times in a row; last error: SMTP 10.1.2.3:2525: the MTA ended the"
    " session: 421 4.7.0 <jane.doe@example.com> internal note: relay-7 overloaded"
)
SECRETS = ("jane", "10.1.2.3", "2525", "4.7.0", "internal note", "relay-7")
PLAIN = "the MTA ended the connection (administrators can read the details)"
READ = (
    "query($id: ID!) { delivery(id: $id) { status failureMessage"
    " auditTrail { edges { node { action detail } } } } }"
)


@pytest.fixture
async def running(make_server: Callable[..., Any]) -> RunningServer:
    return await make_server(engine_enabled=False)  # type: ignore[no-any-return]


@pytest.fixture
async def api(running: RunningServer) -> AsyncIterator[Api]:
    async for client in api_for(running):
        yield client


def failed_event(delivery: dict[str, Any]) -> dict[str, Any]:
    (detail,) = [
        e["node"]["detail"]
        for e in delivery["auditTrail"]["edges"]
        if e["node"]["action"] == "FAILED"
    ]
    return detail  # type: ignore[no-any-return]


async def test_finding_7_a_failure_quoting_the_mta_reads_plain_for_non_administrators(
    api: Api, running: RunningServer
) -> None:
    ids = await flows.import_profiles(api, ["jane.doe@example.com", "b@example.com"])
    delivery_id = (await flows.create_delivery(api, ids))["id"]
    await flows.prepare(api, delivery_id)
    await flows.confirm(api, delivery_id)
    progress = (
        "subscription($id: ID!) { deploymentProgress(deliveryId: $id)"
        " { status delivery { failureMessage } } }"
    )
    async with api.subscribe(progress, {"id": delivery_id}, as_="reader") as live:
        assert (await live.next())["data"]["deploymentProgress"]["status"] == "IN_PROGRESS"
        # Written the way the engine writes it, whatever the engine's call site.
        assert await fail_delivery(int(delivery_id), MTA_TEXT, utcnow())
        await running.runtime.bus.publish(DELIVERY_TOPIC, {"id": int(delivery_id)})
        final = await live.until(lambda d: d["deploymentProgress"]["status"] == "FAILED")
    assert final["deploymentProgress"]["delivery"]["failureMessage"] == PLAIN

    admin = (await api.gql(READ, {"id": delivery_id}))["delivery"]
    assert admin["failureMessage"] == MTA_TEXT
    assert failed_event(admin)["reason"] == MTA_TEXT
    for who in ("starter", "preparer", "approver", "reader"):
        seen = (await api.gql(READ, {"id": delivery_id}, as_=who))["delivery"]
        assert seen["failureMessage"] == PLAIN, who
        assert failed_event(seen) == {
            "from": "IN_PROGRESS",
            "to": "FAILED",
            "reason": PLAIN,
            "notRelayed": 2,
        }
        text = json.dumps(seen)
        assert not [s for s in SECRETS if s in text], (who, text)


async def test_finding_7_a_wrong_smtp_password_reads_plain_for_non_administrators(
    make_sink: Callable[..., SmtpSink],
    make_server: Callable[..., Any],
    tmp_path: Path,
) -> None:
    """The real path: the SMTP adapter's own message, with the relay's host and port."""
    sink = make_sink(tls=self_signed(tmp_path), credentials=("relay", "s3cret"))
    url = sink.url("relay", "wrong-pass-123", verify="false")
    async with relaying(make_server, url, max_relay_failures=2) as (api, _):
        done, _ = await send(api, people("a@example.com"), lambda d: d["status"] == "FAILED")
        host = url.split("@", 1)[1].split("?", 1)[0]  # 127.0.0.1:PORT
        assert host in done["failureMessage"]  # the administrator's view
        seen = (await api.gql(READ, {"id": done["id"]}, as_="starter"))["delivery"]
        assert seen["failureMessage"] == (
            "the MTA refused our credentials (administrators can read the details)"
        )
        assert failed_event(seen)["reason"] == seen["failureMessage"]
        assert host not in json.dumps(seen) and "535" not in json.dumps(seen)


@pytest.mark.parametrize(
    ("detail", "plain"),
    [
        ("SMTP mx:25: authentication as 'relay' failed: 535 5.7.8 bad", "refused our credentials"),
        ("SMTP mx:25: the MTA refused the sender <noreply@x.example>: 550 no", "the sender"),
        ("SMTP mx:25: cannot connect: [Errno 111] Connection refused", "refused the connection"),
        ("SMTP mx:25: cannot connect: timed out", "did not answer in time"),
        ("SMTP mx:25: cannot connect: [SSL: CERTIFICATE_VERIFY_FAILED] x", "secure connection"),
        ("SMTP mx:25: connection lost: Server disconnected", "ended the connection"),
        ("the validity period ended with 3 messages never relayed", "validity period ended"),
        ("something nobody foresaw: <jane@example.com>", "sending could not go on"),
    ],
)
def test_finding_7_plain_reasons_never_quote_the_detail(detail: str, plain: str) -> None:
    shown = plain_failure(detail)
    assert shown is not None and plain in shown
    assert shown.endswith("(administrators can read the details)")
    assert "mx" not in shown and "example.com" not in shown and "@" not in shown
    assert plain_failure(None) is None


def test_finding_7_non_administrators_read_counts_statuses_and_times_of_audit_details() -> None:
    detail = {
        "from": "IN_PROGRESS",
        "to": "FAILED",
        "reason": MTA_TEXT,
        "cancelled": 3,
        "final": True,
        "scheduledAt": "2025-01-01T09:00:00+00:00",
        "address": "jane.doe@example.com",  # an address action's, or any new string field
        "relay": "10.1.2.3:2525",
        "rejected": ["jane.doe@example.com"],
    }
    assert public_detail(detail) == {
        "from": "IN_PROGRESS",
        "to": "FAILED",
        "reason": PLAIN,
        "cancelled": 3,
        "final": True,
        "scheduledAt": "2025-01-01T09:00:00+00:00",
    }
