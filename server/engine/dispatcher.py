"""The dispatcher: claims batches of TO_SEND logs, hands them to the MTA, records what it took.

Deliveries in progress are served round-robin, one batch each per pass, so a large delivery
does not starve a small one. When a claim comes back empty and no log is left to send, the
delivery becomes SENT. Messages an MTA refused for now (an SMTP 4xx) are soft bounces that the
dispatcher relays again on the product's retry plan while the validity period runs.

While the MTA holds a batch (`Handover`), the dispatcher records what it accepted every
`record_interval` seconds (a worker killed mid-batch repeats at most that much) and re-checks
the delivery's status in the same transaction; a "delivery changed" event that says the
delivery stopped or paused closes the batch's gate at once. Once the gate is closed the
adapter starts no new transaction, and what it did not hand over stays cancelled (stop) or is
given back (pause).

A transient MTA failure makes the delivery wait (`models/waiting.py`) and try again after an
exponential back-off, capped; it never fails the delivery. Permanent failures do, after
`max_failures` in a row.
"""

import asyncio
import contextlib
import itertools
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from models.delivery import Delivery, utcnow
from models.enums import Channel, DeliveryStatus, FailureReason, FeedbackMode, FeedbackType
from models.feedback import Event
from models.lifecycle import deliveries_in_progress, fail_delivery, mark_sent_if_done
from models.relay import (
    Claimed,
    claim_batch,
    claim_retries,
    delivery_status,
    extend_claims,
    next_retry,
    plan_retries,
    record_relayed,
    release_batch,
)
from models.waiting import wait_for_mta
from server.bus import DELIVERY_TOPIC, EventBus
from server.engine.intake import FeedbackIntake
from server.mta.base import Content, Handover, Mta, RelayError

log = logging.getLogger(__name__)

STORE_BACKOFF = (0.05, 1.0)  # first and longest pause between tries of a write that failed
PUBLISH_INTERVAL = 0.5  # seconds between two "delivery changed" of one batch in flight
S = DeliveryStatus
# The statuses in which a batch may still be handed over: first attempts, and planned retries.
SENDING = frozenset({S.IN_PROGRESS})
RETRYING = frozenset({S.IN_PROGRESS, S.SENT})


@dataclass
class Backoff:
    """Exponential back-off with a cap: `initial`, twice that, and so on up to `cap` seconds."""

    initial: float
    cap: float

    def delay(self, attempts: int) -> float:
        return float(min(self.initial * 2.0 ** max(0, attempts - 1), self.cap))


@dataclass
class Wait:
    """A delivery (or the retries) waiting before its next try, in this worker."""

    attempts: int = 0
    until: float = 0.0  # time.monotonic()
    announced: bool = False  # written on the delivery row (models/waiting.py)


