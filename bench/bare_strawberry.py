"""The baseline of the HTTP and WebSocket benches: a bare strawberry app with the same shapes.

    python -m uvicorn bare_strawberry:app --port P --log-level info   (cwd or PYTHONPATH: bench/)

`strawberry.asgi.GraphQL` on a plain `strawberry.Schema` (no extension, no authentication, no
database), mounted like the real server's (`Route` + `WebSocketRoute` on /graphql,
graphql-transport-ws only) and served by uvicorn with the defaults `python -m server serve`
uses, so that what the real server adds shows as the difference:

- `me { id }`: a constant;
- `deliveries(first:)`: that many in-memory deliveries with the real `Delivery` fields the
  benches select (id label status kpis { ... }), plus totalCount and pageInfo;
- `sendingLogs(deliveryId:, first:)` and `profile(id:) { history(first:) }`: that many
  in-memory sending logs with the fields the benches select;
- `deploymentProgress(deliveryId:)`: one shared snapshot, handed to every subscriber when
  `POST /tick` replaces it (the snapshot's `at` is the time of the tick): the real server's
  fan-out pattern (one watcher, many subscribers) without the database read;
- `GET /health`, and `GET /pid` (the process id, for the memory bench).

`app` is strawberry as it comes (each request parsed and validated); `cached_app` adds
strawberry's own ParserCache and ValidationCache (the real server has a validation cache).
"""

import asyncio
import enum
import os
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime

import strawberry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, SchemaExtension, ValidationCache
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL


@strawberry.enum
class DeliveryStatus(enum.Enum):
    IN_PROGRESS = "IN_PROGRESS"
    SENT = "SENT"


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
    open_rate: float
    click_through_rate: float
    stats_computed_at: datetime | None


@strawberry.type
class Delivery:
    id: strawberry.ID
    label: str
    status: DeliveryStatus
    kpis: DeploymentKpis


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class DeliveryEdge:
    cursor: str
    node: Delivery


@strawberry.type
class DeliveryConnection:
    edges: list[DeliveryEdge]
    page_info: PageInfo
    total_count: int


@strawberry.enum
class SendingLogStatus(enum.Enum):
    TO_SEND = "TO_SEND"
    SENT = "SENT"


@strawberry.type
class SendingLog:
    id: strawberry.ID
    address: str
    status: SendingLogStatus
    retries: int
    event_at: datetime | None
    excluded: bool
    failure_reason: str | None


@strawberry.type
class SendingLogEdge:
    cursor: str
    node: SendingLog


@strawberry.type
class SendingLogConnection:
    edges: list[SendingLogEdge]
    page_info: PageInfo
    total_count: int


@strawberry.type
class Profile:
    id: strawberry.ID
    email: str | None

    @strawberry.field
    def history(self, first: int | None = None) -> list[SendingLog]:
        return [log(i) for i in range(first or 50, 0, -1)]


def log(i: int) -> SendingLog:
    return SendingLog(
        id=strawberry.ID(str(i)),
        address=f"reader{i}@example.com",
        status=SendingLogStatus.TO_SEND,
        retries=0,
        event_at=None,
        excluded=False,
        failure_reason=None,
    )


@strawberry.type
class Operator:
    id: strawberry.ID
    name: str


@strawberry.type
class DeploymentProgress:
    delivery: Delivery
    status: DeliveryStatus
    kpis: DeploymentKpis
    at: datetime


def kpis(sent: int) -> DeploymentKpis:
    return DeploymentKpis(
        to_send=10_000,
        processed=10_000,
        sent=sent,
        pending=10_000 - sent,
        failed=0,
        delivered_rate=round(sent / 100, 2),
        bounces_and_errors_rate=0.0,
        opens=0,
        clicks=0,
        open_rate=0.0,
        click_through_rate=0.0,
        stats_computed_at=None,
    )


def delivery(i: int, sent: int = 0) -> Delivery:
    return Delivery(
        id=strawberry.ID(str(i)),
        label=f"delivery {i}",
        status=DeliveryStatus.IN_PROGRESS,
        kpis=kpis(sent),
    )


class Ticker:
    """The one shared snapshot; each tick replaces it and wakes every subscriber."""

    def __init__(self) -> None:
        self.version = 0
        self.snapshot = DeploymentProgress(
            delivery=delivery(1), status=DeliveryStatus.IN_PROGRESS, kpis=kpis(0), at=now()
        )
        self.changed = asyncio.Condition()

    async def tick(self, sent: int) -> None:
        d = delivery(1, sent)
        async with self.changed:
            self.snapshot = DeploymentProgress(delivery=d, status=d.status, kpis=d.kpis, at=now())
            self.version += 1
            self.changed.notify_all()

    async def follow(self) -> AsyncGenerator[DeploymentProgress, None]:
        seen = -1
        while True:
            async with self.changed:
                while self.version <= seen:
                    await self.changed.wait()
                seen, snap = self.version, self.snapshot
            yield snap


def now() -> datetime:
    return datetime.now(UTC)


ticker = Ticker()


@strawberry.type
class Query:
    @strawberry.field
    def me(self) -> Operator:
        return Operator(id=strawberry.ID("1"), name="bench")

    @strawberry.field
    def deliveries(self, first: int | None = None, after: str | None = None) -> DeliveryConnection:
        nodes = [delivery(i) for i in range(first or 50, 0, -1)]
        return DeliveryConnection(
            edges=[DeliveryEdge(cursor=f"c{n.id}", node=n) for n in nodes],
            page_info=PageInfo(has_next_page=True, end_cursor=f"c{nodes[-1].id}"),
            total_count=100,
        )

    @strawberry.field
    def sending_logs(
        self, delivery_id: strawberry.ID, first: int | None = None, after: str | None = None
    ) -> SendingLogConnection:
        nodes = [log(i) for i in range(1, (first or 50) + 1)]
        return SendingLogConnection(
            edges=[SendingLogEdge(cursor=f"c{n.id}", node=n) for n in nodes],
            page_info=PageInfo(has_next_page=True, end_cursor=f"c{nodes[-1].id}"),
            total_count=100,
        )

    @strawberry.field
    def profile(self, id: strawberry.ID) -> Profile | None:
        return Profile(id=id, email="reader1@example.com")


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def deployment_progress(
        self, delivery_id: strawberry.ID
    ) -> AsyncGenerator[DeploymentProgress, None]:
        async for snap in ticker.follow():
            yield snap


def graphql_app(*extensions: Callable[[], SchemaExtension]) -> GraphQL[None, None]:
    schema = strawberry.Schema(query=Query, subscription=Subscription, extensions=extensions)
    return GraphQL(schema, subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,))


async def tick(request: Request) -> JSONResponse:
    sent = int((await request.json())["sent"])
    await ticker.tick(sent)
    return JSONResponse({"version": ticker.version})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def pid(request: Request) -> JSONResponse:
    return JSONResponse({"pid": os.getpid()})


def starlette_app(graphql: GraphQL[None, None]) -> Starlette:
    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/tick", tick, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/pid", pid, methods=["GET"]),
        ]
    )


# strawberry as it comes: every request parsed and validated.
app = starlette_app(graphql_app())
# With strawberry's own caches of parsed and validated documents, as the real server has.
cached_app = starlette_app(
    graphql_app(lambda: ParserCache(maxsize=256), lambda: ValidationCache(maxsize=256))
)
