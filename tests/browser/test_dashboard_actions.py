"""Pause, Resume and Stop in the dashboard (issue 14, section 3), in a real Chromium: each asks
in the page before it calls the API, is shown only to a role that may use it, and is enabled
only in the statuses it starts from.

The SMTP relay is down (nothing listens on its port) with a long back-off: the confirmed
delivery stays IN_PROGRESS, waiting for the MTA, for as long as the test needs, without timing.
"""

from collections.abc import Callable
from typing import Any

from tests.support import flows
from tests.support.browser import Dashboard, screenshot, tid
from tests.support.server import api_for
from tests.support.smtp_sink import SmtpSink

LIFECYCLE_BUTTONS = ("pause", "resume", "stop")


async def enabled(page: Any) -> set[str]:
    return {b for b in LIFECYCLE_BUTTONS if await page.is_enabled(tid(b))}


async def answer(board: Dashboard, button: str, ok: bool) -> str:
    """Press a lifecycle button, read the page's question, then OK or Cancel."""
    page = board.page
    await page.click(tid(button))
    await page.wait_for_selector(f"{tid('action-dialog')}[open]")
    question = await board.text("action-question")
    await page.click(tid("action-ok" if ok else "action-cancel"))
    await page.wait_for_selector(f"{tid('action-dialog')}:not([open])", state="attached")
    return question


async def test_pause_resume_and_stop_each_ask_first_and_follow_the_status(
    page: Any, make_server: Callable[..., Any]
) -> None:
    sink = SmtpSink()  # never entered: the relay refuses connections for the whole test
    running = await make_server(
        mta_url=sink.url(), relay_backoff_initial_seconds=60, relay_backoff_max_seconds=60
    )
    async for api in api_for(running):
        ready = await flows.prepared_delivery(api, flows.addresses(3, "held"), label="Held offer")
        board = Dashboard(page, running)
        await board.open()

        # Without START_DELIVERIES the buttons are not there at all.
        await board.sign_in(api.tokens["preparer"])
        await board.open_delivery(ready["id"], "Held offer")
        for button in LIFECYCLE_BUTTONS:
            assert await page.is_hidden(tid(button)), button
        await page.click(tid("sign-out"))

        await board.sign_in(api.tokens["starter"])
        await board.open_delivery(ready["id"], "Held offer")
        for button in LIFECYCLE_BUTTONS:  # the page just opened still shows the last one's label
            await page.wait_for_selector(tid(button), state="visible")
        assert await enabled(page) == set()  # READY: nothing to pause, resume or stop yet

        await board.confirm_send()
        await board.wait_text("dep-status", "IN_PROGRESS")
        await board.wait_text("waiting", "Waiting for the MTA")
        assert await enabled(page) == {"pause", "stop"}

        # Cancel calls nothing.
        question = await answer(board, "pause", ok=False)
        assert '"Held offer"' in question and "wait until you resume" in question
        assert (await flows.delivery(api, ready["id"]))["status"] == "IN_PROGRESS"

        await answer(board, "pause", ok=True)
        await board.wait_text("dep-status", "PAUSED")
        await board.wait_text("action-info", "Paused at")
        assert (await flows.delivery(api, ready["id"]))["status"] == "PAUSED"
        assert await enabled(page) == {"resume", "stop"}
        await board.wait_text("live-state", "live")  # a pause does not end the subscription
        await page.click(tid("stop"))  # the question, for the screenshot; then Cancel
        await page.wait_for_selector(f"{tid('action-dialog')}[open]")
        await screenshot(page, "dashboard-stop")
        await page.click(tid("action-cancel"))
        await page.wait_for_selector(f"{tid('action-dialog')}:not([open])", state="attached")

        await answer(board, "resume", ok=True)
        await board.wait_text("dep-status", "IN_PROGRESS")
        await board.wait_text("action-info", "Resumed at")
        assert (await flows.delivery(api, ready["id"]))["status"] == "IN_PROGRESS"

        question = await answer(board, "stop", ok=True)
        assert "cannot be resumed" in question
        await board.wait_text("dep-status", "STOPPED")
        await board.wait_text("live-state", "final figures")
        stopped = await flows.delivery(api, ready["id"])
        assert stopped["status"] == "STOPPED"
        assert await enabled(page) == set()
        assert await board.value("kpi-processed") == str(stopped["kpis"]["processed"])
        assert board.problems() == []
