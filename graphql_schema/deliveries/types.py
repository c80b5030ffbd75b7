"""Delivery, its KPIs, its sending logs and its progress, as the contract spells them."""

import dataclasses
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from graphql_schema.audit.types import KIND, AuditEventConnection, audit_connection
from graphql_schema.context import Context
from graphql_schema.enums import (
    Channel,
    DeliveryStatus,
    FailureType,
    FeedbackMode,
    SendingLogStatus,
    WaitingReason,
)
from graphql_schema.loaders import PageKey
from graphql_schema.pagination import (
    PageInfo,
    decode_cursor,
    encode_cursor,
    page_info,
    page_size,
)
from graphql_schema.permissions import is_administrator, require, require_any_role
from models import delivery as m_delivery
from models import enums as m_enums
from models import kpi_history as m_history
from models import sending_log as m_log
from models.enums import Role
from models.kpis import COUNTERS, Kpis
from models.redaction import plain_failure

if TYPE_CHECKING:
    from graphql_schema.profiles.types import Profile


@strawberry.type
class DeploymentKpis:
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

    @classmethod
    def of(cls, k: Kpis) -> "DeploymentKpis":
        return cls(
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
    at: datetime
    kpis: DeploymentKpis

    @classmethod
    def of(cls, point: m_history.KpiPoint, channel: m_enums.Channel) -> "KpiHistoryPoint":
        figures = {name: getattr(point, name) for name in COUNTERS}
        return cls(
            at=point.at,
            kpis=DeploymentKpis.of(Kpis(**figures, stats_computed_at=None, channel=channel)),
        )


@strawberry.type(description="The number of recipients excluded at preparation, by reason.")
class ExclusionCause:
    reason: str
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

    # A profile's history is open to every role; its failure details and message ids are
    # for administrators only (SPEC §1), whichever path reaches the log.
    @strawberry.field
    def failure_type(self, info: Info[Context, None]) -> FailureType | None:
        require(info, Role.ADMINISTRATION)
        return self._log.failure_type

    @strawberry.field
    def failure_reason(self, info: Info[Context, None]) -> str | None:
        require(info, Role.ADMINISTRATION)
        return self._log.failure_reason

    @strawberry.field
    def message_id(self, info: Info[Context, None]) -> str | None:
        require(info, Role.ADMINISTRATION)
        return self._log.message_id

    @strawberry.field(description="When the recipient first reported this message as spam.")
    def complained_at(self, info: Info[Context, None]) -> datetime | None:
        require(info, Role.ADMINISTRATION)
        return self._log.complained_at

    @strawberry.field(description="When the recipient first unsubscribed from this message.")
    def unsubscribed_at(self, info: Info[Context, None]) -> datetime | None:
        require(info, Role.ADMINISTRATION)
        return self._log.unsubscribed_at

    @strawberry.field
    async def profile(
        self, info: Info[Context, None]
    ) -> Annotated["Profile", strawberry.lazy("graphql_schema.profiles.types")] | None:
        from graphql_schema.profiles.types import Profile

        require_any_role(info)
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


@strawberry.type
class SendingLogEdge:
    cursor: str
    node: SendingLog


@strawberry.type
class SendingLogConnection:
    edges: list[SendingLogEdge]
    page_info: PageInfo
    total_count: int


async def sending_log_page(
    info: Info[Context, None],
    delivery_id: int,
    status: SendingLogStatus | None,
    first: int | None,
    after: str | None,
) -> SendingLogConnection:
    """Sending logs hold personal data: administrators only (SPEC §1). One query for the pages
    of every delivery the execution asks about (graphql_schema/loaders.py)."""
    require(info, Role.ADMINISTRATION)
    where = (("status", status),) if status is not None else ()
    key = PageKey(delivery_id, page_size(first), decode_cursor("SendingLog", after), where)
    page = await info.context.loaders.sending_logs.load(key)
    edges = [
        SendingLogEdge(cursor=encode_cursor("SendingLog", r.id), node=SendingLog.of(r))
        for r in page.rows
    ]
    return SendingLogConnection(
        edges=edges, page_info=page_info(edges, page.has_next), total_count=page.total
    )


@strawberry.type(
    description="What a delivery IN_PROGRESS is waiting for: the MTA is down, busy or"
    " unreachable, so the engine backs off and tries again by itself (docs/engine.md)."
)
class DeliveryWaiting:
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
            reason=d.waiting_reason,
            since=d.waiting_since,
            retry_at=d.waiting_retry_at,
            attempts=d.waiting_attempts,
            cause=d.waiting_cause,
        )


@strawberry.type
class Recurrence:
    interval_seconds: int
    count: int | None
    confirm_each_occurrence: bool
    occurrences_created: int
    next_occurrence_at: datetime | None


