"""The composition root: settings -> database, bus, MTA, engine, GraphQL and HTTP endpoints."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from tortoise.contrib.starlette import RegisterTortoise

from models.kpi_history import forget_slots
from server.bus import EventBus
from server.db import apply_migrations, tortoise_config
from server.engine import Engine
from server.engine.intake import FeedbackIntake
from server.gc_tuning import GcTuning
from server.graphql_app import GraphQLApp
from server.health import Health
from server.http import Endpoints
from server.http.auth_failures import AuthFailures
from server.http.dashboard import Dashboard
from server.http.feedback import feedback_endpoint
from server.http.graphiql import GraphiQL
from server.http.limits import BodyLimit
from server.http.log_export import LogExportEndpoints
from server.http.profile_import import PATH, ProfileImportEndpoint
from server.http.ses import SesWebhook
from server.http.sparkpost import SparkPostWebhook
from server.http.tracking import TrackingEndpoints
from server.http.websocket_guard import WebSocketGuard
from server.mta.base import Mta
from server.progress import ProgressHub
from server.settings import DEFAULT_SECRET, Settings
from server.worker import build_core

log = logging.getLogger("server")


@dataclass
class Runtime:
    settings: Settings
    bus: EventBus
    mta: Mta
    intake: FeedbackIntake
    hub: ProgressHub
    engine: Engine | None
    gc_tuning: GcTuning


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    if settings.feedback_secret == DEFAULT_SECRET:
        log.warning("FEEDBACK_SECRET is not set: anyone who reads the docs can forge MTA feedback")
    core = build_core(settings, engine=settings.engine_enabled)  # shared with `worker`
    bus, mta, intake, engine = core.bus, core.mta, core.intake, core.engine
    hub = ProgressHub(bus, settings.progress_interval_seconds)
    graphql = GraphQLApp(settings, bus, hub, mta)
    runtime = Runtime(settings, bus, mta, intake, hub, engine, graphql.gc_tuning)
    endpoints: list[Endpoints] = [
        ProfileImportEndpoint(settings, graphql.imports_schema, graphql.tokens, graphql.imports),
        LogExportEndpoints(graphql.tokens),
        GraphiQL(settings),
        Dashboard(settings),
        TrackingEndpoints(settings, intake.changed),
        SparkPostWebhook(settings, intake),
        SesWebhook(settings, intake),
    ]

    async def feedback(request: Request) -> JSONResponse:
        return await feedback_endpoint(settings.feedback_secret, intake)(request)

    probe = Health(settings.database_url)

    async def health(request: Request) -> JSONResponse:
        await probe.check()
        return JSONResponse({"status": "ok"})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await apply_migrations(settings.database_url)
        async with RegisterTortoise(app, config=tortoise_config(settings.database_url)):
            forget_slots()
            await hub.start()
            for group in endpoints:
                await group.start()
            await mta.start(intake)
            if engine is not None:
                await engine.start()
            # Start-up's objects, then long-lived sockets and subscriptions, out of full
            # garbage collections (server/gc_tuning.py); `serve` sets this: one app a process.
            if getattr(app.state, "freeze_gc_after_startup", False):
                graphql.gc_tuning.start()
            if core.inbound is not None:  # INBOUND_SMTP: bounces by mail (docs/bounces.md)
                await core.inbound.start()
            try:
                yield
            finally:
                graphql.gc_tuning.close()
                if core.inbound is not None:
                    await core.inbound.close()
                if engine is not None:
                    await engine.stop()
                await mta.close()
                for group in reversed(endpoints):
                    await group.close()
                await hub.close()
                await bus.close()
                await probe.close()

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute(
                "/graphql",
                WebSocketGuard(
                    graphql,
                    settings.ws_max_message_bytes,
                    max_per_client=settings.ws_max_sockets_per_client,
                    max_per_operator=settings.ws_max_sockets_per_operator,
                    operator_of=graphql.tokens.operator,
                ),
            ),
            Route("/mta/feedback", feedback, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            *(route for group in endpoints for route in group.routes),
        ],
        # The CSV upload has its own limit (PROFILE_IMPORT_MAX_BYTES), checked as it reads.
        middleware=[Middleware(BodyLimit, max_bytes=settings.max_body_bytes, own_limit=(PATH,))],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.auth_failures = AuthFailures.from_settings(settings)  # server/http/auth_failures.py
    return app
