"""`python -m server worker`: the sending engine (dispatcher, scheduler) and the MTA adapter
without the HTTP API, so that API processes (ENGINE_ENABLED=false) and sending workers scale
apart on one PostgreSQL database. Webhooks, tracking and the feedback endpoint are HTTP: they
stay in `serve`. With INBOUND_SMTP set, the worker (like `serve`) also runs the inbound SMTP
listener for bounces; `python -m server inbound` runs that listener alone. See docs/deploy.md
and docs/bounces.md."""

import asyncio
import logging
import signal
from dataclasses import dataclass

from tortoise import Tortoise

from models.kpi_history import forget_slots
from server.bus import EventBus, default_prefix, make_bus
from server.db import apply_migrations, tortoise_config
from server.engine import Engine
from server.engine.intake import FeedbackIntake
from server.inbound.listener import InboundListener
from server.mta import make_mta
from server.mta.base import Mta
from server.settings import Settings

log = logging.getLogger("server.worker")


@dataclass
class Core:
    """What sends: the same composition in `serve` (create_app) and in `worker`."""

    bus: EventBus
    mta: Mta
    intake: FeedbackIntake
    engine: Engine | None
    inbound: InboundListener | None = None  # with INBOUND_SMTP (docs/bounces.md)


def build_core(settings: Settings, *, engine: bool) -> Core:
    prefix = settings.event_bus_prefix or default_prefix(settings.database_url)
    bus = make_bus(settings.event_bus_url, prefix)
    mta = make_mta(settings)  # fail at start-up on a bad MTA_URL, not at first send
    intake = FeedbackIntake(bus, settings.quarantine_threshold, settings.quarantine_gap_hours)
    inbound = InboundListener(settings, intake) if settings.inbound_smtp else None
    return Core(bus, mta, intake, Engine(settings, bus, mta, intake) if engine else None, inbound)


async def run_worker(
    settings: Settings, stop: asyncio.Event | None = None, *, engine: bool = True
) -> None:
    """Run until SIGTERM / SIGINT (or `stop`), then let the engine finish its batch. Without
    `engine`, only the inbound listener runs (`python -m server inbound`)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    core = build_core(settings, engine=engine)
    await apply_migrations(settings.database_url)
    await Tortoise.init(config=tortoise_config(settings.database_url))
    forget_slots()
    try:
        if core.engine is not None:
            await core.mta.start(core.intake)
            await core.engine.start()
            log.info("worker started: engine running (batch %s)", settings.batch_size)
        if core.inbound is not None:
            await core.inbound.start()
        try:
            await stop.wait()
        finally:
            log.info("worker stopping: finishing the batch in flight")
            if core.inbound is not None:
                await core.inbound.close()
            if core.engine is not None:
                await core.engine.stop()
                await core.mta.close()
            await core.bus.close()
    finally:
        await Tortoise.close_connections()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("worker stopped")
