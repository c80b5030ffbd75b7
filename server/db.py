"""Database configuration and migrations (tortoise's built-in migrator)."""

from typing import Any

from tortoise import Tortoise
from tortoise.migrations.api import migrate

from models import MODEL_MODULES


def normalise_url(url: str) -> str:
    """Accept the common spellings: postgresql:// is postgres:// for tortoise."""
    if url.startswith("postgresql://"):
        return "postgres://" + url[len("postgresql://") :]
    return url


def tortoise_config(database_url: str) -> dict[str, Any]:
    url = normalise_url(database_url)
    if url.startswith("sqlite://") and "busy_timeout" not in url:
        url += ("&" if "?" in url else "?") + "busy_timeout=10000"
    return {
        "connections": {"default": url},
        "apps": {
            "models": {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "models.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


async def apply_migrations(database_url: str) -> None:
    """Bring the schema up to date. Call before the ORM is registered for the app."""
    await migrate(config=tortoise_config(database_url))
    await Tortoise.close_connections()