@strawberry.type
class Delivery:
    id: strawberry.ID
    label: str
    channel: Channel
    status: DeliveryStatus
    feedback_mode: FeedbackMode
    scheduled_at: datetime | None
    validity_period: int
    confirmed_by: str | None
    confirmed_at: datetime | None
    subject: str | None
    body: str
    require_approval: bool
    version: int = strawberry.field(
        description="Goes up by one on every edit, preparation and approval: pass the version you"
        " reviewed to confirmSend, which refuses a delivery that changed since."
    )
    approved_by: str | None
    approved_at: datetime | None
    started_at: datetime | None
    valid_until: datetime | None
    sent_at: datetime | None
    ended_at: datetime | None
    stopped_by: str | None
    warnings: list[str]
    excluded_count: int
    parent_id: strawberry.ID | None
    recurrence: Recurrence | None
    _model: strawberry.Private[m_delivery.Delivery]

    @strawberry.field
    def kpis(self) -> DeploymentKpis:
        return DeploymentKpis.of(self._model.kpis)

    @strawberry.field(
        description="The KPIs over time, oldest first, for a chart of the whole send: one point"
        f" per {m_history.POINT_SECONDS} s at most while figures change, at most"
        f" {m_history.MAX_POINTS} points (older ones thinned out). Readable as `kpis` is."
    )
    async def kpi_history(self) -> list[KpiHistoryPoint]:
        points = await m_history.history(self._model.id)
        history = [KpiHistoryPoint.of(p, self._model.channel) for p in points]
        # The figures since the last stored point (a slot's later writes are not stored).
        live = DeploymentKpis.of(replace(self._model.kpis, stats_computed_at=None))
        if not history or history[-1].kpis != live:
            history.append(KpiHistoryPoint(at=m_delivery.utcnow(), kpis=live))
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

    @strawberry.field(description="Exclusions at preparation, counted by reason.")
    async def exclusions(self, info: Info[Context, None]) -> list[ExclusionCause]:
        causes = await info.context.loaders.exclusions.load(self._model.id)
        return [ExclusionCause(reason=r, count=n) for r, n in causes]

    @strawberry.field
    async def sending_logs(
        self,
        info: Info[Context, None],
        status: SendingLogStatus | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> SendingLogConnection:
        return await sending_log_page(info, self._model.id, status, first, after)

    @strawberry.field(
        description="Who did what to this delivery and when, oldest first (the engine's own"
        " steps too). Any operator may read it, as confirmedBy."
    )
    async def audit_trail(
        self, info: Info[Context, None], first: int | None = None, after: str | None = None
    ) -> AuditEventConnection:
        require(info)
        key = PageKey(self._model.id, page_size(first), decode_cursor(KIND, after))
        page = await info.context.loaders.audit_trails.load(key)
        return audit_connection(page.rows, page.has_next, page.total)

    @classmethod
    def of(cls, d: m_delivery.Delivery) -> "Delivery":
        recurrence = None
        if d.recurrence_interval is not None:
            recurrence = Recurrence(
                interval_seconds=d.recurrence_interval,
                count=d.recurrence_count,
                confirm_each_occurrence=d.confirm_each_occurrence,
                occurrences_created=d.occurrences_created,
                next_occurrence_at=d.next_occurrence_at,
            )
        return cls(
            id=strawberry.ID(str(d.id)),
            label=d.label,
            channel=d.channel,
            status=d.status,
            feedback_mode=d.feedback_mode,
            scheduled_at=d.scheduled_at,
            validity_period=d.validity_period,
            confirmed_by=d.confirmed_by,
            confirmed_at=d.confirmed_at,
            subject=d.subject,
            body=d.body,
            require_approval=d.require_approval,
            version=d.version,
            approved_by=d.approved_by,
            approved_at=d.approved_at,
            started_at=d.started_at,
            valid_until=d.valid_until,
            sent_at=d.sent_at,
            ended_at=d.ended_at,
            stopped_by=d.stopped_by,
            warnings=list(d.warnings),
            excluded_count=d.excluded,
            parent_id=strawberry.ID(str(d.parent_id)) if d.parent_id else None,
            recurrence=recurrence,
            _model=d,
        )


@strawberry.type
class DeliveryEdge:
    cursor: str
    node: Delivery


@strawberry.type
class DeliveryConnection:
    edges: list[DeliveryEdge]
    page_info: PageInfo
    total_count: int


@strawberry.type
class DeploymentProgress:
    delivery: Delivery
    status: DeliveryStatus
    kpis: DeploymentKpis
    at: datetime
    waiting_for: DeliveryWaiting | None = strawberry.field(
        default=None, description="What the delivery waits for before it can go on, or null."
    )
    # One snapshot's results, shared by its subscribers (graphql_schema/execution.py).
    shared_results: strawberry.Private[dict[Any, Any]] = dataclasses.field(default_factory=dict)
