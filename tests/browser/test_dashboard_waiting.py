"""The dashboard's "waiting for the MTA" state (issue 12, section 1), in a real Chromium: the
SMTP relay refuses connections, the page says since when it waits and when the engine tries
again, and the state goes away by itself once the relay answers and the send completes."""

import contextlib
from collections.abc import Callable
from typing import Any

from tests.support import flows
from tests.support.browser import Dashboard, tid
from tests.support.server import api_for
from tests.support.smtp_sink import SmtpSink


async def test_the_page_says_it_waits_for_the_mta_and_clears_when_the_relay_returns(
    page: Any, make_server: Callable[..., Any]
) -> None:
    sink = SmtpSink()  # the relay's port, with nothing listening on it yet
    running = await make_server(
        mta_url=sink.url(),
        relay_backoff_initial_seconds=2,  # slow enough to read a countdown
        relay_backoff_max_seconds=4,
    )
    async for api in api_for(running):
        ready = await flows.prepared_delivery(
            api, flows.addresses(3, "user"), label="Waiting offer"
        )
        board = Dashboard(page, running)
        await board.open()
        await board.sign_in(api.tokens["admin"])
        await board.open_delivery(ready["id"], "Waiting offer")
        assert await page.is_hidden(tid("waiting"))

        await board.confirm_send()
        await board.wait_text("waiting", "Waiting for the MTA since")
        text = await board.text("waiting")
        assert "retrying in" in text or "retrying now" in text, text
        assert "connection refused" in text, text
        assert await page.get_attribute(tid("waiting"), "data-reason") == "MTA_UNAVAILABLE"
        assert await board.text("dep-status") == "IN_PROGRESS"
        # The countdown moves without a new snapshot.
        await page.wait_for_function(
            "([sel, before]) => document.querySelector(sel).textContent !== before",
            arg=[tid("waiting"), text],
        )

        with contextlib.ExitStack() as stack:
            stack.enter_context(sink)  # the relay comes up
            await board.wait_text("dep-status", "SENT")
            await page.wait_for_selector(tid("waiting"), state="hidden")
            await sink.wait_for(3)
        assert (await flows.delivery(api, ready["id"]))["kpis"]["processed"] == 3
        assert await board.text("progress-text") == "3 / 3"
        assert board.problems() == []
