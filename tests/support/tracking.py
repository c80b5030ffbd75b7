"""Opens and clicks: a delivery relayed with links to track, and the pixel and click paths."""

from email.message import EmailMessage

from models.tracking import (
    TRACKING_PATHS,
    Token,
    make_token,
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
