"""The dispatcher: claims batches of TO_SEND logs, relays them, records each batch in one write.

Deliveries in progress are served round-robin, one batch each per pass, so a large delivery
does not starve a small one. When a claim comes back empty and no log is left to send, the
delivery becomes SENT.
"""

import asyncio
import contextlib
import logging
from datetime import datetime

from models.delivery import Delivery, utcnow
from models.enums import FailureReason, FeedbackType
from models.feedback import Event
from models.lifecycle import deliveries_in_progress, fail_delivery, mark_sent_if_done
from models.relay import Claimed, claim_batch, record_relayed, release_batch
from server.bus import DELIVERY_TOPIC, EventBus
from server.engine.intake import FeedbackIntake
from server.mta.base import Content, Mta

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(
        self,
        bus: EventBus,
        mta: Mta,
        intake: FeedbackIntake,
        *,
        batch_size: int,
        lease_seconds: float,
        tick_seconds: float,
        domain: str,
        max_failures: int = 5,
    ) -> None:
        self.bus, self.mta, self.intake = bus, mta, intake
        self.batch_size, self.lease_seconds = batch_size, lease_seconds
        self.tick_seconds, self.domain = tick_seconds, domain
        self.wake = asyncio.Event()
        self.stopping = asyncio.Event()  # set by Engine.stop: finish the batch, then return
        self.max_failures = max_failures
        self._content: dict[int, Content] = {}
        self._failures: dict[int, int] = {}  # consecutive relay errors per delivery

    async def run(self) -> None:
        while not self.stopping.is_set():
            try:
                worked = await self.pass_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("dispatcher pass failed; retrying")
                worked = False
            if not worked:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=self.tick_seconds)

    async def pass_once(self) -> bool:
        """One batch for each delivery in progress; True if anything was relayed."""
        worked = False
        active = await deliveries_in_progress()
        for delivery_id in list(self._content):
            if delivery_id not in {d for d, _ in active}:
                del self._content[delivery_id]
        for delivery_id, mode in active:
            if self.stopping.is_set():
                break
            batch = await claim_batch(delivery_id, self.batch_size, self.lease_seconds, self.domain)
            if not batch:
                if await mark_sent_if_done(delivery_id, utcnow()):
                    await self.bus.publish(DELIVERY_TOPIC, {"id": delivery_id})
                continue
            content = await self._content_of(delivery_id)
            try:
                result = await self.mta.relay(content, batch)
            except Exception as error:
                await self._relay_failed(delivery_id, batch, error)
                continue
            self._failures.pop(delivery_id, None)
            refused_ids = [claimed.log_id for claimed, _, _ in result.refused]
            await record_relayed(delivery_id, mode, result.accepted + refused_ids)
            if result.refused:
                await self.intake(_refusals(result.refused, utcnow()))
            await self.bus.publish(DELIVERY_TOPIC, {"id": delivery_id})
            worked = True
        return worked

    async def _relay_failed(self, delivery_id: int, batch: list[Claimed], error: Exception) -> None:
        """Give the batch back; after `max_failures` errors in a row the delivery is FAILED."""
        await release_batch([c.log_id for c in batch])
        count = self._failures[delivery_id] = self._failures.get(delivery_id, 0) + 1
        log.warning("relay failed for delivery %s (%s in a row): %s", delivery_id, count, error)
        if count >= self.max_failures:
            self._failures.pop(delivery_id, None)
            reason = f"the MTA failed {count} times in a row; last error: {error}"
            if await fail_delivery(delivery_id, reason[:1000], utcnow()):
                await self.bus.publish(DELIVERY_TOPIC, {"id": delivery_id})
        else:
            await asyncio.sleep(min(0.1 * 2**count, 5.0))

    async def _content_of(self, delivery_id: int) -> Content:
        content = self._content.get(delivery_id)
        if content is None:
            d = await Delivery.get(id=delivery_id)
            assert d.valid_until is not None
            content = Content(d.id, d.subject, d.body, d.valid_until, d.validity_period)
            self._content[delivery_id] = content
        return content


def _refusals(
    refused: list[tuple[Claimed, FeedbackType, FailureReason]], now: datetime
) -> list[Event]:
    """An MTA that refuses a message at once reports it like a bounce, through the intake."""
    return [
        Event(f"relay-{claimed.message_id}", claimed.message_id, kind, now, reason)
        for claimed, kind, reason in refused
    ]
