"""Delivery, its KPIs, its sending logs and its progress, as the contract spells them."""

import dataclasses
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from graphql_schema.audit.types import AUDIT_EVENTS, AuditEvent, audit_connection
from graphql_schema.context import Context
from graphql_schema.enums import (
    AggregationPeriod,
    Channel,
    DeliveryAction,
    DeliveryStatus,
    FailureReason,
    FailureType,
    FeedbackMode,
    SendingLogStatus,
    WaitingReason,
)
from graphql_schema.loaders import PageKey
from graphql_schema.operators.types import Operator
from graphql_schema.pagination import (
    Connection,
    Cursors,
    by_id,
    connection,
    one_of,
    search_term,
    window,
)
from graphql_schema.permissions import ANY_ROLE, is_administrator, needs
from graphql_schema.proofs.types import MAX_PROOFS_LISTED, Proof
from models import delivery as m_delivery
from models import enums as m_enums
from models import kpi_history as m_history
from models import send_time as m_send_time
from models import sending_log as m_log
from models import waves as m_waves
from models.actions import allowed_actions
from models.delivery import utcnow
from models.enums import Role
from models.errors import BadInput
from models.keyset import Window
from models.kpis import COUNTERS, Kpis
from models.lifecycle import MAX_AUDIENCE_IDS
from models.recurrence import MAX_NEXT_OCCURRENCES, describe
from models.redaction import plain_failure
from models.timezones import in_zone

if TYPE_CHECKING:
    from graphql_schema.profiles.types import Profile


@strawberry.type(
    description="A delivery's figures. `id` is the delivery's: a normalised cache keeps one"
    " DeploymentKpis per delivery, so computeStats and deploymentProgress update Delivery.kpis."
    " A point of kpiHistory has an id of its own (`<delivery id>@<slot>`), so a cache never"
    " mistakes past figures for the current ones."
)
class DeploymentKpis:
    id: strawberry.ID = strawberry.field(
        description="The delivery's id (`<delivery id>@<slot>` in kpiHistory)."
    )
    to_send: int
    processed: int
    sent: int
    pending: int
    failed: int
    delivered_rate: float
    bounces_and_errors_rate: float
    opens: int
    clicks: int
    open_rate: float | None = strawberry.field(
        description="opens / sent * 100; null for SMS and push (SPEC §5)."
    )
    click_through_rate: float | None = strawberry.field(
        description="clicks / sent * 100; null for SMS and push (SPEC §5)."
    )
    stats_computed_at: datetime | None
    complaints: int = strawberry.field(
        description="Recipients who reported a message of this delivery as spam."
    )
    unsubscriptions: int = strawberry.field(
        description="Recipients who unsubscribed from a message of this delivery."
    )
    complaint_rate: float = strawberry.field(description="complaints / sent * 100.")
    delivery_id: strawberry.Private[int]

    @strawberry.field(description="The delivery these figures are of.")
    async def delivery(
        self, info: Info[Context, None]
    ) -> Annotated["Delivery", strawberry.lazy("graphql_schema.deliveries.types")] | None:
        found = await info.context.loaders.deliveries.load(self.delivery_id)
        return Delivery.of(found) if found is not None else None

    @classmethod
    def of(cls, k: Kpis, delivery_id: int, key: str | None = None) -> "DeploymentKpis":
        return cls(
            id=strawberry.ID(key or str(delivery_id)),
            delivery_id=delivery_id,
            to_send=k.to_send,
            processed=k.processed,
            sent=k.sent,
            pending=k.pending,
            failed=k.failed,
            delivered_rate=k.delivered_rate,
            bounces_and_errors_rate=k.bounces_and_errors_rate,
            opens=k.opens,
            clicks=k.clicks,
            open_rate=k.open_rate,
            click_through_rate=k.click_through_rate,
            stats_computed_at=k.stats_computed_at,
            complaints=k.complaints,
            unsubscriptions=k.unsubscriptions,
            complaint_rate=k.complaint_rate,
        )