@dataclass
class Flight:
    """The batch being handed over, and how much of it is recorded so far."""

    delivery_id: int
    mode: FeedbackMode | None  # None: planned retries
    content: Content
    handover: Handover
    allowed: frozenset[DeliveryStatus]
    done: asyncio.Event = field(default_factory=asyncio.Event)  # the adapter returned
    published_at: float = 0.0  # time.monotonic() of the last "delivery changed" it published
    unpublished: bool = False  # recorded since then
    accepted_done: int = 0
    refused_done: int = 0

    @property
    def by_id(self) -> dict[int, Claimed]:
        return {c.log_id: c for c in self.handover.batch}


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
        backoff: tuple[float, float] = (1.0, 30.0),
        record_interval: float = 0.1,
    ) -> None:
        self.bus, self.mta, self.intake = bus, mta, intake
        self.batch_size, self.lease_seconds = batch_size, lease_seconds
        self.tick_seconds, self.domain = tick_seconds, domain
        self.retry_seconds = retry_seconds
        self.backoff = Backoff(*backoff)
        self.record_interval = record_interval
        self.wake = asyncio.Event()
        self.stopping = asyncio.Event()  # set by Engine.stop: finish the batch, then return
        self.max_failures = max_failures
        self._content: dict[int, Content] = {}
        self._failures: dict[int, int] = {}  # consecutive permanent relay errors per delivery
        self._waits: dict[int, Wait] = {}  # deliveries backing off after a transient error
        self._retries_wait = Wait()
        self._flight: Flight | None = None
        self._closed_at: dict[int, float] = {}  # when an event said a delivery stopped sending

    def changed(self, delivery_id: int, status: DeliveryStatus | None = None) -> None:
        """A "delivery changed" event that says the delivery is no longer sending (a stop or a
        pause, published by the mutation with the new status) closes the gate of its batch at
        once, without a database read. Events without a status (feedback, other workers'
        records) need nothing: every record re-reads the status anyway. The time of a closing
        event is kept: a batch claimed just before it, and not yet in flight, starts with its
        gate closed."""
        if status is not None:  # an operator's action: what is cached may have moved (resume)
            self._content.pop(delivery_id, None)
        if status is None or status in SENDING:
            return
        self._closed_at[delivery_id] = time.monotonic()
        if len(self._closed_at) > 10_000:
            self._closed_at.clear()
        flight = self._flight
        if flight is not None and flight.delivery_id == delivery_id:
            self._gate(flight, status)

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
        now = time.monotonic()
        active = await deliveries_in_progress()
        sending_ids = {sending.id for sending in active}
        for gone in [i for i in self._waits if i not in sending_ids]:
            del self._waits[gone]  # stopped, paused, failed or finished meanwhile
        for sending in active:
            if self.stopping.is_set():
                break
            wait = self._waits.get(sending.id)
            if wait is not None:
                if wait.announced and not sending.waiting:
                    # Cleared elsewhere: another worker saw the MTA answer, or the delivery was
                    # paused (or failed) and resumed since. Try at once.
                    del self._waits[sending.id]
                elif now < wait.until:
                    continue
            claimed_at = time.monotonic()
            batch = await claim_batch(
                sending.id,
                self.batch_size,
                self.lease_seconds,
                self.domain,
                now=utcnow(),
                timed=sending.timed,
                origin=sending.origin,
            )
            if not batch:
                if await mark_sent_if_done(sending.id, utcnow()):
                    self._forget(sending.id)
                    await self.bus.publish(DELIVERY_TOPIC, {"id": sending.id})
                continue
            worked = await self._relay(sending.id, sending.mode, batch, claimed_at) or worked
        if not self.stopping.is_set() and now >= self._retries_wait.until:
            claimed_at = time.monotonic()
            retries = await claim_retries(self.batch_size, self.lease_seconds, utcnow())
            for delivery_id, batch in retries.items():
                worked = await self._relay(delivery_id, None, batch, claimed_at) or worked
        return worked

    def _forget(self, delivery_id: int) -> None:
        self._content.pop(delivery_id, None)
        self._waits.pop(delivery_id, None)
        self._failures.pop(delivery_id, None)

    # ---- one batch -------------------------------------------------------------------------

    async def _relay(
        self,
        delivery_id: int,
        mode: FeedbackMode | None,
        batch: list[Claimed],
        claimed_at: float,
    ) -> bool:
        """Hand one batch over (first attempts when `mode` is given, else retries), recording
        as it goes; True if the MTA took or refused any of it (it answered)."""
        content = await self._content_of(delivery_id)
        flight = Flight(
            delivery_id, mode, content, Handover(batch), SENDING if mode is not None else RETRYING
        )
        if self._closed_at.get(delivery_id, -1.0) >= claimed_at:
            # Stopped or paused while the claim ran: the claim may have seen it sending still.
            flight.handover.open = False
        self._flight = flight
        renewal = asyncio.create_task(self._keep_lease([c.log_id for c in batch]))
        sending = asyncio.create_task(self._hand_over(flight))
        sending.add_done_callback(lambda _: flight.done.set())
        try:
            await self._follow(flight, sending)
            await sending
            await self._record_settled(flight)
        finally:
            self._flight = None
            for task in (renewal, sending):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return await self._settle(flight)

    async def _hand_over(self, flight: Flight) -> None:
        handover = flight.handover
        try:
            await self.mta.relay(flight.content, handover)
        except Exception as error:
            if not isinstance(error, RelayError):
                log.exception("the MTA adapter failed")
            told = set(handover.accepted) | set(handover.unsent) | set(handover.withheld)
            told |= {c.log_id for c, _, _ in handover.refused}
            handover.unsent += [c.log_id for c in handover.batch if c.log_id not in told]
            handover.error = handover.error or error

    async def _follow(self, flight: Flight, sending: "asyncio.Task[None]") -> None:
        """While the MTA holds the batch: record what it accepted every `record_interval`,
        re-reading the delivery's status there (a stop or a pause closes the gate). Records
        start `record_interval` apart (at once after one that took longer), not that long after
        the previous one ended: what a killed worker had not recorded stays within about one
        interval and one record's time, however long records take on a loaded database."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        while not sending.done():
            due = max(due + self.record_interval, loop.time())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(due):
                    await flight.done.wait()
            if sending.done():
                return
            try:
                await self._record(flight)
            except Exception:  # the database is away: the final record retries
                log.warning("could not record a batch in flight; will retry", exc_info=True)

    def _gate(self, flight: Flight, status: DeliveryStatus | None) -> None:
        if flight.handover.open and status not in flight.allowed:
            flight.handover.open = False
            log.info(
                "delivery %s is %s: no more of its messages go to the MTA",
                flight.delivery_id,
                status.value if status else "gone",
            )

    async def _record_settled(self, flight: Flight) -> None:
        """The MTA has the messages now: what it did with them must reach the database,
        however long that is down or full, or they would be relayed a second time. Every
        write of a record is idempotent, so a retry after a commit whose answer was lost
        changes nothing twice."""
        pause = STORE_BACKOFF[0]
        told = ""  # the last error logged with its traceback: each new one is, once
        for attempt in itertools.count(1):
            try:
                await self._record(flight, final=True)
                if attempt > 1:
                    log.warning(
                        "recorded the batch of delivery %s after %s tries",
                        flight.delivery_id,
                        attempt,
                    )
                return
            except Exception as error:
                log.warning(
                    "could not record the batch of delivery %s that the MTA answered (%s);"
                    " retrying in %.1f s",
                    flight.delivery_id,
                    error,
                    pause,
                    exc_info=str(error) != told,
                )
                told = str(error)
            await asyncio.sleep(pause)
            pause = min(pause * 2, STORE_BACKOFF[1])

    async def _record(self, flight: Flight, final: bool = False) -> None:
        """Record the answers that came since the last record: plan the retries of soft
        refusals, move the logs (one transaction that reads the delivery's status: the gate
        follows it), feed refusals back as bounces, publish."""
        handover, delivery_id = flight.handover, flight.delivery_id
        accepted = handover.accepted[flight.accepted_done :]
        refused = handover.refused[flight.refused_done :]
        if not accepted and not refused:
            if not final:  # nothing to write: re-check the status alone
                self._gate(flight, await delivery_status(delivery_id))
            elif flight.unpublished:
                flight.unpublished = False
                await self.bus.publish(DELIVERY_TOPIC, {"id": delivery_id})
            return
        now = utcnow()
        plan = {
            claimed.log_id: next_retry(
                claimed.retries + 1, now, _valid_until(flight.content, claimed), *self.retry_seconds
            )
            for claimed, kind, _ in refused
            if kind is FeedbackType.SOFT_BOUNCE
        }
        if flight.mode is None:  # a retry that went through, or for good: no retry planned
            plan.update({log_id: None for log_id in accepted})
            plan.update({c.log_id: None for c, _, _ in refused if c.log_id not in plan})
        # Plan first: a message whose retry is planned (or cleared) cannot be claimed again
        # by another worker while its report is being applied.
        if plan:
            await plan_retries(plan)
        if flight.mode is not None:
            ids = accepted + [claimed.log_id for claimed, _, _ in refused]
            recorded = await record_relayed(delivery_id, flight.mode, ids, now)
            self._gate(flight, recorded.status)
            if recorded.recovered:
                log.info("delivery %s: the MTA answers again", delivery_id)
        else:
            self._gate(flight, await delivery_status(delivery_id))
        events = _refusals(refused, now)
        if flight.mode is None:
            by_id = flight.by_id
            events += [_retry_delivered(by_id[log_id], now) for log_id in accepted]
        if events:
            await self.intake(events)
        # Every step above is idempotent: a record that failed half-way is simply done again.
        flight.accepted_done += len(accepted)
        flight.refused_done += len(refused)
        # Live progress coalesces anyway: a batch in flight publishes at most every
        # PUBLISH_INTERVAL, and its last record always does.
        flight.unpublished = True
        if final or time.monotonic() >= flight.published_at + PUBLISH_INTERVAL:
            flight.published_at, flight.unpublished = time.monotonic(), False
            await self.bus.publish(DELIVERY_TOPIC, {"id": delivery_id})

    async def _settle(self, flight: Flight) -> bool:
        """After the batch: give back what was not handed over, then deal with the error."""
        handover, delivery_id = flight.handover, flight.delivery_id
        if handover.unsent or handover.withheld:
            # Withheld messages of a stopped delivery were cancelled by the stop (this only
            # drops a lease); those of a paused one go back to TO_SEND, for the resume.
            await release_batch(handover.unsent + handover.withheld)
        answered = bool(handover.accepted or handover.refused)
        error = handover.error
        if error is None:
            if flight.mode is None:
                self._retries_wait = Wait()
            else:
                self._waits.pop(delivery_id, None)
                self._failures.pop(delivery_id, None)
        elif not isinstance(error, RelayError):
            self._retry_soon(flight, error)
        elif error.permanent:
            await self._failed_for_good(flight, error)
        else:
            await self._wait_for_mta(flight, error, answered)
        return answered

    def _retry_soon(self, flight: Flight, error: Exception) -> None:
        """Not the MTA's failure (the database away while the batch was being composed, say):
        try again after a short pause. Backing off as for the MTA (up to
        RELAY_BACKOFF_MAX_SECONDS) would leave a send idle long after the database is back, and
        the delivery would wrongly say it waits for the MTA."""
        wait = (
            self._retries_wait
            if flight.mode is None
            else self._waits.setdefault(flight.delivery_id, Wait())
        )
        wait.until = time.monotonic() + STORE_BACKOFF[1]
        log.warning(
            "batch of delivery %s not handed over (%r); retrying in %.1f s",
            flight.delivery_id,
            error,
            STORE_BACKOFF[1],
        )

    async def _wait_for_mta(self, flight: Flight, error: RelayError, answered: bool) -> None:
        """A transient failure: back off and try again; the delivery says it is waiting (once
        nothing at all got through), and is never failed for it."""
        cause = error.cause
        if flight.mode is None:
            wait = self._retries_wait
        else:
            wait = self._waits.setdefault(flight.delivery_id, Wait())
        # A batch that got partly through is a hiccup: start the back-off again from the top
        # (its record cleared any waiting state on the delivery row).
        wait.attempts = 1 if answered else wait.attempts + 1
        wait.announced = wait.announced and not answered
        delay = self.backoff.delay(wait.attempts)
        wait.until = time.monotonic() + delay
        log.warning(
            "relay failed for delivery %s (%s in a row, transient: retrying in %.1f s): %s",
            flight.delivery_id,
            wait.attempts,
            delay,
            error,
        )
        if flight.mode is None or answered:
            return
        now = utcnow()
        if await wait_for_mta(flight.delivery_id, cause, now + timedelta(seconds=delay), now):
            wait.announced = True
            await self.bus.publish(DELIVERY_TOPIC, {"id": flight.delivery_id})

    async def _failed_for_good(self, flight: Flight, error: RelayError) -> None:
        """A permanent failure: after `max_failures` in a row the delivery is FAILED (its
        unrelayed messages stay TO_SEND, to be resumed once the cause is fixed)."""
        delivery_id = flight.delivery_id
        count = self._failures[delivery_id] = self._failures.get(delivery_id, 0) + 1
        log.warning(
            "relay failed for delivery %s (%s in a row, permanent): %s", delivery_id, count, error
        )
        if count >= self.max_failures:
            self._forget(delivery_id)
            reason = f"the MTA failed {count} times in a row; last error: {error}"
            if await fail_delivery(delivery_id, reason[:1000], utcnow()):
                await self.bus.publish(DELIVERY_TOPIC, {"id": delivery_id})
            return
        if flight.mode is None:
            wait = self._retries_wait
        else:
            wait = self._waits.setdefault(delivery_id, Wait())
        wait.attempts += 1
        wait.until = time.monotonic() + self.backoff.delay(wait.attempts)

    async def _keep_lease(self, log_ids: list[int]) -> None:
        """While the MTA holds a batch, renew its lease every third of the lease: only a dead
        worker's batch is ever claimed again."""
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                await extend_claims(log_ids, self.lease_seconds)
            except Exception:  # the next renewal (or the lease itself) covers a missed one
                log.warning("could not renew the lease of a batch in flight", exc_info=True)

    async def _content_of(self, delivery_id: int) -> Content:
        content = self._content.get(delivery_id)
        if content is None:
            d = await Delivery.get(id=delivery_id)
            assert d.valid_until is not None
            content = Content(
                d.id,
                Channel(d.channel),
                d.subject,
                d.body,
                d.valid_until,
                d.validity_period,
                d.started_at,
                d.wave_anchor,
            )
            if len(self._content) > 1000:  # retries may touch many finished deliveries
                self._content.clear()
            self._content[delivery_id] = content
        return content


def _valid_until(content: Content, claimed: Claimed) -> datetime:
    """A message with its own send time (models/send_time.py) has its own validity period,
    which starts then; any other, the delivery's."""
    if claimed.due_at is None:
        return content.valid_until
    origin = content.due_origin.timestamp() * 1000 if content.due_origin else 0
    own = datetime.fromtimestamp((origin + claimed.due_at) / 1000, UTC)
    if content.started_at is not None:
        own = max(own, content.started_at)  # a time already past at the start: sent then
    return min(content.valid_until, own + timedelta(seconds=content.validity_period))


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
