"""Issue 11, finding 1: "A stop does not stop mail already claimed".

After `stopDelivery` (or `pauseDelivery`) commits, no message of the delivery may reach the MTA
but those already inside an SMTP transaction (at most one per pooled connection), and the
figures (log statuses, KPIs, the audit's `cancelled`) say exactly what the MTA got. The server
relays through a rate-limited pool to a real SMTP server in the test (tests/support/smtp_sink.py),
so
that a batch takes seconds and the stop lands in the middle of one; the SMTP server's own
count is the truth the figures are compared with.
"""

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import flows
from tests.support.client import Api
from tests.support.databases import PG_AVAILABLE, PG_URL
from tests.support.server import api_for
from tests.support.smtp import relaying
from tests.support.smtp_sink import CountingSink, Received, SmtpSink

N = 300
STOP = "mutation($id: ID!) { stopDelivery(id: $id) { status } }"
PAUSE = "mutation($id: ID!) { pauseDelivery(id: $id) { status } }"
RESUME = "mutation($id: ID!) { resumeDelivery(id: $id) { status } }"
RECOUNT = (
    "mutation($d: ID!) { computeStats(deliveryId: $d) { toSend processed sent pending failed } }"
)


async def settled(api: Api, delivery_id: str, relayed: Callable[[], int]) -> dict[str, Any]:
    """Poll until the delivery's `processed` equals what the SMTP server holds, twice in a row
    0.3 s apart (the batch in hand has been recorded, and nothing more arrives)."""
    deadline = asyncio.get_running_loop().time() + 20
    last: tuple[int, int] | None = None
    while True:
        kpis = (await flows.delivery(api, delivery_id))["kpis"]
        now = (kpis["processed"], relayed())
        if now[0] == now[1] and now == last:
            return kpis  # type: ignore[no-any-return]
        assert asyncio.get_running_loop().time() < deadline, f"not settled: {kpis}, {now}"
        last = now
        await asyncio.sleep(0.3)


def cancelled_per_audit(events: list[dict[str, Any]]) -> int:
    """The stop's `cancelled`, as corrected by RELAYED_AFTER_STOP when a message that was
    inside an SMTP transaction at the stop was accepted afterwards."""
    (stop,) = [e for e in events if e["action"] == "STOPPED"]
    after = [e for e in events if e["action"] == "RELAYED_AFTER_STOP"]
    return int(after[-1]["detail"]["cancelled"] if after else stop["detail"]["cancelled"])


async def check_figures_match_the_mta(
    api: Api, delivery_id: str, received: list[str], relayed_status: str, rest: tuple[Any, ...]
) -> dict[str, Any]:
    """Every message the SMTP server got is a relayed log, once; every other log is in `rest`
    (status, failure reason); the KPIs and a recount say the same."""
    counts = Counter(received)
    assert [m for m, n in counts.items() if n > 1] == []  # nothing relayed twice
    logs = [x for x in await flows.logs(api, delivery_id) if not x["excluded"]]
    relayed = {x["messageId"] for x in logs if x["status"] == relayed_status}
    assert relayed == set(counts)
    others = Counter(
        (x["status"], x["failureReason"]) for x in logs if x["messageId"] not in counts
    )
    assert set(others) <= {rest}, others
    assert len(relayed) + sum(others.values()) == N
    kpis = (await flows.delivery(api, delivery_id))["kpis"]
    assert kpis["toSend"] == N and kpis["processed"] == len(counts) and kpis["failed"] == 0
    assert kpis["sent" if relayed_status == "SENT" else "pending"] == len(counts)
    # SPEC §5: the rates are over what was relayed, not over toSend. LEGACY reads 100 % from
    # the first relayed message (a stopped or paused delivery too); EFS 0 % until reports come.
    delivered = 100.0 if relayed_status == "SENT" else 0.0
    assert (kpis["deliveredRate"], kpis["bouncesAndErrorsRate"]) == (delivered, 0.0)
    recount = await api.gql(RECOUNT, {"d": delivery_id}, as_="starter")
    assert recount["computeStats"] == {k: kpis[k] for k in recount["computeStats"]}
    return kpis  # type: ignore[no-any-return]


def ids(received: list[Received]) -> list[str]:
    return [r.message_id for r in received]


async def test_a_stop_means_stop_only_a_transaction_already_started_still_reaches_the_mta(
    sink: SmtpSink, make_server: Callable[..., Any]
) -> None:
    pool = 1
    # Batches of 100 at 20 messages a second: the stop lands inside a claimed batch, which the
    # engine used to relay whole (and then count as relayed the logs the stop had cancelled).
    async with relaying(make_server, sink.url(rate=20, pool=pool), batch_size=100) as (api, _):
        delivery_id = await flows.started_delivery(api, flows.addresses(N, "s"), feedbackMode="EFS")
        await sink.wait_for(40)  # the burst of 20, then about a second at 20/s
        answer = await api.gql(STOP, {"id": delivery_id}, as_="starter")
        at_stop = len(sink.messages())
        assert answer["stopDelivery"]["status"] == "STOPPED"
        await settled(api, delivery_id, lambda: len(sink.messages()))
        received = ids(sink.messages())
        assert len(received) - at_stop <= pool, (at_stop, len(received))
        assert len(received) < 100  # well inside the first claimed batch of 100
        await check_figures_match_the_mta(
            api, delivery_id, received, "PENDING", ("IGNORED", "CANCELLED")
        )
        assert cancelled_per_audit(await flows.audit_trail(api, delivery_id)) == N - len(received)
        print(f"\nstopped with {at_stop} at the SMTP server; {len(received)} in the end")


