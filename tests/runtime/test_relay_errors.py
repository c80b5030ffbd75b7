"""Issue 12, section 1: transient versus permanent MTA errors.

A relay that is down, busy (421) or unreachable never fails a delivery: the engine backs off,
the delivery says what it waits for (`waitingFor`, live in `deploymentProgress`), the audit
records the outage once and the recovery, and the send goes on by itself when the relay
answers, each message once. Only a permanent error (credentials, STARTTLS, the sender, the
configuration) fails it; a FAILED delivery can be resumed while its validity period runs, and
one whose period ends with messages never relayed fails them for good (NOT_RELAYED), counted
in `processed` and `failed`. End to end against the real server and a real SMTP server
(tests/support/smtp_sink.py) started late, or a bare socket that answers 421; the classification of
SMTP failures is also tested alone.
"""

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.support import clock, flows
from tests.support.client import Api
from tests.support.server import RunningServer, api_for, free_port
from tests.support.smtp_sink import SmtpSink

FAST = {"relay_backoff_initial_seconds": 0.1, "relay_backoff_max_seconds": 0.4}
WAITING = (
    "query($id: ID!) { delivery(id: $id) { status failureMessage"
    " waitingFor { reason since retryAt attempts cause }"
    " kpis { toSend processed sent pending failed deliveredRate bouncesAndErrorsRate } } }"
)
PROGRESS = (
    "subscription($id: ID!) { deploymentProgress(deliveryId: $id) {"
    " status waitingFor { reason since retryAt attempts cause } kpis { processed } } }"
)
RESUME = "mutation($id: ID!) { resumeDelivery(id: $id) { status failureMessage } }"


async def state(api: Api, delivery_id: str) -> dict[str, Any]:
    return (await api.gql(WAITING, {"id": delivery_id}))["delivery"]  # type: ignore[no-any-return]


