"""The server's clock (models/clock.py) moved forward by a test, instead of the test sleeping
through real time until a contact date or the end of a validity period: on a loaded machine a
delivery with a 1-second validity period could end before it was even sent, or a report arrive
after the end it was meant to precede. A moved clock comes exactly when the test says.

The server runs in the test's process and event loop (tests/support/server.py): the engine's
next tick reads the moved time. Leases (models/relay.py: now_ms) and the simulator's report
delays keep the real time, on purpose. The clock is reset when each test ends (the autouse
fixture in tests/conftest.py), and when a `moved` block ends.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from models import clock
from tests.support import flows
from tests.support.client import Api

# A validity period no test outlives in real time: the test ends it by moving the clock.
VALIDITY = 3600


@contextmanager
def moved(by: timedelta) -> Iterator[None]:
    """The clock moved forward by `by` inside the block, and reset after it."""
    clock.advance(by)
    try:
        yield
    finally:
        clock.reset()


def advance_past(moment: datetime) -> None:
    """Move the clock one second past `moment` (it stays there until the test ends)."""
    clock.advance(max(moment - clock.utcnow(), timedelta(0)) + timedelta(seconds=1))


async def past_validity(api: Api, delivery_id: str) -> None:
    """Move the clock past the delivery's validUntil (read through the API): the engine's next
    tick ends its validity period."""
    data = await api.gql(
        "query($id: ID!) { delivery(id: $id) { validUntil } }", {"id": delivery_id}
    )
    valid_until = datetime.fromisoformat(data["delivery"]["validUntil"])
    advance_past(valid_until if valid_until.tzinfo else valid_until.replace(tzinfo=UTC))


async def finished(api: Api, delivery_id: str, **wait: Any) -> dict[str, Any]:
    """Move the clock past the delivery's validity period and wait until it is FINISHED."""
    await past_validity(api, delivery_id)
    return await flows.wait_for(api, delivery_id, lambda d: d["status"] == "FINISHED", **wait)