@strawberry.type(
    description="A delivery's KPIs at one moment of its history (at most one point per few"
    " seconds; older stretches thinned out: docs/kpis.md)."
)
class KpiHistoryPoint:
    id: strawberry.ID = strawberry.field(
        description="`<delivery id>@<slot>` (`@live` for the figures since the last stored point)"
    )
    at: datetime
    kpis: DeploymentKpis

    @classmethod
    def of(cls, point: m_history.KpiPoint, channel: m_enums.Channel) -> "KpiHistoryPoint":
        figures = {name: getattr(point, name) for name in COUNTERS}
        kpis = Kpis(**figures, stats_computed_at=None, channel=channel)
        key = f"{point.delivery_id}@{point.slot}"
        kpis_then = DeploymentKpis.of(kpis, point.delivery_id, key)
        return cls(id=strawberry.ID(key), at=point.at, kpis=kpis_then)


@strawberry.type(description="The number of recipients excluded at preparation, by reason.")
class ExclusionCause:
    id: strawberry.ID = strawberry.field(description="The delivery's id and the reason.")
    reason: FailureReason
    count: int


@strawberry.type
class SendingLog:
    id: strawberry.ID
    address: str
    status: SendingLogStatus
    retries: int
    event_at: datetime | None
    excluded: bool
    delivery_id: strawberry.ID
    profile_id: strawberry.Private[int | None]
    _log: strawberry.Private[m_log.SendingLog]

    @strawberry.field(description="The delivery the message belongs to.")
    async def delivery(
        self, info: Info[Context, None]
    ) -> Annotated["Delivery", strawberry.lazy("graphql_schema.deliveries.types")] | None:
        found = await info.context.loaders.deliveries.load(self._log.delivery_id)
        return Delivery.of(found) if found is not None else None

    # A profile's history is open to every role; its failure details and message ids are
    # for administrators only (SPEC §1), whichever path reaches the log.
    @strawberry.field(extensions=needs(Role.ADMINISTRATION))
    def failure_type(self, info: Info[Context, None]) -> FailureType | None:
        return self._log.failure_type

    @strawberry.field(extensions=needs(Role.ADMINISTRATION))
    def failure_reason(self, info: Info[Context, None]) -> FailureReason | None:
        return reason_of(self._log.failure_reason)

    @strawberry.field(extensions=needs(Role.ADMINISTRATION))
    def message_id(self, info: Info[Context, None]) -> str | None:
        return self._log.message_id

    @strawberry.field(
        description="When the recipient first reported this message as spam.",
        extensions=needs(Role.ADMINISTRATION),
    )
    def complained_at(self, info: Info[Context, None]) -> datetime | None:
        return self._log.complained_at

    @strawberry.field(
        description="When the recipient first unsubscribed from this message.",
        extensions=needs(Role.ADMINISTRATION),
    )
    def unsubscribed_at(self, info: Info[Context, None]) -> datetime | None:
        return self._log.unsubscribed_at

    @strawberry.field(extensions=needs(ANY_ROLE))
    async def profile(
        self, info: Info[Context, None]
    ) -> Annotated["Profile", strawberry.lazy("graphql_schema.profiles.types")] | None:
        from graphql_schema.profiles.types import Profile

        if self.profile_id is None:
            return None
        found = await info.context.loaders.profiles.load(self.profile_id)
        return Profile.of(found) if found is not None else None

    @classmethod
    def of(cls, log: m_log.SendingLog) -> "SendingLog":
        return cls(
            id=strawberry.ID(str(log.id)),
            address=log.address,
            status=log.status,
            retries=log.retries,
            event_at=log.event_at,
            excluded=log.excluded,
            delivery_id=strawberry.ID(str(log.delivery_id)),
            profile_id=log.profile_id,
            _log=log,
        )


SENDING_LOGS = Cursors("SendingLog")
OCCURRENCES = Cursors("Occurrence")


Where = tuple[tuple[str, Any], ...]


def log_filters(
    status: SendingLogStatus | None,
    statuses: list[SendingLogStatus] | None,
    failure_type: FailureType | None,
    failure_reason: FailureReason | None,
    search: str | None,
    excluded: bool | None,
) -> Where:
    """The conditions of a sending-log list's filters (models/batches.py: `condition`)."""
    where: list[tuple[str, Any]] = []
    if status is not None:
        where.append(("status", status))
    if statuses is not None:
        where.append(("status__in", tuple(one_of(statuses, "statuses", len(SendingLogStatus)))))
    if failure_type is not None:
        where.append(("failure_type", failure_type))
    if failure_reason is not None:
        where.append(("failure_reason", failure_reason))
    if (term := search_term(search)) is not None:
        where.append(("address__contains", term))
    if excluded is not None:
        where.append(("excluded", excluded))
    return tuple(where)