async def until(
    api: Api, delivery_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = 20
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while not done(current := await state(api, delivery_id)):
        assert asyncio.get_running_loop().time() < deadline, f"timed out; last {current}"
        await asyncio.sleep(0.05)
    return current


@contextlib.asynccontextmanager
async def answering(port: int, greeting: bytes) -> AsyncIterator[list[int]]:
    """A bare TCP server that greets each connection with `greeting` and hangs up: an MTA that
    answers `421 … try again later`. Yields the list of connections it took."""
    seen: list[int] = []

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(1)
        writer.write(greeting)
        with contextlib.suppress(OSError):
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", port)
    try:
        yield seen
    finally:
        server.close()
        await server.wait_closed()


async def running(make_server: Callable[..., Any], url: str, **settings: Any) -> RunningServer:
    return await make_server(mta_url=url, **{**FAST, **settings})  # type: ignore[no-any-return]


# ---- transient: the delivery waits, says so, and goes on by itself ------------------------------


@pytest.mark.parametrize("fault", ["connection refused", "421"])
async def test_a_relay_that_is_down_makes_the_delivery_wait_and_it_goes_on_by_itself(
    fault: str, make_server: Callable[..., Any]
) -> None:
    n = 30
    sink = SmtpSink()  # its port is chosen; it starts only once the outage is over
    server = await running(make_server, sink.url(pool=2))
    async for api in api_for(server):
        async with contextlib.AsyncExitStack() as stack:
            if fault == "421":
                greeting = b"421 4.3.2 Service not available, try again later\r\n"
                connections = await stack.enter_async_context(answering(sink.port, greeting))
            delivery_id = await flows.started_delivery(api, flows.addresses(n, "w"))
            async with api.subscribe(PROGRESS, {"id": delivery_id}) as live:
                waiting = await until(
                    api, delivery_id, lambda d: (d["waitingFor"] or {}).get("attempts", 0) >= 3
                )
                assert waiting["status"] == "IN_PROGRESS" and waiting["failureMessage"] is None
                wait = waiting["waitingFor"]
                assert wait["reason"] == "MTA_UNAVAILABLE"
                cause = "connection refused" if fault != "421" else "the MTA is busy (421)"
                assert wait["cause"] == cause
                assert wait["since"] < wait["retryAt"]
                assert waiting["kpis"]["processed"] == 0
                # Live progress says so too.
                seen = await live.until(
                    lambda data: data["deploymentProgress"]["waitingFor"] is not None
                )
                assert seen["deploymentProgress"]["status"] == "IN_PROGRESS"
                if fault == "421":
                    assert len(connections) >= 3
                    await stack.aclose()  # the 421 server goes away ...
                with sink:  # ... and the relay comes (back) up
                    await flows.wait_for(api, delivery_id, lambda d: d["status"] == "SENT")
                    received = await sink.wait_for(n)
                    last = await live.until(
                        lambda data: data["deploymentProgress"]["status"] == "SENT"
                    )
        assert last["deploymentProgress"]["waitingFor"] is None
        counts = Counter(r.message_id for r in received)
        assert len(counts) == n and set(counts.values()) == {1}  # each message once
        done = await state(api, delivery_id)
        assert done["waitingFor"] is None
        assert done["kpis"]["processed"] == done["kpis"]["sent"] == n
        # The audit records the outage once (not per retry) and the recovery.
        events = await flows.audit_trail(api, delivery_id)
        names = [e["action"] for e in events]
        assert names.count("WAITING_FOR_MTA") == 1 and names.count("MTA_RECOVERED") == 1
        assert names.index("WAITING_FOR_MTA") < names.index("MTA_RECOVERED") < names.index("SENT")
        assert "FAILED" not in names
        outage = events[names.index("WAITING_FOR_MTA")]
        recovery = events[names.index("MTA_RECOVERED")]
        assert outage["actor"] == "ENGINE" and outage["detail"]["cause"] == cause
        assert recovery["detail"]["attempts"] >= 3 and recovery["detail"]["waitedSeconds"] > 0


# ---- permanent: the delivery fails, keeps what it did not relay, and can be resumed -------------


async def test_starttls_required_but_not_offered_fails_the_delivery_and_a_resume_continues_it(
    make_server: Callable[..., Any],
) -> None:
    n = 12
    with SmtpSink() as sink:  # no STARTTLS
        # A user makes STARTTLS required: a relay that does not offer it is a configuration
        # error, not an outage.
        url = sink.url("relay", "s3cret")
        first = await running(make_server, url, max_relay_failures=2)
        async for api in api_for(first):
            delivery_id = await flows.started_delivery(api, flows.addresses(n, "w"))
            failed = await until(api, delivery_id, lambda d: d["status"] == "FAILED")
            assert "STARTTLS" in failed["failureMessage"], failed
            assert failed["waitingFor"] is None and sink.messages() == []
            logs = await flows.logs(api, delivery_id)
            assert {x["status"] for x in logs} == {"TO_SEND"}  # kept, to be resumed
            (event,) = [
                e for e in await flows.audit_trail(api, delivery_id) if e["action"] == "FAILED"
            ]
            assert event["detail"]["notRelayed"] == n
            # Only an operator who may start deliveries may resume one.
            error = await api.error(RESUME, {"id": delivery_id}, as_="preparer")
            assert error["extensions"]["code"] == "FORBIDDEN"
            tokens = dict(api.tokens)
        await first.stop()

        # The operator fixes the cause (here: the relay's URL) and resumes.
        second = await running(make_server, sink.url())
        async for api in api_for(second):
            api.tokens.update(tokens)
            resumed = await api.gql(RESUME, {"id": delivery_id}, as_="starter")
            assert resumed["resumeDelivery"] == {"status": "IN_PROGRESS", "failureMessage": None}
            done = await flows.wait_for(api, delivery_id, lambda d: d["status"] == "SENT")
            counts = Counter(r.message_id for r in await sink.wait_for(n))
            assert len(counts) == n and set(counts.values()) == {1}
            assert done["kpis"]["processed"] == done["kpis"]["sent"] == n
            names = [e["action"] for e in await flows.audit_trail(api, delivery_id)]
            assert names[-3:] == ["FAILED", "RESUMED", "SENT"]
            (resumed_event,) = [
                e for e in await flows.audit_trail(api, delivery_id) if e["action"] == "RESUMED"
            ]
            assert resumed_event["detail"]["from"] == "FAILED"


# ---- the end of the validity period with messages never relayed -------------------------------


@pytest.mark.parametrize("paused", [False, True])
async def test_messages_never_relayed_by_the_end_of_the_validity_period_fail_for_good(
    paused: bool, make_server: Callable[..., Any]
) -> None:
    n = 5
    nowhere = f"smtp://127.0.0.1:{free_port()}"  # nothing listens: the relay stays down
    server = await running(make_server, nowhere)
    async for api in api_for(server):
        delivery_id = await flows.started_delivery(
            api, flows.addresses(n, "w"), validityPeriod=clock.VALIDITY, feedbackMode="EFS"
        )
        await until(api, delivery_id, lambda d: d["waitingFor"] is not None)
        if paused:
            await api.gql(
                "mutation($id: ID!) { pauseDelivery(id: $id) { status } }",
                {"id": delivery_id},
                as_="starter",
            )
            assert (await state(api, delivery_id))["waitingFor"] is None  # paused, not waiting
        await clock.past_validity(api, delivery_id)  # still down when the period ends
        done = await until(api, delivery_id, lambda d: d["status"] == "FAILED")
        assert "validity period ended with 5 message(s) never relayed" in done["failureMessage"]
        assert ("paused" in done["failureMessage"]) is paused
        assert done["waitingFor"] is None
        logs = await flows.logs(api, delivery_id)
        assert {(x["status"], x["failureType"], x["failureReason"]) for x in logs} == {
            ("FAILED", "SOFT", "NOT_RELAYED")
        }
        # Counted in processed and failed: the progress reaches its end, no rate passes 100 %.
        kpis = done["kpis"]
        assert kpis["toSend"] == kpis["processed"] == kpis["failed"] == n
        assert kpis["sent"] == kpis["pending"] == 0
        assert kpis["bouncesAndErrorsRate"] == 100.0 and kpis["deliveredRate"] == 0.0
        recount = await api.gql(
            "mutation($d: ID!) { computeStats(deliveryId: $d) { processed failed } }",
            {"d": delivery_id},
            as_="starter",
        )
        assert recount["computeStats"] == {"processed": n, "failed": n}
        (event,) = [e for e in await flows.audit_trail(api, delivery_id) if e["action"] == "FAILED"]
        assert event["detail"]["notRelayed"] == n and event["actor"] == "ENGINE"
        # Too late to resume: the INVALID_STATE says why, and nothing changes.
        error = await api.error(RESUME, {"id": delivery_id}, as_="starter")
        assert error["extensions"]["code"] == "INVALID_STATE"
        assert "validity period ended" in error["message"]
        assert (await state(api, delivery_id))["status"] == "FAILED"


async def test_resume_refuses_statuses_it_cannot_resume(api: Api) -> None:
    ids = await flows.import_profiles(api, ["r@example.com"])
    created = await flows.create_delivery(api, ids)
    error = await api.error(RESUME, {"id": created["id"]}, as_="starter")
    assert error["extensions"]["code"] == "INVALID_STATE"
    assert "allowed from: FAILED, PAUSED" in error["message"]
