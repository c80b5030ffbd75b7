"""`GET /deliveries/{id}/sending-logs.csv` and `/deliveries/{id}/tracking-logs.csv`: a
delivery's logs as CSV, for administrators only (they hold personal data, SPEC §1).

Streamed: the rows are read a keyset page at a time (models/exports.py) and each page is
written out before the next is read, so memory stays that of one page for a million rows, and a
client that stops reading stops the reads. The caller, the role and the delivery are checked
before the first byte: a refusal is a JSON error (401, 403 FORBIDDEN, 404 NOT_FOUND), as
GraphQL's are; a failure after the first byte can only cut the response short.
"""

import csv
import io
import re
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from models.enums import Role
from models.errors import NotFound
from models.exports import SENDING_LOG_COLUMNS, TRACKING_LOG_COLUMNS, check_delivery, log_pages
from models.operator import Operator
from server.http.graphql_auth import authenticate
from server.http.graphql_http import JSON
from server.http.token_cache import TokenCache

KINDS = {
    "sending-logs": ("sending", SENDING_LOG_COLUMNS),
    "tracking-logs": ("tracking", TRACKING_LOG_COLUMNS),
}


def _error(status: int, message: str, code: str) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return JSONResponse(body, status, media_type=JSON)


class LogExportEndpoints:
    def __init__(self, tokens: TokenCache) -> None:
        self.tokens = tokens
        self.routes: list[BaseRoute] = [
            Route("/deliveries/{id}/sending-logs.csv", self.export, methods=["GET"]),
            Route("/deliveries/{id}/tracking-logs.csv", self.export, methods=["GET"]),
        ]

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def export(self, request: Request) -> Response:
        operator = await authenticate(request, self.tokens, JSON)
        if not isinstance(operator, Operator):
            return operator
        name = request.url.path.rsplit("/", 1)[1].removesuffix(".csv")
        if not operator.has_role(Role.ADMINISTRATION):
            return _error(
                403,
                f"You are not allowed to export {name.replace('-', ' ')}: the ADMINISTRATION"
                " role is required.",
                "FORBIDDEN",
            )
        raw = request.path_params["id"]
        if not raw.isdigit() or len(raw) > 18:
            return _error(404, f"no delivery with id {raw!r}", "NOT_FOUND")
        delivery_id = int(raw)
        try:
            await check_delivery(delivery_id)
        except NotFound as error:
            return _error(404, error.message, "NOT_FOUND")
        kind, columns = KINDS[name]
        return StreamingResponse(
            _csv(kind, columns, delivery_id),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="delivery-{delivery_id}-{name}.csv"',
                "Cache-Control": "no-store",
            },
        )


# A cell a spreadsheet would run as a formula (CSV injection, OWASP): "=…", "@…", a tab or a
# carriage return first, or "+"/"-" before anything but a number (a phone number stays as is).
_FORMULA = re.compile(r"[=@\t\r]|[+-](?![0-9. ]*$)")


def _cell(value: object) -> object:
    """A text cell that starts like a formula is written with a leading apostrophe, which
    spreadsheets show as text; every other value is written as stored."""
    if isinstance(value, str) and _FORMULA.match(value):
        return "'" + value
    return value


async def _csv(kind: str, columns: tuple[str, ...], delivery_id: int) -> AsyncIterator[str]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    yield out.getvalue()
    async for page in log_pages(kind, delivery_id):
        out.seek(0)
        out.truncate()
        writer.writerows([_cell(v) for v in row] for row in page)
        yield out.getvalue()