async def sending_log_page(
    info: Info[Context, None], delivery_id: int, where: Where, asked: Window
) -> Connection[SendingLog]:
    """Sending logs hold personal data: administrators only (SPEC §1; both fields that call
    this declare it). One query for the pages of every delivery the execution asks about
    (graphql_schema/loaders.py)."""
    page = await info.context.loaders.sending_logs.load(PageKey(delivery_id, asked, where))
    return connection(page, asked, SENDING_LOGS, by_id, SendingLog.of)


@strawberry.type(
    description="What a delivery IN_PROGRESS is waiting for: the MTA is down, busy or"
    " unreachable, so the engine backs off and tries again by itself (docs/engine.md)."
)
class DeliveryWaiting:
    id: strawberry.ID = strawberry.field(description="The delivery's id.")
    reason: WaitingReason
    since: datetime = strawberry.field(description="When the wait began (the first failure).")
    retry_at: datetime | None = strawberry.field(description="When the engine tries next.")
    attempts: int = strawberry.field(description="Failed attempts since the wait began.")
    cause: str | None = strawberry.field(
        description='A plain account of the last failure, e.g. "connection refused".'
    )

    @classmethod
    def of(cls, d: m_delivery.Delivery) -> "DeliveryWaiting | None":
        if d.waiting_reason is None or d.waiting_since is None:
            return None
        return cls(
            id=strawberry.ID(str(d.id)),
            reason=d.waiting_reason,
            since=d.waiting_since,
            retry_at=d.waiting_retry_at,
            attempts=d.waiting_attempts,
            cause=d.waiting_cause,
        )


@strawberry.type(
    description="A delivery sent in waves (docs/send-time-and-waves.md): the plan, and where"
    " the sending is in it."
)
class Waves:
    id: strawberry.ID = strawberry.field(description="The delivery's id.")
    first_size: int
    size: int
    interval_minutes: int
    count: int = strawberry.field(description="Waves in all, for the messages to send.")
    current_wave: int = strawberry.field(
        description="The wave under way, from 1; 0 before the sending starts."
    )
    next_wave_at: datetime | None = strawberry.field(
        description="When the next wave starts; null after the last one, or once stopped."
    )
    waiting: int = strawberry.field(description="Messages of the waves not started yet.")

    @classmethod
    def of(cls, d: m_delivery.Delivery, now: datetime) -> "Waves | None":
        state = m_waves.state(d, now)
        if state is None:
            return None
        return cls(
            id=strawberry.ID(str(d.id)),
            first_size=state.plan.first_size,
            size=state.plan.size,
            interval_minutes=state.plan.interval_minutes,
            count=state.count,
            current_wave=state.current,
            next_wave_at=state.next_at,
            waiting=state.waiting,
        )


@strawberry.type(description="How many messages wait for their own send time, and until when.")
class SendTimeWait:
    id: strawberry.ID = strawberry.field(description="The delivery's id.")
    messages: int = strawberry.field(
        description="Messages whose send time (their recipient's zone, or their wave) has not"
        " come yet."
    )
    next_at: datetime | None = strawberry.field(description="When the next of them is due.")

    @classmethod
    def of(cls, d: m_delivery.Delivery, now: datetime) -> "SendTimeWait":
        waves = m_waves.state(d, now)
        key = strawberry.ID(str(d.id))
        if waves is not None:
            return cls(id=key, messages=waves.waiting, next_at=waves.next_at)
        count, next_at = m_send_time.waiting(d, now)
        return cls(id=key, messages=count, next_at=next_at)


AUDIENCE_PAGE = 1000


def reason_of(value: str | None) -> FailureReason | None:
    """A stored reason as the enum (an unknown one, from before the reasons were closed,
    reads UNDEFINED)."""
    if value is None:
        return None
    try:
        return FailureReason(value)
    except ValueError:
        return FailureReason.UNDEFINED


