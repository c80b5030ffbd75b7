"""The open pixel (`GET /t/o/{id}`) and the click redirect (`GET /t/c/{id}`), docs/tracking.md.

Ids are signed tokens (models/tracking.py): checking one needs no database read, so the pixel
answers at once and queues the open; a recorder writes queued opens and clicks in one multi-row
INSERT per batch. The redirect target is always a link of the delivery's own body, looked up by
the index the signed id carries: nothing in the request can choose where it leads.
"""

import asyncio
import base64
import contextlib
import itertools
import logging
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from models.sql import Sql
from models.template import UNSUBSCRIBE_FIELD, field_values, fill_url
from models.tracking import (
    TRACKING_PATHS,
    DeliveryLinks,
    Hit,
    Tally,
    Token,
    TokenKind,
    TrackingKind,
    delivery_links,
    read_token,
    recipient_of,
    record_hits,
    token_in_range,
    tracking_url,
)
from server.http.unsubscribe import Changed, Unsubscribe
from server.settings import Settings

log = logging.getLogger(__name__)

# A 1x1 transparent GIF: the same bytes whatever the id, so a probe learns nothing from it.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
# Every open must reach the server: no browser, proxy or mail-client cache may answer for it.
NO_STORE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0",
    "Pragma": "no-cache",
    "Expires": "Thu, 01 Jan 1970 00:00:00 GMT",
    "X-Content-Type-Options": "nosniff",
}
# The redirect must not tell the target site which tracking id led there.
REDIRECT_HEADERS = {**NO_STORE, "Referrer-Policy": "no-referrer"}
# Opens and clicks of new keys (recipient and open, or recipient and link) waiting for the
# recorder beyond this are dropped (with a warning): a flood of pixel loads while the database
# is slow must not eat the server's memory. Repeated hits of a waiting key only count.
MAX_QUEUED = 200_000
# Deliveries whose links are kept in memory for the click redirect.
LINK_CACHE_SIZE = 256


def read(key: str, kind: TokenKind, text: str) -> Token | None:
    token = read_token(key, kind, text)
    return token if token is not None and token_in_range(token) else None


def not_found() -> JSONResponse:
    return JSONResponse(
        {"error": "unknown or invalid tracking link"}, status_code=404, headers=NO_STORE
    )


class Recorder:
    """Queues hits and stores them in batches: every `flush_seconds`, or as soon as
    `batch_size` keys are waiting. Hits of one key (a recipient's open, or a recipient's click
    on one link) are merged while they wait, and stored as one row with a counter
    (models/tracking.py). `close()` stores what is left, so a graceful stop loses nothing."""

    def __init__(self, flush_seconds: float, batch_size: int, max_queued: int = MAX_QUEUED):
        self.flush_seconds = flush_seconds
        self.batch_size = batch_size
        self.max_queued = max_queued
        self.queue: dict[tuple[int, TrackingKind, int], Tally] = {}
        self.stored = 0  # hits written
        self.dropped = 0  # refused: the queue was full
        self.lost = 0  # hits the database would not take
        self._dropped_unreported = 0
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def add(self, hit: Hit) -> None:
        waiting = self.queue.get(hit.key)
        if waiting is not None:
            waiting.add(hit)
            return
        if len(self.queue) >= self.max_queued:
            self.dropped += 1
            self._dropped_unreported += 1
            return
        self.queue[hit.key] = Tally.of(hit)
        if len(self.queue) >= self.batch_size:
            self._wake.set()

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="tracking-recorder")

    async def close(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_seconds)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # flush() handles database errors; this is a last resort
                log.exception("tracking recorder: flush failed")

    async def flush(self) -> None:
        async with self._lock:
            while self.queue:
                keys = list(itertools.islice(self.queue, self.batch_size))
                await self._write([self.queue.pop(key) for key in keys])
            if self._dropped_unreported:
                log.warning(
                    "tracking: %d opens/clicks dropped, more than %d were waiting to be stored",
                    self._dropped_unreported,
                    self.max_queued,
                )
                self._dropped_unreported = 0

    async def _write(self, batch: Sequence[Tally]) -> None:
        """Store a batch; when the database refuses it, halve it until the rows at fault are
        alone, and drop only those (so one bad row neither blocks nor takes the rest)."""
        try:
            self.stored += await record_hits(Sql(), batch)
        except Exception as error:
            if len(batch) > 1:
                middle = len(batch) // 2
                await self._write(batch[:middle])
                await self._write(batch[middle:])
                return
            self.lost += batch[0].hits
            log.warning("tracking: dropped %s, the database refused it: %s", batch[0], error)


class LinkCache:
    """The tracked links of recently clicked deliveries (least recently used out). Only
    deliveries that can no longer be edited or deleted are kept, so an entry is never stale."""

    def __init__(self, size: int = LINK_CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[int, DeliveryLinks] = OrderedDict()

    async def get(self, delivery_id: int) -> DeliveryLinks | None:
        found = self._entries.get(delivery_id)
        if found is not None:
            self._entries.move_to_end(delivery_id)
            return found
        found = await delivery_links(Sql(), delivery_id)
        if found is not None and found.final:
            self._entries[delivery_id] = found
            if len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return found


class TrackingEndpoints:
    def __init__(self, settings: Settings, changed: Changed | None = None) -> None:
        self.settings = settings
        self.key = settings.tracking_key
        self.recorder = Recorder(settings.tracking_flush_seconds, settings.tracking_batch_size)
        self.links = LinkCache()
        self.unsubscribe = Unsubscribe(settings, changed)
        self.routes: list[BaseRoute] = [
            Route(f"/{TRACKING_PATHS[TokenKind.OPEN]}/{{token}}", self.open, methods=["GET"]),
            Route(f"/{TRACKING_PATHS[TokenKind.CLICK]}/{{token}}", self.click, methods=["GET"]),
            *self.unsubscribe.routes,
        ]

    async def start(self) -> None:
        await self.recorder.start()

    async def close(self) -> None:
        await self.recorder.close()

    async def open(self, request: Request) -> Response:
        """Always the pixel; a valid id queues an open (a HEAD probe records nothing)."""
        token = read(self.key, TokenKind.OPEN, request.path_params["token"])
        if token is not None and request.method == "GET":
            now = datetime.now(UTC)
            self.recorder.add(Hit(token.delivery_id, token.log_id, TrackingKind.OPEN, now))
        return Response(PIXEL, media_type="image/gif", headers=NO_STORE)

    async def click(self, request: Request) -> Response:
        token = read(self.key, TokenKind.CLICK, request.path_params["token"])
        if token is None or token.link is None:
            return not_found()
        links = await self.links.get(token.delivery_id)
        if links is None or token.link >= len(links.links):
            return not_found()
        sql = Sql()
        recipient = await recipient_of(sql, token.delivery_id, token.log_id)
        if recipient is None:
            return not_found()
        url = links.links[token.link]
        target = url
        if "{{" in url:
            values = (await field_values([recipient], sql))[recipient.log_id]
            base = self.settings.public_url or str(request.base_url)
            unsubscribe = Token(TokenKind.UNSUBSCRIBE, token.delivery_id, token.log_id)
            values[UNSUBSCRIBE_FIELD] = tracking_url(base, self.key, unsubscribe)
            target = fill_url(url, values)
        if request.method == "GET":
            now = datetime.now(UTC)
            hit = Hit(token.delivery_id, token.log_id, TrackingKind.CLICK, now, url, token.link)
            self.recorder.add(hit)
        return RedirectResponse(target, status_code=302, headers=REDIRECT_HEADERS)
