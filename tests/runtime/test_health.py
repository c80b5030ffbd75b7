"""`GET /health` (server/health.py): it answers while a write transaction holds the server's
database connection (on SQLite, tortoise's only one)."""

import asyncio

from tortoise.transactions import in_transaction

from models.sql import Sql
from tests.support.client import http_client
from tests.support.server import RunningServer


async def test_health_answers_while_a_transaction_holds_the_connection(
    server: RunningServer,
) -> None:
    async with http_client(server.base_url, timeout=30) as http:
        assert (await http.get("/health")).json() == {"status": "ok"}
        async with in_transaction() as conn:  # what a feedback batch does, in this process
            await Sql(conn).execute("UPDATE operator SET name = name")
            # before the transaction ends: /health does not wait for the connection
            response = await asyncio.wait_for(http.get("/health"), 20)
            assert response.status_code == 200
