"""Opens and clicks: a delivery relayed with links to track, and the pixel and click paths."""

import asyncio
from email.message import EmailMessage

from models.sql import Sql
from models.tracking import (
    TRACKING_PATHS,
    Token,
    TrackingKind,
    make_token,
    tracking_counts,
)
from tests.support import flows
from tests.support.client import Api
from tests.support.server import RunningServer

BODY = (
    '<p>Hello {{firstName}}</p><a href="https://example.com/offer?who={{firstName}}&amp;e={{email}}">'
    'Offer</a><a href="https://example.com/plain">Plain</a>'
    '<a href="{{unsubscribeUrl}}">Unsubscribe</a>'
)


def path(running: RunningServer, token: Token) -> str:
    return f"/{TRACKING_PATHS[token.kind]}/{make_token(running.settings.tracking_key, token)}"


async def sent(api: Api, n: int, body: str = BODY) -> tuple[int, list[int]]:
    """A delivery relayed to n recipients: its id and its sending log ids."""
    emails = [f"user{i}@example.com" for i in range(n)]
    done, logs = await flows.sent_delivery(api, emails, body=body)  # type: ignore[arg-type]
    return int(done["id"]), [int(log["id"]) for log in logs]


def parts(message: EmailMessage) -> tuple[str, str]:
    html = message.get_body(("html",))
    text = message.get_body(("plain",))
    assert html is not None and text is not None
    return html.get_content(), text.get_content()


async def stored(delivery_id: int) -> dict[TrackingKind, int]:
    return await tracking_counts(Sql(), delivery_id)


async def until_stored(delivery_id: int, expected: dict[TrackingKind, int]) -> None:
    """Poll the tracking logs (the recorder writes in batches) until they hold `expected`."""
    deadline = asyncio.get_running_loop().time() + 15
    while (counts := await stored(delivery_id)) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"stored {counts}, want {expected}"
        await asyncio.sleep(0.02)
