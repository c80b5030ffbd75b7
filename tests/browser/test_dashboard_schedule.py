"""The Deployment block shows when a delivery is sent (issue 17 §1-2): the contact date on its
zone's clock and in UTC, the recurrence's rule in words with its next occurrences, and the
aggregation period."""

from typing import Any

from tests.support import flows
from tests.support.browser import Dashboard
from tests.support.client import Api
from tests.support.server import RunningServer


async def test_the_deployment_block_shows_the_schedule_zone_and_aggregation_period(
    page: Any, server: RunningServer, api: Api
) -> None:
    ready = await flows.prepared_delivery(
        api,
        flows.addresses(2, "user"),
        label="Morning digest",
        scheduledAt="2027-06-01T09:00:00",
        timeZone="Europe/Madrid",
        recurrence={"rule": "FREQ=DAILY;BYHOUR=9;BYMINUTE=0", "aggregationPeriod": "WEEK"},
    )
    board = Dashboard(page, server)
    await board.open()
    await board.sign_in(api.tokens["admin"])
    await board.open_delivery(ready["id"], "Morning digest")
    await board.wait_text("schedule", "Recurrence: every day at 09:00 (Europe/Madrid)")
    text = await board.text("schedule")
    assert "Contact date 2027-06-01 09:00 (Europe/Madrid) · 2027-06-01 07:00 UTC" in text, text
    assert "one occurrence by week" in text, text
    assert "next 2027-06-01 07:00 UTC, 2027-06-02 07:00 UTC, 2027-06-03 07:00 UTC" in text, text
    assert board.problems() == []
