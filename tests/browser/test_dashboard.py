"""The live Deployment dashboard at `/` in a real Chromium, against the real server."""

from collections.abc import Callable
from typing import Any

import httpx

from server.http.dashboard import CSP
from tests.support import clock, flows
from tests.support.browser import Dashboard, screenshot, tid
from tests.support.client import Api
from tests.support.live import KPI_FIELDS, all_reported
from tests.support.server import RunningServer, api_for

# Reports come 0.3 s after relaying, 40 messages go in batches of 5: the bar moves visibly. Once
# every report is in, the test moves the clock past the validity period (tests/support/clock.py):
# the delivery ends (FINISHED), the figures, and the page, become final.
SIMULATOR = "simulator://?delay=0.3&seed=3&delivered=0.8&hard=0.1&soft=0.1&time_scale=100000"
HISTORY = "query($id: ID!) { delivery(id: $id) { kpiHistory { at } } }"
STATS = "mutation($id: ID!) { computeStats(deliveryId: $id) { " + " ".join(KPI_FIELDS) + " } }"
# Each figure's label and the KPI it shows, in the page's order.
LABELS = """() => [...document.querySelectorAll('dl.figures > div')].map(
    (d) => [d.querySelector('dt').textContent, d.querySelector('dd').dataset.testid.slice(4)])"""
EDIT_INPUT = {"channel": "EMAIL", "subject": "Hello", "body": flows.BODY}


