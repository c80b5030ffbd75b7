"""`python -m server serve | worker | inbound | migrate | operator create|revoke|rotate NAME ...`"""

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
    commands.add_parser(
        "inbound",
        help="apply migrations and run the inbound SMTP listener alone (bounces and feedback-loop"
        " reports to the VERP addresses of BOUNCE_DOMAIN; needs INBOUND_SMTP)",
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
    revoke = op_commands.add_parser(
        "revoke",
        help="revoke an operator: its token stops working everywhere, open WebSockets included"
        " (within TOKEN_CACHE_SECONDS)",
    )
    revoke.add_argument("name")
    rotate = op_commands.add_parser(
        "rotate", help="give an operator a new token (printed on the last line); the old one stops"
    )
    rotate.add_argument("name")
    return parser


async def _migrate(settings: Settings) -> None:
    from server.db import apply_migrations

    await apply_migrations(settings.database_url)


async def _operator_command(settings: Settings, args: argparse.Namespace) -> str | None:
    """Run one `operator` command on the database; the token to print last, if any."""
    from tortoise import Tortoise

    from models import operator as m_operator
    from models.audit import COMMAND_LINE
    from server.db import tortoise_config

    if args.operator_command == "create":
        m_operator.operator_name(args.name)  # refused before the database is even opened
    await _migrate(settings)
    await Tortoise.init(config=tortoise_config(settings.database_url))
    try:
        if args.operator_command == "create":
            created, token = await m_operator.create_operator(
                args.name, [Role(r) for r in args.role]
            )
            roles_text = ", ".join(created.roles) or "no role"
            print(f"created operator {created.name!r} (id {created.id}) with {roles_text}")
            return token
        if args.operator_command == "rotate":
            rotated, token = await m_operator.rotate_operator_token(COMMAND_LINE, name=args.name)
            print(
                f"new token for operator {rotated.name!r} (id {rotated.id}); the old one no"
                f" longer works (servers forget it within TOKEN_CACHE_SECONDS,"
                f" {settings.token_cache_seconds:g} s)"
            )
            return token
        revoked = await m_operator.revoke_operator(COMMAND_LINE, name=args.name)
        print(
            f"revoked operator {revoked.name!r} (id {revoked.id}): its token stops working,"
            f" open WebSockets included, within TOKEN_CACHE_SECONDS"
            f" ({settings.token_cache_seconds:g} s)"
        )
        return None
    finally:
        await Tortoise.close_connections()


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
        sys.setswitchinterval(settings.switch_interval_seconds)  # the process is ours too
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
    if args.command in ("worker", "inbound"):
        import logging

        from server.worker import run_worker

        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
        if args.command == "inbound" and not settings.inbound_smtp:
            print("configuration error: inbound needs INBOUND_SMTP=host:port", file=sys.stderr)
            return 2
        try:
            asyncio.run(run_worker(settings, engine=args.command == "worker"))
        except ValueError as error:
            print(f"configuration error: {error}", file=sys.stderr)
            return 2
        return 0
    if args.command == "migrate":
        asyncio.run(_migrate(settings))
        print("migrations applied")
        return 0
    try:
        token = asyncio.run(_operator_command(settings, args))
    except DomainError as error:
        # stderr and a non-zero status, nothing on stdout: `TOKEN=$(... | tail -n 1)` gets
        # an empty string (and `set -o pipefail` stops the script), never this message.
        print(f"error: {error.message}", file=sys.stderr)
        return 2
    if token is not None:
        print(token)
    return 0