@strawberry.type(description="Who a delivery is sent to, as createDelivery took it.")
class DeliveryAudience:
    id: strawberry.ID = strawberry.field(description="The delivery's id.")
    _audience: strawberry.Private[dict[str, Any]]

    @strawberry.field(description="Every profile (then profileIds is empty).")
    def all_profiles(self) -> bool:
        return bool(self._audience.get("all"))

    @strawberry.field(description="How many profile ids the audience lists.")
    def profile_count(self) -> int:
        return len(self._audience.get("profileIds", []))

    @strawberry.field(
        description=f"The profile ids, in the order given: the first `first` of them"
        f" ({AUDIENCE_PAGE} when not given, at most {MAX_AUDIENCE_IDS}: all of them)."
    )
    def profile_ids(self, first: int | None = None) -> list[strawberry.ID]:
        size = AUDIENCE_PAGE if first is None else first
        if not 0 <= size <= MAX_AUDIENCE_IDS:
            raise BadInput(f"'first' must be between 0 and {MAX_AUDIENCE_IDS}")
        return [strawberry.ID(str(i)) for i in self._audience.get("profileIds", [])[:size]]


async def _operator(info: Info[Context, None], name: str | None) -> Operator | None:
    if name is None:
        return None
    found = await info.context.loaders.operators.load(name)
    return Operator.of(found, own=False) if found is not None else None


@strawberry.type(description="How a recurring delivery repeats (docs/scheduling.md).")
class Recurrence:
    id: strawberry.ID = strawberry.field(description="The delivery's id.")
    rule: str | None = strawberry.field(
        description="The RFC 5545 RRULE, read in the delivery's timeZone; null for a recurrence"
        " given by intervalSeconds."
    )
    interval_seconds: int | None = strawberry.field(
        description="The first form of recurrence: a fixed number of seconds.",
        deprecation_reason="Use rule.",
    )
    aggregation_period: AggregationPeriod
    description: str = strawberry.field(
        description='The rule in words, e.g. "every day at 09:00 (Europe/Madrid)".'
    )
    count: int | None
    confirm_each_occurrence: bool
    occurrences_created: int
    executions: int = strawberry.field(
        description="Executions so far; with an aggregation period several make one occurrence."
    )
    next_occurrence_at: datetime | None
    _model: strawberry.Private[m_delivery.Delivery]

    @strawberry.field(
        description=f"The next occurrences (UTC), at most {MAX_NEXT_OCCURRENCES}; none once the"
        " recurrence has ended or was stopped."
    )
    def next_occurrences(self, count: int = 5) -> list[datetime]:
        if not 0 <= count <= MAX_NEXT_OCCURRENCES:
            raise BadInput(f"count must be between 0 and {MAX_NEXT_OCCURRENCES}")
        d = self._model
        now = utcnow()
        if d.status in (m_delivery.S.FINISHED, m_delivery.S.STOPPED, m_delivery.S.FAILED):
            return []
        left = count
        if d.recurrence_count is not None:
            left = min(left, d.recurrence_count - max(d.executions, d.occurrences_created))
        after = d.next_occurrence_at or now
        return d.schedule(now).upcoming(after, max(left, 0))

    @classmethod
    def of(cls, d: m_delivery.Delivery) -> "Recurrence | None":
        if d.recurrence_interval is None and d.recurrence_rule is None:
            return None
        return cls(
            id=strawberry.ID(str(d.id)),
            rule=d.recurrence_rule,
            interval_seconds=d.recurrence_interval,
            aggregation_period=d.aggregation_period,
            description=describe(
                d.recurrence_rule, d.recurrence_interval, d.time_zone, d.recurrence_count
            ),
            count=d.recurrence_count,
            confirm_each_occurrence=d.confirm_each_occurrence,
            occurrences_created=d.occurrences_created,
            executions=max(d.executions, d.occurrences_created),
            next_occurrence_at=d.next_occurrence_at,
            _model=d,
        )


