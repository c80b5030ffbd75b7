"""`python -m server serve | worker | migrate | operator create NAME --role ROLE ...`"""

import argparse
import asyncio
import sys

from pydantic import ValidationError

from models.enums import Role
from models.errors import DomainError
from server.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m server", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="apply migrations and run the server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    commands.add_parser(
        "worker", help="apply migrations and run the sending engine without the HTTP API"
    )
    commands.add_parser("migrate", help="apply pending database migrations and exit")
    operator = commands.add_parser("operator", help="manage operators")
    op_commands = operator.add_subparsers(dest="operator_command", required=True)
    create = op_commands.add_parser("create", help="create an operator and print its token")
    create.add_argument("name")
    create.add_argument(
        "--role",
        action="append",
        default=[],
        choices=[r.value for r in Role],
        help="repeat for several roles; none = no role",
    )
    return parser


async def _migrate(settings: Settings) -> None:
    from server.app import _ensure_sqlite_dir
    from server.db import apply_migrations

    _ensure_sqlite_dir(settings.database_url)
    await apply_migrations(settings.database_url)


async def _create_operator(settings: Settings, name: str, roles: list[str]) -> str:
    from tortoise import Tortoise

    from models.operator import create_operator
    from server.db import tortoise_config

    await _migrate(settings)
    await Tortoise.init(config=tortoise_config(settings.database_url))
    try:
        operator, token = await create_operator(name, [Role(r) for r in roles])
    finally:
        await Tortoise.close_connections()
    roles_text = ", ".join(operator.roles) or "no role"
    print(f"created operator {operator.name!r} (id {operator.id}) with {roles_text}")
    return token


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    if args.command == "serve":
        import uvicorn

        from server.app import create_app

        if settings.public_url is None:
            settings.public_url = f"http://{args.host}:{args.port}"
        try:
            app = create_app(settings)
        except ValueError as error:
            print(f"configuration error: {error}", file=sys.stderr)
            return 2
        app.state.freeze_gc_after_startup = True  # server/app.py: one app for the process
        # ws_max_size: a WebSocket message over the cap is refused (1009) before it is buffered
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_level="info",
            ws_max_size=settings.ws_max_message_bytes,
            ws_per_message_deflate=settings.ws_per_message_deflate,
        )
        return 0
    if args.command == "worker":
        import logging

        from server.worker import run_worker

        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
        try:
            asyncio.run(run_worker(settings))
        except ValueError as error:
            print(f"configuration error: {error}", file=sys.stderr)
            return 2
        return 0
    if args.command == "migrate":
        asyncio.run(_migrate(settings))
        print("migrations applied")
        return 0
    try:
        token = asyncio.run(_create_operator(settings, args.name, args.role))
    except DomainError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 2
    print(token)
    return 0