async def test_the_page_is_served_with_a_strict_csp(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        page = await http.get("/")
        script = await http.get("/dashboard/app.js")
        escape = await http.get("/dashboard/..%2Fpyproject.toml")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert page.headers["content-security-policy"] == CSP
    assert "connect-src 'self' ws: wss:" in CSP and "'unsafe-inline'" not in CSP
    assert page.headers["cache-control"] == "no-cache"
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert escape.status_code == 404 and escape.json() == {"error": "not found: ../pyproject.toml"}


async def test_sign_in_refuses_a_bad_token_then_lists_deliveries(
    page: Any, server: RunningServer, api: Api
) -> None:
    first = await flows.prepared_delivery(api, flows.addresses(3, "user"))
    board = Dashboard(page, server)
    await board.open()
    await board.sign_in("not-a-token")
    await board.wait_text("signin-error", "This token was refused")
    await screenshot(page, "dashboard-signin")
    assert await page.is_hidden(tid("board"))

    await board.sign_in(api.tokens["admin"])
    await board.wait_text("deliveries-list", "Spring offer")
    assert await page.is_hidden(tid("signin"))
    assert "ADMINISTRATION" in await board.text("operator-roles")
    item = f'{tid("delivery-item")}[data-id="{first["id"]}"]'
    assert "READY" in str(await page.text_content(item))
    await board.open_delivery(first["id"], "Spring offer")
    await screenshot(page, "dashboard-deliveries")

    # 20 a page, newest first: "Load more" fetches the rest.
    for n in range(20):
        await flows.create_delivery(api, [], label=f"Draft {n}")
    await page.reload()  # the saved token signs in again
    await board.wait_text("deliveries-total", "(21)")
    assert len(await page.query_selector_all(tid("delivery-item"))) == 20
    await page.click(tid("deliveries-more"))
    await page.wait_for_selector(f'{tid("delivery-item")}[data-id="{first["id"]}"]')
    assert len(await page.query_selector_all(tid("delivery-item"))) == 21
    assert await page.is_hidden(tid("deliveries-more"))

    await page.click(tid("sign-out"))
    await page.wait_for_selector(tid("signin-form"))
    assert await page.evaluate("sessionStorage.length") == 0
    assert board.problems() == []


async def test_confirm_send_and_watch_the_deployment_reach_its_final_figures_live(
    page: Any, make_server: Callable[..., Any]
) -> None:
    running = await make_server(mta_url=SIMULATOR, batch_size=5, engine_tick_seconds=0.05)
    async for api in api_for(running):
        ready = await flows.prepared_delivery(
            api,
            flows.addresses(40, "user"),
            label="Live spring offer",
            validityPeriod=clock.VALIDITY,
        )
        board = Dashboard(page, running)
        await board.open()
        await board.sign_in(api.tokens["admin"])
        await board.open_delivery(ready["id"], "Live spring offer")
        assert await page.get_attribute(tid("progress-text"), "data-processed") == "0"
        assert await board.value("kpi-toSend") == "40"

        await board.confirm_send()
        await flows.wait_for(api, ready["id"], lambda d: d["status"] == "SENT")
        await all_reported(ready["id"], 40)
        await clock.past_validity(api, ready["id"])
        # Live, without reloading: the subscription pushes until the delivery is FINISHED.
        await board.wait_text("dep-status", "FINISHED")
        await board.wait_text("live-state", "final figures")
        final = await flows.delivery(api, ready["id"])
        assert final["status"] == "FINISHED" and final["kpis"]["processed"] == 40
        assert await board.text("progress-text") == "40 / 40"
        shown = await board.figures()
        for key in KPI_FIELDS:
            assert shown[key] == final["kpis"][key], key
        assert 0 < shown["deliveredRate"] < 100 and shown["bouncesAndErrorsRate"] > 0
        # The figures read as the seed's Deployment block: Sent is what was handed to the MTA
        # (processed); the logs' delivered / pending / failed counts are in the small print.
        assert await page.evaluate(LABELS) == [
            ["To send", "toSend"], ["Sent", "processed"], ["Delivered", "deliveredRate"],
            ["Bounces + errors", "bouncesAndErrorsRate"], ["Open rate", "openRate"],
            ["CTR", "clickThroughRate"],
        ]  # fmt: skip
        counts = await board.text("kpi-counts")
        assert f"delivered {final['kpis']['sent']} ·" in " ".join(counts.split())
        points = int(str(await page.get_attribute(tid("chart-svg"), "data-points")))
        assert points >= 2  # the first snapshot and at least one pushed after the confirmation

        # A page opened after the send draws it whole, from the delivery's kpiHistory.
        history = (await api.gql(HISTORY, {"id": ready["id"]}))["delivery"]["kpiHistory"]
        assert len(history) >= 2
        await page.reload()
        await board.open_delivery(ready["id"], "Live spring offer")
        await page.wait_for_function(
            "n => Number(document.querySelector('[data-testid=chart-svg]').dataset.points) >= n",
            arg=len(history) + 1,  # the history, the figures read on opening (and a snapshot)
        )  # without the history: 2 at most, which a history of 2 or more points exceeds
        await screenshot(page, "dashboard-deployment")

        await page.click(tid("compute-stats"))
        await board.wait_text("action-info", "Stats computed")
        stats = (await api.gql(STATS, {"id": ready["id"]}))["computeStats"]
        assert await board.figures() == {k: float(stats[k]) for k in KPI_FIELDS}
        assert await board.value("kpi-statsComputedAt") != ""

        # Sending logs: the status filter, then cursor pages over all 40.
        failed = await flows.logs(api, ready["id"], "FAILED")
        await page.select_option(tid("logs-filter"), "FAILED")
        await page.wait_for_function(
            "n => document.querySelector('[data-testid=logs-total]').dataset.total == n",
            arg=str(len(failed)),
        )
        assert set(await board.log_statuses()) == {"FAILED"}
        await page.select_option(tid("logs-filter"), "")
        await page.wait_for_function(
            "() => document.querySelector('[data-testid=logs-total]').dataset.total == '40'"
        )
        first_page = await page.inner_text(tid("logs-body"))
        await page.click(tid("logs-next"))
        await board.wait_page(2)
        assert (await board.text("logs-page")).endswith("of 40")
        second_page = await page.inner_text(tid("logs-body"))
        assert len(await board.log_statuses()) == 10 and first_page != second_page
        await page.click(tid("logs-prev"))
        await board.wait_page(1)
        assert board.problems() == []


async def test_an_operator_without_the_role_sees_what_it_may_not_do_and_why(
    page: Any, server: RunningServer, api: Api
) -> None:
    ready = await flows.prepared_delivery(api, flows.addresses(3, "user"))
    board = Dashboard(page, server)
    await board.open()
    await board.sign_in(api.tokens["reader"])
    await board.open_delivery(ready["id"], "Spring offer")
    for button in ("pause", "resume", "stop", "send-proof"):  # shown only to roles that may
        assert await page.is_hidden(tid(button)), button
    # The delivery's allowedActions has neither CONFIRM nor COMPUTE_STATS for this operator:
    # the buttons are there, disabled, and say which role they need.
    for button in ("confirm-send", "compute-stats"):
        assert await page.is_disabled(tid(button)), button
        title = str(await page.get_attribute(tid(button), "title"))
        assert "START_DELIVERIES is needed" in title, title
    # Sending logs are for administrators: the table shows the server's refusal instead.
    await board.wait_text("logs-error", "FORBIDDEN")
    assert (await board.text("logs-error")).startswith("FORBIDDEN: ")
    await screenshot(page, "dashboard-forbidden")
    assert (await flows.delivery(api, ready["id"]))["status"] == "READY"
    assert board.problems() == []


async def test_the_page_reconnects_by_itself_when_the_server_comes_back(
    page: Any, make_server: Callable[..., Any]
) -> None:
    running = await make_server()
    async for api in api_for(running):
        ready = await flows.prepared_delivery(api, flows.addresses(3, "user"))
        board = Dashboard(page, running)
        await board.open()
        await board.sign_in(api.tokens["admin"])
        await board.open_delivery(ready["id"], "Spring offer")
        await board.wait_text("live-state", "live")
        assert await page.is_hidden(tid("conn-banner"))

        await running.stop()
        await board.wait_text("conn-banner", "Connection lost, reconnecting")
        await page.wait_for_function(  # at least one failed retry while the server is down
            "() => Number(document.querySelector('[data-testid=conn-banner]').dataset.attempt) >= 2"
        )

        again = RunningServer(running.settings)  # same database, same port
        again.port, again.base_url = running.port, running.base_url
        again.server.config.port = running.port
        await again.start()
        try:
            await page.wait_for_selector(tid("conn-banner"), state="hidden")
            await board.wait_text("live-state", "live")
            assert await board.text("dep-status") == "READY"
        finally:
            await again.stop()


async def test_finding_4_the_page_asks_to_sign_in_again_when_its_token_is_revoked(
    page: Any, server: RunningServer, api: Api
) -> None:
    ready = await flows.prepared_delivery(api, flows.addresses(3, "user"))
    created = await api.gql(
        'mutation { createOperator(name: "night shift", roles: [START_DELIVERIES])'
        " { token operator { id } } }"
    )
    token = created["createOperator"]["token"]
    board = Dashboard(page, server)
    await board.open()
    await board.sign_in(token)
    await board.open_delivery(ready["id"], "Spring offer")
    await board.wait_text("live-state", "live")

    await api.gql('mutation { revokeOperator(name: "night shift") { revokedAt } }')
    # The server closes the live socket (4403); the page says why and stops retrying.
    await board.wait_text("conn-banner", "this token is no longer valid")
    assert "revoked or replaced" in await board.text("conn-banner")
    assert await board.text("live-state") == "offline"
    await page.click(tid("signin-again"))
    await page.wait_for_selector(tid("signin-form"))
    await board.wait_text("signin-error", "Sign in again")
    assert await page.is_hidden(tid("board"))
    assert await page.evaluate("sessionStorage.length") == 0

    # A call over HTTP with the revoked token (a reload) also ends at the sign-in form.
    await page.evaluate(f"sessionStorage.setItem('dashboard.token', {token!r})")
    await page.reload()
    await board.wait_text("signin-error", "This token was refused")
    assert board.problems() == []


async def test_finding_8_the_page_confirms_only_the_version_it_showed(
    page: Any, server: RunningServer, api: Api
) -> None:
    ids = await flows.import_profiles(api, [f"v{i}@example.com" for i in range(3)])
    created = await flows.create_delivery(api, ids[:1], label="Versioned offer")
    await flows.prepare(api, created["id"])
    board = Dashboard(page, server)
    await board.open()
    await board.sign_in(api.tokens["admin"])
    await board.open_delivery(created["id"], "Versioned offer")
    # Cancel closes the dialog and calls nothing.
    await page.click(tid("confirm-send"))
    await page.click(tid("confirm-cancel"))
    await page.wait_for_selector(f"{tid('confirm-dialog')}:not([open])", state="attached")
    assert (await flows.delivery(api, created["id"]))["status"] == "READY"

    await page.click(tid("confirm-send"))
    await page.wait_for_selector(f"{tid('confirm-dialog')}[open]")
    assert await board.text("confirm-count") == "1"

    # While the dialog is open, someone widens the audience and prepares again.
    edit = {**EDIT_INPUT, "label": "Versioned offer", "audience": {"profileIds": ids}}
    await api.gql(
        "mutation($id: ID!, $i: CreateDeliveryInput!) { updateDelivery(id: $id, input: $i)"
        " { id } }",
        {"id": created["id"], "i": edit},
        as_="preparer",
    )
    await flows.prepare(api, created["id"])
    await page.click(tid("confirm-ok"))
    await board.wait_text("action-error", "changed since you reviewed it")
    assert (await board.text("action-error")).startswith("INVALID_STATE: ")
    assert (await flows.delivery(api, created["id"]))["status"] == "READY"

    # The page shows the delivery as it is now; confirming that is accepted.
    await page.wait_for_function(
        "() => document.querySelector('[data-testid=kpi-toSend]').dataset.value === '3'"
    )
    await board.confirm_send()
    await board.wait_text("action-info", "Send confirmed")
    assert (await flows.delivery(api, created["id"]))["status"] != "READY"
    assert board.problems() == []
