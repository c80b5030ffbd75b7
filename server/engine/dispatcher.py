"""The dispatcher: claims batches of TO_SEND logs, relays them, records each batch in one write.

Deliveries in progress are served round-robin, one batch each per pass, so a large delivery
does not starve a small one. When a claim comes back empty and no log is left to send, the
delivery becomes SENT. Messages an MTA refused for now (an SMTP 4xx) are soft bounces that the
dispatcher relays again on the product's retry plan while the validity period runs.
"""

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from models.delivery import Delivery, utcnow
from models.enums import Channel, FailureReason, FeedbackMode, FeedbackType
from models.feedback import Event
from models.lifecycle import deliveries_in_progress, fail_delivery, mark_sent_if_done
from models.relay import (
    Claimed,
    claim_batch,
    claim_retries,
    extend_claims,
    next_retry,
    plan_retries,
    record_relayed,
    release_batch,
)
from server.bus import DELIVERY_TOPIC, EventBus
from server.engine.intake import FeedbackIntake
from server.mta.base import Content, Mta, RelayResult

log = logging.getLogger(__name__)

STORE_BACKOFF = (0.05, 1.0)  # first and longest pause between tries of a write that failed


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
        retry_seconds: tuple[float, float] = (3600.0, 86400.0),
    ) -> None:
        self.bus, self.mta, self.intake = bus, mta, intake
        self.batch_size, self.lease_seconds = batch_size, lease_seconds
        self.tick_seconds, self.domain = tick_seconds, domain
        self.retry_seconds = retry_seconds
        self.wake = asyncio.Event()
        self.stopping = asyncio.Event()  # set by Engine.stop: finish the batch, then return
        self.max_failures = max_failures
        self._content: dict[int, Content] = {}
        self._failures: dict[int, int] = {}  # consecutive relay errors per delivery

    async def run(self) -> None:
        failed = 0  # passes failed in a row (the database down or full): wait longer each time
        while not self.stopping.is_set():
            try:
                worked = await self.pass_once()
                failed = 0
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failed += 1
                if failed == 1:
                    log.exception("dispatcher pass failed; retrying")
                else:
                    log.warning("dispatcher pass failed %s times in a row: %s", failed, error)
                worked = False
            if not worked:
                self.wake.clear()
                pause = min(self.tick_seconds * 2 ** max(0, failed - 1), STORE_BACKOFF[1])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=pause)

    async def pass_once(self) -> bool:
        """One batch for each delivery in progress, then the retries that are due; True if
        anything was relayed."""
        worked = False
        active = await deliveries_in_progress()
        for delivery_id, mode in active:
            if self.stopping.is_set():
                break
            batch = await claim_batch(delivery_id, self.batch_size, self.lease_seconds, self.domain)
            if not batch:
                if await mark_sent_if_done(delivery_id, utcnow()):
                    self._content.pop(delivery_id, None)
                    await self.bus.publish(DELIVERY_TOPIC, {"id": delivery_id})
                continue
            worked = await self._relay(delivery_id, mode, batch) or worked
        if not self.stopping.is_set():
            retries = await claim_retries(self.batch_size, self.lease_seconds, utcnow())
            for delivery_id, batch in retries.items():
                worked = await self._relay(delivery_id, None, batch) or worked
        return worked

    async def _relay(
        self, delivery_id: int, mode: FeedbackMode | None, batch: list[Claimed]
    ) -> bool:
        """Relay one batch (first attempts when `mode` is given, else retries) and record what
        the MTA did with each message; True if the MTA took any."""
        content = await self._content_of(delivery_id)
        renewal = asyncio.create_task(self._keep_lease([c.log_id for c in batch]))
        try:
            try:
                result = await self.mta.relay(content, batch)
            except Exception as error:
                result = RelayResult(unsent=[c.log_id for c in batch], error=error)
            # The MTA has the messages now: what it did with them must reach the database,
            # however long that is down or full, or they would be relayed a second time.
            await self._until_stored(
                delivery_id, lambda: self._store(delivery_id, mode, batch, content, result)
            )
        finally:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewal
        if result.error is not None:
            await self._relay_failed(delivery_id, result.error)
        else:
            self._failures.pop(delivery_id, None)
        if result.accepted or result.refused:
            await self.bus.publish(DELIVERY_TOPIC, {"id": delivery_id})
            return True
        return False

    async def _until_stored(self, delivery_id: int, store: Callable[[], Awaitable[None]]) -> None:
        """Run `store` until it succeeds, pausing longer after each failure (the lease of the
        batch is renewed meanwhile). Every write in it is idempotent, so a retry after a
        commit whose answer was lost changes nothing twice."""
        pause = STORE_BACKOFF[0]
        for attempt in itertools.count(1):
            try:
                await store()
                if attempt > 1:
                    log.warning(
                        "recorded the batch of delivery %s after %s tries", delivery_id, attempt
                    )
                return
            except Exception as error:
                log.warning(
                    "could not record the batch of delivery %s that the MTA answered (%s);"
                    " retrying in %.2f s",
                    delivery_id,
                    error,
                    pause,
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, STORE_BACKOFF[1])

    async def _store(
        self,
        delivery_id: int,
        mode: FeedbackMode | None,
        batch: list[Claimed],
        content: Content,
        result: RelayResult,
    ) -> None:
        """Write what the MTA did with each message of a batch."""
        now = utcnow()
        by_id = {c.log_id: c for c in batch}
        plan = {
            claimed.log_id: next_retry(
                claimed.retries + 1, now, content.valid_until, *self.retry_seconds
            )
            for claimed, kind, _ in result.refused
            if kind is FeedbackType.SOFT_BOUNCE
        }
        if mode is None:  # a retry that went through, or for good: no retry planned
            plan.update({log_id: None for log_id in result.accepted})
            plan.update({c.log_id: None for c, k, _ in result.refused if c.log_id not in plan})
        # Plan first: a message whose retry is planned (or cleared) cannot be claimed again
        # by another worker while its report is being applied.
        if plan:
            await plan_retries(plan)
        if mode is not None:
            refused_ids = [claimed.log_id for claimed, _, _ in result.refused]
            await record_relayed(delivery_id, mode, result.accepted + refused_ids)
        events = _refusals(result.refused, now)
        if mode is None:
            events += [_retry_delivered(by_id[log_id], now) for log_id in result.accepted]
        if events:
            await self.intake(events)
        if result.unsent:
            await release_batch(result.unsent)

    async def _keep_lease(self, log_ids: list[int]) -> None:
        """While the MTA holds a batch, renew its lease every third of the lease: only a dead
        worker's batch is ever claimed again."""
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                await extend_claims(log_ids, self.lease_seconds)
            except Exception:  # the next renewal (or the lease itself) covers a missed one
                log.warning("could not renew the lease of a batch in flight", exc_info=True)

    async def _relay_failed(self, delivery_id: int, error: Exception) -> None:
        """After `max_failures` errors in a row the delivery is FAILED (its unsent messages
        were given back first)."""
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
            content = Content(
                d.id, Channel(d.channel), d.subject, d.body, d.valid_until, d.validity_period
            )
            if len(self._content) > 1000:  # retries may touch many finished deliveries
                self._content.clear()
            self._content[delivery_id] = content
        return content


def _refusals(
    refused: list[tuple[Claimed, FeedbackType, FailureReason]], now: datetime
) -> list[Event]:
    """An MTA that refuses a message reports it like a bounce, through the intake; the attempt
    number keeps each refusal of a retried message a distinct event."""
    return [
        Event(
            f"relay-{claimed.message_id}-{claimed.retries}", claimed.message_id, kind, now, reason
        )
        for claimed, kind, reason in refused
    ]


def _retry_delivered(claimed: Claimed, now: datetime) -> Event:
    """The MTA took a message it had refused for now: SPEC §4's "a retry of a soft bounce
    succeeds" row."""
    return Event(
        f"retry-{claimed.message_id}-{claimed.retries}",
        claimed.message_id,
        FeedbackType.DELIVERED,
        now,
    )
