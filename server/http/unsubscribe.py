"""One-click unsubscribe (RFC 8058): `GET /u/{id}` asks, `POST /u/{id}` puts the recipient's
address on the deny list (reason UNSUBSCRIBED) and counts in the delivery's `unsubscriptions`
(once per recipient: models/optouts.py).

A GET never unsubscribes: mail scanners and link previews follow every link in a message. The
POST is what a mail client sends for `List-Unsubscribe-Post: List-Unsubscribe=One-Click`, and
what the page's button sends; it needs nothing but the signed id, and repeating it is harmless.
"""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from models.optouts import unsubscribe
from models.sql import Sql
from models.tracking import TRACKING_PATHS, TokenKind, read_token, recipient_of, token_in_range
from server.settings import Settings

# The pages load nothing and can post only back to this server.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font-family:sans-serif;max-width:32em;margin:4em auto;padding:0 1em}}
button{{font-size:1em;padding:.5em 1.5em}}</style></head>
<body><h1>{title}</h1>{content}</body></html>
"""

# The form has no action: it posts back to the URL of the page itself.
CONFIRM_PAGE = _PAGE.format(
    title="Unsubscribe",
    content=(
        "<p>Stop receiving these emails at this address?</p>"
        '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>'
    ),
)
DONE_PAGE = _PAGE.format(
    title="You are unsubscribed",
    content="<p>This address will receive no more of these emails.</p>",
)


Changed = Callable[[int], Awaitable[None]]  # publish that a delivery's KPIs moved


class Unsubscribe:
    def __init__(self, settings: Settings, changed: Changed | None = None) -> None:
        self.key = settings.tracking_key
        self.changed = changed
        path = f"/{TRACKING_PATHS[TokenKind.UNSUBSCRIBE]}/{{token}}"
        self.routes: list[BaseRoute] = [Route(path, self.page, methods=["GET", "POST"])]

    async def page(self, request: Request) -> Response:
        token = read_token(self.key, TokenKind.UNSUBSCRIBE, request.path_params["token"])
        found: bool | None = None
        if token is not None and token_in_range(token):
            if request.method == "POST":
                found = await unsubscribe(token.delivery_id, token.log_id, datetime.now(UTC))
                if found and self.changed is not None:  # after the commit
                    await self.changed(token.delivery_id)
            else:
                found = await exists(token.delivery_id, token.log_id)
        if found is None:
            return JSONResponse(
                {"error": "unknown or invalid unsubscribe link"},
                status_code=404,
                headers={"Cache-Control": "no-store"},
            )
        if request.method != "POST":
            return HTMLResponse(CONFIRM_PAGE, headers=PAGE_HEADERS)
        return HTMLResponse(DONE_PAGE, headers=PAGE_HEADERS)


async def exists(delivery_id: int, log_id: int) -> bool | None:
    """True when the sending log is in that delivery, else None (the page answers 404)."""
    return True if await recipient_of(Sql(), delivery_id, log_id) is not None else None