@strawberry.type
class Delivery:
    id: strawberry.ID
    label: str
    channel: Channel
    status: DeliveryStatus
    feedback_mode: FeedbackMode
    scheduled_at: datetime | None = strawberry.field(
        description="The contact date, in UTC (scheduledAtLocal: on timeZone's clock)."
    )
    time_zone: str = strawberry.field(
        description="The IANA zone of the contact date and of the recurrence (default UTC)."
    )
    validity_period: int
    confirmed_by: str | None = strawberry.field(
        deprecation_reason="The operator's name: use `confirmedByOperator`, the Operator itself."
    )
    confirmed_at: datetime | None
    subject: str | None
    body: str
    require_approval: bool
    require_proof: bool = strawberry.field(
        description="confirmSend refuses (INVALID_STATE) until a proof the MTA accepted has been"
        " sent since the last edit."
    )
    version: int = strawberry.field(
        description="Goes up by one on every edit, preparation and approval: pass the version you"
        " reviewed to confirmSend, which refuses a delivery that changed since."
    )
    approved_by: str | None = strawberry.field(
        deprecation_reason="The operator's name: use `approvedByOperator`, the Operator itself."
    )
    approved_at: datetime | None
    started_at: datetime | None
    valid_until: datetime | None
    sent_at: datetime | None
    ended_at: datetime | None
    stopped_by: str | None = strawberry.field(
        deprecation_reason="The operator's name: use `stoppedByOperator`, the Operator itself."
    )
    warnings: list[str]
    excluded_count: int
    parent_id: strawberry.ID | None
    recurrence: Recurrence | None
    period_start: datetime | None = strawberry.field(
        description="An occurrence that aggregates a period's executions: the period's start."
    )
    period_end: datetime | None = strawberry.field(description="... and its end (excluded).")
    send_in_recipient_time_zone: bool = strawberry.field(
        description="Each message leaves at the contact date's local time in its recipient's zone."
    )
    # Built with the delivery, not by a resolver: a page of 50 deliveries selects it 50 times,
    # and a resolver costs strawberry's wrapper on each (bench/RESULTS.md, "Fast lists").
    kpis: DeploymentKpis
    _model: strawberry.Private[m_delivery.Delivery]

    @strawberry.field(
        description="The contact date on the wall clock of timeZone, with its offset"
        " (e.g. 2027-03-29T09:00:00+02:00)."
    )
    def scheduled_at_local(self) -> datetime | None:
        return in_zone(self._model.scheduled_at, self._model.time_zone)

    @strawberry.field(description="The waves of a delivery sent in waves, else null.")
    def waves(self) -> Waves | None:
        return Waves.of(self._model, m_delivery.utcnow())

    @strawberry.field(
        description="Messages waiting for their own send time (recipients' zones, waves)."
    )
    def waiting_for_send_time(self) -> SendTimeWait:
        return SendTimeWait.of(self._model, m_delivery.utcnow())

    @strawberry.field(description="Who it is sent to: what updateDelivery takes back.")
    def audience(self) -> DeliveryAudience:
        key = strawberry.ID(str(self._model.id))
        return DeliveryAudience(id=key, _audience=self._model.audience or {})

    @strawberry.field(description="When the delivery was created.")
    def created_at(self) -> datetime:
        return self._model.created_at

    @strawberry.field(description="When the delivery last changed (its figures too).")
    def updated_at(self) -> datetime:
        return self._model.updated_at

    @strawberry.field(description="The operator who confirmed the send (null: not yet).")
    async def confirmed_by_operator(self, info: Info[Context, None]) -> Operator | None:
        return await _operator(info, self._model.confirmed_by)

    @strawberry.field(description="The operator who approved the delivery (null: not yet).")
    async def approved_by_operator(self, info: Info[Context, None]) -> Operator | None:
        return await _operator(info, self._model.approved_by)

    @strawberry.field(description="The operator who stopped the delivery (null: not stopped).")
    async def stopped_by_operator(self, info: Info[Context, None]) -> Operator | None:
        return await _operator(info, self._model.stopped_by)

    @strawberry.field(description="The recurring delivery this one is an occurrence of.")
    async def parent(self, info: Info[Context, None]) -> "Delivery | None":
        if self._model.parent_id is None:
            return None
        found = await info.context.loaders.deliveries.load(self._model.parent_id)
        return Delivery.of(found) if found is not None else None

    @strawberry.field(description="A recurring delivery's occurrences, newest first.")
    async def occurrences(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection["Delivery"]:
        asked = window(OCCURRENCES, first, after, last, before)
        page = await info.context.loaders.occurrences.load(PageKey(self._model.id, asked))
        return connection(page, asked, OCCURRENCES, by_id, Delivery.of)

    @strawberry.field(
        description="The KPIs over time, oldest first, for a chart of the whole send: one point"
        f" per {m_history.POINT_SECONDS} s at most while figures change, at most"
        f" {m_history.MAX_POINTS} points (older ones thinned out). Readable as `kpis` is."
    )
    async def kpi_history(self, info: Info[Context, None]) -> list[KpiHistoryPoint]:
        key = PageKey(self._model.id, Window(m_history.MAX_POINTS))
        newest = (await info.context.loaders.kpi_histories.load(key)).rows
        history = [KpiHistoryPoint.of(p, self._model.channel) for p in reversed(newest)]
        # The figures since the last stored point (a slot's later writes are not stored).
        d = self._model
        live = DeploymentKpis.of(replace(d.kpis, stats_computed_at=None), d.id, f"{d.id}@live")
        if not history or replace(history[-1].kpis, id=live.id) != live:
            history.append(KpiHistoryPoint(id=live.id, at=m_delivery.utcnow(), kpis=live))
        return history[-m_history.MAX_POINTS :]

    @strawberry.field(
        description="Why the delivery FAILED: the MTA's own words for administrators, a plain"
        " reason for everyone else (it may quote addresses and the relay's host)."
    )
    def failure_message(self, info: Info[Context, None]) -> str | None:
        detail = self._model.failure_message
        return detail if is_administrator(info) else plain_failure(detail)

    @strawberry.field(description="What the delivery waits for before it can go on, or null.")
    def waiting_for(self) -> DeliveryWaiting | None:
        return DeliveryWaiting.of(self._model)

    @strawberry.field(
        description="What the operator behind the token may do to this delivery now: its"
        " status and its roles allow these mutations (the same rules the mutations check)."
    )
    def allowed_actions(self, info: Info[Context, None]) -> list[DeliveryAction]:
        operator = info.context.operator
        roles = operator.role_set if operator is not None else frozenset()
        return allowed_actions(self._model, roles, utcnow())

    @strawberry.field(description="Exclusions at preparation, counted by reason.")
    async def exclusions(self, info: Info[Context, None]) -> list[ExclusionCause]:
        causes = await info.context.loaders.exclusions.load(self._model.id)
        found = [(reason_of(r) or FailureReason.UNDEFINED, n) for r, n in causes]
        key = self._model.id
        return [ExclusionCause(id=strawberry.ID(f"{key}:{r}"), reason=r, count=n) for r, n in found]

    @strawberry.field(
        description="The messages of this delivery, in id order, matching every filter given:"
        " `statuses` (any of them), `failureType`, `failureReason`, `search` (a"
        " case-insensitive part of the address), `excluded` (at preparation or not).",
        extensions=needs(Role.ADMINISTRATION),
    )
    async def sending_logs(
        self,
        info: Info[Context, None],
        status: SendingLogStatus | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        statuses: list[SendingLogStatus] | None = None,
        failure_type: FailureType | None = None,
        failure_reason: FailureReason | None = None,
        search: str | None = None,
        excluded: bool | None = None,
    ) -> Connection[SendingLog]:
        asked = window(SENDING_LOGS, first, after, last, before)
        where = log_filters(status, statuses, failure_type, failure_reason, search, excluded)
        return await sending_log_page(info, self._model.id, where, asked)

    @strawberry.field(
        description="Its proofs, newest first (at most 50). Any role: they name their recipients.",
        extensions=needs(ANY_ROLE),
    )
    async def proofs(self, info: Info[Context, None]) -> list[Proof]:
        key = PageKey(self._model.id, Window(MAX_PROOFS_LISTED))
        return [Proof.of(p) for p in (await info.context.loaders.proofs.load(key)).rows]

    @strawberry.field(
        description="Who did what to this delivery and when, oldest first (the engine's own"
        " steps too). Any operator may read it, as confirmedBy.",
        extensions=needs(),
    )
    async def audit_trail(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[AuditEvent]:
        asked = window(AUDIT_EVENTS, first, after, last, before)
        page = await info.context.loaders.audit_trails.load(PageKey(self._model.id, asked))
        return audit_connection(page, asked)

    @classmethod
    def of(cls, d: m_delivery.Delivery) -> "Delivery":
        """The delivery of a row: of a whole row, or of a list page's partial row
        (models/columns.py), whose fields of the columns not read are left out (reading one is
        an AttributeError, never a wrong value: DELIVERY_COLUMNS says what each field reads)."""
        row = d.__dict__
        self = cls.__new__(cls)
        fields = self.__dict__
        fields.update({name: row[name] for name in _COPIED if name in row})
        fields["id"] = strawberry.ID(str(d.id))
        fields["_model"] = d
        if "warnings" in row:
            fields["warnings"] = list(d.warnings)
        if "excluded" in row:
            fields["excluded_count"] = d.excluded
        if "parent_id" in row:
            fields["parent_id"] = strawberry.ID(str(d.parent_id)) if d.parent_id else None
        if "to_send" in row:  # the KPI columns were read (_KPI_COLUMNS)
            fields["kpis"] = DeploymentKpis.of(d.kpis, d.id)
        if not d._partial:
            fields["recurrence"] = Recurrence.of(d)
        return self


# Delivery's fields that are the model's column of the same name, as they are.
_COPIED = (
    "label",
    "channel",
    "status",
    "feedback_mode",
    "scheduled_at",
    "time_zone",
    "validity_period",
    "confirmed_by",
    "confirmed_at",
    "subject",
    "body",
    "require_approval",
    "require_proof",
    "version",
    "approved_by",
    "approved_at",
    "started_at",
    "valid_until",
    "sent_at",
    "ended_at",
    "stopped_by",
    "period_start",
    "period_end",
    "send_in_recipient_time_zone",
)
_KPI_COLUMNS = ("channel", "stats_computed_at", *COUNTERS)
_WAITING_COLUMNS = (
    "waiting_reason",
    "waiting_since",
    "waiting_retry_at",
    "waiting_attempts",
    "waiting_cause",
)
# The column each field of Delivery reads, its resolver included (the id is always read).
_ONE_COLUMN = {
    "label": "label",
    "channel": "channel",
    "status": "status",
    "feedbackMode": "feedback_mode",
    "scheduledAt": "scheduled_at",
    "timeZone": "time_zone",
    "validityPeriod": "validity_period",
    "confirmedBy": "confirmed_by",
    "confirmedAt": "confirmed_at",
    "subject": "subject",
    "body": "body",
    "requireApproval": "require_approval",
    "requireProof": "require_proof",
    "version": "version",
    "approvedBy": "approved_by",
    "approvedAt": "approved_at",
    "startedAt": "started_at",
    "validUntil": "valid_until",
    "sentAt": "sent_at",
    "endedAt": "ended_at",
    "stoppedBy": "stopped_by",
    "periodStart": "period_start",
    "periodEnd": "period_end",
    "sendInRecipientTimeZone": "send_in_recipient_time_zone",
    "warnings": "warnings",
    "excludedCount": "excluded",
    "parentId": "parent_id",
    "audience": "audience",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
    "confirmedByOperator": "confirmed_by",
    "approvedByOperator": "approved_by",
    "stoppedByOperator": "stopped_by",
    "parent": "parent_id",
    "failureMessage": "failure_message",
}
# The columns each field of Delivery reads, so that a list page reads only those
# (graphql_schema/selection.py). A field left out makes the page read whole rows: recurrence,
# waves, waitingForSendTime and allowedActions, which read many.
DELIVERY_COLUMNS: dict[str, tuple[str, ...]] = {
    "__typename": (),
    "id": (),
    **{name: (column,) for name, column in _ONE_COLUMN.items()},
    "scheduledAtLocal": ("scheduled_at", "time_zone"),
    "kpis": _KPI_COLUMNS,
    "kpiHistory": _KPI_COLUMNS,
    "waitingFor": _WAITING_COLUMNS,
    # read through loaders by the delivery's id
    "exclusions": (),
    "sendingLogs": (),
    "proofs": (),
    "auditTrail": (),
    "occurrences": (),
}


@strawberry.type(
    description="One snapshot of a delivery's progress; `id` is the delivery's, so that a"
    " normalised cache keeps the latest one, and its delivery and kpis update the delivery."
)
class DeploymentProgress:
    id: strawberry.ID = strawberry.field(description="The delivery's id.")
    delivery: Delivery
    status: DeliveryStatus
    kpis: DeploymentKpis
    at: datetime
    waiting_for: DeliveryWaiting | None = strawberry.field(
        default=None, description="What the delivery waits for before it can go on, or null."
    )
    waves: Waves | None = strawberry.field(
        default=None, description="Where a delivery sent in waves is: current wave, next start."
    )
    waiting_for_send_time: SendTimeWait | None = strawberry.field(
        default=None, description="Messages waiting for their own send time, as of `at`."
    )
    # One snapshot's results, shared by its subscribers (graphql_schema/execution.py).
    shared_results: strawberry.Private[dict[Any, Any]] = dataclasses.field(default_factory=dict)
