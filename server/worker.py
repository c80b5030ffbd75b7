"""`python -m server worker`: the sending engine (dispatcher, scheduler) and the MTA adapter
without the HTTP API, so that API processes (ENGINE_ENABLED=false) and sending workers scale
apart on one PostgreSQL database. Webhooks, tracking and the feedback endpoint are HTTP: they
stay in `serve`. See docs/deploy.md."""

import asyncio
import logging
import signal
from dataclasses import dataclass

from tortoise import Tortoise

from server.bus import EventBus, default_prefix, make_bus
from server.db import apply_migrations, tortoise_config
from server.engine import Engine
from server.engine.intake import FeedbackIntake
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


def build_core(settings: Settings, *, engine: bool) -> Core:
    prefix = settings.event_bus_prefix or default_prefix(settings.database_url)
    bus = make_bus(settings.event_bus_url, prefix)
    mta = make_mta(settings)  # fail at start-up on a bad MTA_URL, not at first send
    intake = FeedbackIntake(bus, settings.quarantine_threshold, settings.quarantine_gap_hours)
    return Core(bus, mta, intake, Engine(settings, bus, mta, intake) if engine else None)


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until SIGTERM / SIGINT (or `stop`), then let the engine finish its batch."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    core = build_core(settings, engine=True)
    assert core.engine is not None
    await apply_migrations(settings.database_url)
    await Tortoise.init(config=tortoise_config(settings.database_url))
    try:
        await core.mta.start(core.intake)
        await core.engine.start()
        log.info("worker started: engine running (batch %s)", settings.batch_size)
        try:
            await stop.wait()
        finally:
            log.info("worker stopping: finishing the batch in flight")
            await core.engine.stop()
            await core.mta.close()
            await core.bus.close()
    finally:
        await Tortoise.close_connections()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("worker stopped")
