"""A real single-page-app data stack against the server (issue 16, section 4): urql with its
normalised cache (@urql/exchange-graphcache) and the graphql-ws client, installed from the npm
registry with the lock file in tests/support/spa/, driven from node by tests/support/spa/spa.mjs.

It lists and filters deliveries, opens one, subscribes to its progress and confirms the send;
the screen's cached delivery must follow the subscription to FINISHED, its figures ending equal
to the API's, without the client sending the delivery's query again (docs/spa-client.md).
"""

import asyncio
import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import clock, flows, live
from tests.support.server import api_for

SPA = Path(__file__).resolve().parents[2] / "support" / "spa"
# Reports 0.3 s after relaying, 40 messages in batches of 5: several snapshots on the way; once
# every report is in, the test moves the clock past the validity period (tests/support/clock.py),
# which ends the delivery (FINISHED) and the subscription.
SIMULATOR = "simulator://?delay=0.3&seed=3&delivered=0.8&hard=0.1&soft=0.1&time_scale=100000"
NODE = shutil.which("node")
NPM = shutil.which("npm")
SCREEN_KPIS = [
    "toSend", "processed", "sent", "pending", "failed", "deliveredRate",
    "bouncesAndErrorsRate", "openRate", "clickThroughRate",
]  # fmt: skip

# What a START_DELIVERIES operator may do in each status the send goes through
# (models/actions.py): a screen enables exactly these buttons.
ACTIONS = {
    "READY": {"CONFIRM", "EDIT", "DELETE", "SEND_PROOF", "COMPUTE_STATS"},
    "IN_PROGRESS": {"PAUSE", "STOP", "COMPUTE_STATS"},
    "SENT": {"COMPUTE_STATS"},
    "FINISHED": {"COMPUTE_STATS"},
}
FINAL = (
    "query($id: ID!) { delivery(id: $id) { status version kpis { "
    + " ".join(SCREEN_KPIS)
    + " } } }"
)

pytestmark = pytest.mark.skipif(
    NODE is None or NPM is None, reason="node and npm are not installed: the SPA stack is npm's"
)


def installed() -> bool:
    return all((SPA / "node_modules" / name).is_dir() for name in ("@urql", "graphql-ws"))


@pytest.fixture(scope="session")
def spa_stack() -> Path:
    """tests/support/spa/node_modules, installed once with `npm ci` from the lock file when missing
    (a file lock keeps pytest-xdist's workers from installing it twice at once); skipped, saying
    why, when it cannot be installed (no registry)."""
    with open(SPA / "package-lock.json") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not installed():
            done = subprocess.run(
                [str(NPM), "ci", "--no-audit", "--no-fund", "--prefix", str(SPA)],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            if done.returncode != 0 or not installed():
                pytest.skip(
                    f"`npm ci --prefix tests/support/spa` failed: {done.stderr.strip()[-300:]}"
                )
    return SPA


async def run_spa(base_url: str, ws_url: str, token: str, label: str) -> dict[str, Any]:
    # The server runs in this event loop: the client must not block it.
    process = await asyncio.create_subprocess_exec(
        str(NODE),
        "--experimental-websocket",
        str(SPA / "spa.mjs"),
        env={
            **os.environ,
            "GRAPHQL_URL": base_url + "/graphql",
            "WS_URL": ws_url,
            "TOKEN": token,
            "LABEL": label,
            "NODE_NO_WARNINGS": "1",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    lines = out.decode().strip().splitlines()
    report: dict[str, Any] = json.loads(lines[-1]) if lines else {"error": "no report"}
    warnings = err.decode()
    assert process.returncode == 0 and "error" not in report, (report.get("error"), warnings)
    # graphcache warns (in development builds) about an object it cannot key, or a field
    # missing from a result it must normalise: the server gives it what it needs.
    assert "graphcache" not in warnings.lower() and "invalid key" not in warnings.lower(), warnings
    report["stderr"] = warnings
    return report


async def test_urql_graphcache_and_graphql_ws_follow_a_send_to_finished_without_a_refetch(
    spa_stack: Path, make_server: Callable[..., Any]
) -> None:
    running = await make_server(mta_url=SIMULATOR, batch_size=5, engine_tick_seconds=0.05)
    async for api in api_for(running):
        draft = await flows.create_delivery(api, [], label="Spring draft beside it")
        other = await flows.create_delivery(api, [], label="Autumn draft")
        ids = await flows.import_profiles(api, [f"spa{i}@example.com" for i in range(40)])
        created = await flows.create_delivery(
            api, ids, label="SPA spring offer", validityPeriod=clock.VALIDITY
        )
        ready = await flows.prepare(api, created["id"])
        spa = asyncio.create_task(
            run_spa(running.base_url, api.ws_url, api.tokens["starter"], "SPA spring offer")
        )
        # The client confirms the send; once sent and reported on, its validity period ends.
        sent = await flows.wait_for(
            api, ready["id"], lambda d, spa=spa: d["status"] == "SENT" or spa.done(), timeout=60
        )
        assert sent["status"] == "SENT", await spa
        await live.all_reported(ready["id"], 40)
        await clock.past_validity(api, ready["id"])
        report = await spa
        final = (await api.gql(FINAL, {"id": ready["id"]}))["delivery"]

    assert set(report["listed"]) == {draft["id"], other["id"], ready["id"]}
    # deliveries(statuses: [READY, DRAFT], search: "spring"), newest first
    assert report["filtered"] == [ready["id"], draft["id"]]
    assert report["opened"]["status"] == "READY" and report["opened"]["kpis"]["toSend"] == 40

    # The screen's delivery was pushed by the cache as the snapshots came: statuses in the
    # lifecycle's order, processed never going back, and FINISHED with every figure the API's.
    seen = report["seen"]
    statuses = [s["status"] for s in seen]
    assert statuses[0] == "READY" and statuses[-1] == "FINISHED"
    assert {"IN_PROGRESS", "SENT"} & set(statuses), statuses
    processed = [s["processed"] for s in seen]
    assert processed == sorted(processed) and processed[-1] == 40
    assert report["completed"] and report["progress"] >= 2
    # allowedActions came with each snapshot and followed the status: what a screen enables.
    for step in seen:
        assert set(step["allowedActions"]) == ACTIONS[step["status"]], step
    cached = report["final"]
    assert final["status"] == "FINISHED" and cached["status"] == "FINISHED"
    assert {k: cached["kpis"][k] for k in SCREEN_KPIS} == {k: final["kpis"][k] for k in SCREEN_KPIS}
    assert cached["version"] == final["version"]

    # Over HTTP (queries as GET, urql's default): the two lists, the delivery once, the
    # confirmation; nothing after it.
    assert report["requests"] == [
        "GET Deliveries", "GET Deliveries", "GET OpenDelivery", "POST Confirm",
    ]  # fmt: skip
