"""The Deployment block shows a delivery's waves (issue 17, section 4), in a real Chromium: the
current wave, when the next starts and how many messages wait; the clock moves
(models/clock.py), the live progress follows."""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from models import clock
from tests.support import flows
from tests.support.browser import Dashboard
from tests.support.server import RunningServer, api_for


@pytest.fixture(autouse=True)
def moved_clock() -> Iterator[None]:
    clock.reset()
    yield
    clock.reset()


async def test_the_deployment_block_shows_the_current_wave_and_the_next(
    page: Any, server: RunningServer
) -> None:
    async for api in api_for(server):
        ready = await flows.prepared_delivery(
            api,
            flows.addresses(3, "user"),
            label="Warm-up",
            waves={"firstSize": 1, "size": 1, "intervalMinutes": 30},
        )
        board = Dashboard(page, server)
        await board.open()
        await board.sign_in(api.tokens["admin"])
        await board.open_delivery(ready["id"], "Warm-up")
        await board.wait_text("send-time", "Sent in 3 waves of 1 every 30 min")

        await board.confirm_send()
        await board.wait_text("send-time", "Wave 1 of 3 under way")
        text = await board.text("send-time")
        assert "The next wave starts at" in text and "2 message(s) wait for their time" in text
        await board.wait_text("progress-text", "1 / 3")

        clock.advance(timedelta(minutes=31))
        await board.wait_text("send-time", "Wave 2 of 3 under way")
        await board.wait_text("progress-text", "2 / 3")
        clock.advance(timedelta(minutes=31))
        await board.wait_text("dep-status", "SENT")
        await board.wait_text("send-time", "Wave 3 of 3 under way")
        assert "next wave" not in await board.text("send-time")
        assert board.problems() == []
