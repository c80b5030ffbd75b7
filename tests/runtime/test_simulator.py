"""The built-in MTA simulator (`MTA_URL=simulator://...`) makes a deployment move like a real
one: deliveries, hard bounces, soft bounces retried on the product's plan, all reported through
the same feedback path as the webhook."""

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

from tests.support import flows
from tests.support.server import client_of

SIMULATOR = (
    "simulator://?delay=0&seed=7&delivered=0.5&hard=0.25&soft=0.25&retry_success=1"
    "&time_scale=100000"
)
FIGURES = ["toSend", "processed", "sent", "pending", "failed", "deliveredRate",
           "bouncesAndErrorsRate", "opens", "clicks", "openRate", "clickThroughRate"]  # fmt: skip


def settled(d: dict[str, Any]) -> bool:
    k = d["kpis"]
    return d["status"] == "SENT" and k["pending"] == 0 and k["sent"] + k["failed"] == k["toSend"]


async def test_a_simulated_efs_send_ends_with_deliveries_hard_bounces_and_retried_soft_bounces(
    make_server: Callable[..., Any],
) -> None:
    running = await make_server(mta_url=SIMULATOR)
    n = 200
    async with client_of(running) as api:
        ids = await flows.import_profiles(api, [f"user{i}@example.com" for i in range(n)])
        created = await flows.create_delivery(api, ids, feedbackMode="EFS")
        await flows.prepare(api, created["id"])
        await flows.confirm(api, created["id"])
        await flows.wait_for(api, created["id"], settled)
        # A soft bounce counts as failed until its retry succeeds (retry_success=1): the send
        # is over only when no log is left waiting for a retry.
        logs = await flows.logs(api, created["id"])
        deadline = asyncio.get_running_loop().time() + 20
        while any(log["failureType"] == "SOFT" for log in logs):
            assert asyncio.get_running_loop().time() < deadline, "soft bounces never retried"
            await asyncio.sleep(0.05)
            logs = await flows.logs(api, created["id"])
        done = await flows.delivery(api, created["id"])
        recount = (
            await api.gql(
                f"mutation($id: ID!) {{ computeStats(deliveryId: $id) {{ {' '.join(FIGURES)} }} }}",
                {"id": created["id"]},
                as_="starter",
            )
        )["computeStats"]

    assert {name: done["kpis"][name] for name in FIGURES} == recount, (done["kpis"], recount)
    assert done["kpis"]["processed"] == n
    kinds = Counter((log["status"], log["failureType"], min(log["retries"], 1)) for log in logs)
    first_time = kinds[("SENT", None, 0)]
    hard = kinds[("FAILED", "HARD", 0)]
    retried = kinds[("SENT", None, 1)]
    assert first_time + hard + retried == n, kinds
    assert first_time > 0 and retried > 0
    assert 0.10 * n <= hard <= 0.40 * n, f"{hard} hard bounces of {n}"
    assert {log["failureReason"] for log in logs if log["status"] == "FAILED"} <= {
        "USER_UNKNOWN",
        "REFUSED",
    }
    assert done["kpis"]["sent"] == first_time + retried
    assert done["kpis"]["failed"] == hard
