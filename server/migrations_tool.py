"""`python -m server.migrations_tool [--check] [--name NAME]`: write or check migrations.

Writes a migration for every model change (tortoise's autodetector), or with --check exits 1
when a model change has no migration (what CI runs). Needs no database.
"""

import argparse
import asyncio
import sys

from tortoise import Tortoise
from tortoise.migrations.autodetector import MigrationAutodetector
from tortoise.migrations.writer import format_migration_name

from server.db import tortoise_config


async def pending(write: bool, name: str | None) -> list[str]:
    config = tortoise_config("sqlite://:memory:")
    context = await Tortoise.init(config=config, init_connections=False)
    try:
        assert context.apps is not None
        writers = await MigrationAutodetector(context.apps, config["apps"]).changes()
        found = []
        for writer in writers:
            found += [op.describe() for op in writer.operations]
            if write:
                if name:
                    writer.name = format_migration_name(int(writer.name.split("_", 1)[0]), name)
                print(f"wrote {writer.write()}")
        return found
    finally:
        await Tortoise.close_connections()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server.migrations_tool")
    parser.add_argument("--check", action="store_true", help="exit 1 if a migration is missing")
    parser.add_argument("--name", help="name of the new migration")
    args = parser.parse_args(argv)
    changes = asyncio.run(pending(write=not args.check, name=args.name))
    if args.check:
        if changes:
            print("model changes without a migration:", *changes, sep="\n  ", file=sys.stderr)
            print("run: python -m server.migrations_tool --name NAME", file=sys.stderr)
            return 1
        print("migrations are up to date")
    elif not changes:
        print("no model changes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