async def test_a_pause_holds_the_rest_and_resume_sends_each_message_once(
    sink: SmtpSink, make_server: Callable[..., Any]
) -> None:
    pool = 2
    async with relaying(make_server, sink.url(rate=50, pool=pool), batch_size=100) as (api, _):
        delivery_id = await flows.started_delivery(
            api, flows.addresses(N, "s")
        )  # LEGACY: relayed logs are SENT
        await sink.wait_for(80)
        answer = await api.gql(PAUSE, {"id": delivery_id}, as_="starter")
        at_pause = len(sink.messages())
        assert answer["pauseDelivery"]["status"] == "PAUSED"
        await settled(api, delivery_id, lambda: len(sink.messages()))
        received = ids(sink.messages())
        assert len(received) - at_pause <= pool, (at_pause, len(received))
        assert len(received) < N
        await check_figures_match_the_mta(api, delivery_id, received, "SENT", ("TO_SEND", None))
        # Nothing moves while paused.
        await asyncio.sleep(0.5)
        assert len(sink.messages()) == len(received)

        await api.gql(RESUME, {"id": delivery_id}, as_="starter")
        done = await flows.wait_for(api, delivery_id, lambda d: d["status"] == "SENT", 30)
        received = ids(await sink.wait_for(N))
        assert len(received) == N
        kpis = await check_figures_match_the_mta(api, delivery_id, received, "SENT", ("", None))
        assert kpis == done["kpis"]
        print(f"\npaused with {at_pause} at the SMTP server; all {N} once after the resume")


async def test_a_stop_with_the_capture_mta_relays_nothing_after_it_and_counts_what_it_did(
    make_server: Callable[..., Any],
) -> None:
    n = 3000
    running = await make_server(mta_url="capture://", batch_size=20)
    capture = running.runtime.mta
    async for api in api_for(running):
        ids_ = await flows.import_profiles(api, [f"c{i}@example.com" for i in range(n)])
        created = await flows.create_delivery(api, ids_)
        await flows.prepare(api, created["id"])
        await flows.confirm(api, created["id"])
        deadline = asyncio.get_running_loop().time() + 20
        while sum(capture.relayed.values()) < 200:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.005)
        await api.gql(STOP, {"id": created["id"]}, as_="starter")
        at_stop = sum(capture.relayed.values())
        kpis = await settled(api, created["id"], lambda: sum(capture.relayed.values()))
        assert kpis["processed"] < kpis["toSend"] and kpis["deliveredRate"] == 100.0
        assert sum(capture.relayed.values()) == at_stop  # the hand-over is one step per batch
        assert set(capture.relayed.values()) == {1}
        logs = [x for x in await flows.logs(api, created["id"]) if not x["excluded"]]
        relayed = {x["messageId"] for x in logs if x["status"] == "SENT"}
        assert relayed == set(capture.relayed)
        assert sum(1 for x in logs if x["failureReason"] == "CANCELLED") == n - len(relayed)
        assert cancelled_per_audit(await flows.audit_trail(api, created["id"])) == n - len(relayed)


@pytest.mark.postgres
@pytest.mark.skipif(not PG_AVAILABLE, reason=f"PostgreSQL not reachable at {PG_URL}")
async def test_a_stop_through_an_api_process_stops_the_workers_at_once(tmp_path: Path) -> None:
    """API process + two `python -m server worker` processes on PostgreSQL (its bus between
    them): the stop's event closes each worker's gate."""
    from tests.support.cluster import log_counts, processes

    workers, pool = 2, 1
    with CountingSink(tmp_path) as sink:
        env = {
            "MTA_URL": sink.url(pool=pool, rate=20),
            "PUBLIC_URL": "http://127.0.0.1:1",
            "BATCH_SIZE": "100",
            "FEEDBACK_MODE": "EFS",
        }
        async with processes(tmp_path, apis=1, **env) as ((api,), url, _):
            delivery_id = await flows.started_delivery(api, flows.addresses(N, "s"))
            await sink.wait_for(60)
            await api.gql(STOP, {"id": delivery_id}, as_="starter")
            at_stop = sink.received
            kpis = await settled(api, delivery_id, lambda: sink.received)
            counts = await log_counts(url, delivery_id)
            events = await flows.audit_trail(api, delivery_id)
    relayed = sink.received
    # Each worker may finish the transaction it had started; the event reaches the workers
    # over PostgreSQL within milliseconds (one more transaction may start meanwhile).
    assert relayed - at_stop <= workers * pool + 1, (at_stop, relayed)
    assert set(sink.ids.values()) == {1}
    assert counts == {"PENDING": relayed, "IGNORED": N - relayed}
    assert kpis["processed"] == kpis["pending"] == relayed
    assert cancelled_per_audit(events) == N - relayed
    print(f"\ntwo workers stopped with {at_stop} at the SMTP server; {relayed} in the end")
