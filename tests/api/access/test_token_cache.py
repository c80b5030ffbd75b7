"""Bearer tokens are looked up once per TOKEN_CACHE_SECONDS, not once per request: a removed
operator's token works until then, and not after; an unknown token is never remembered."""

import asyncio
from typing import Any

import pytest

from models.operator import Operator, hash_token
from tests.support.server import api_for

ME = "{ me { name } }"


@pytest.mark.parametrize("ttl", [0.0, 0.5])
async def test_a_removed_operator_is_refused_once_its_token_is_forgotten(
    make_server: Any, ttl: float
) -> None:
    running = await make_server(token_cache_seconds=ttl)
    async for api in api_for(running):
        token = api.tokens["reader"]
        assert (await api.raw(ME, token=token))["data"]["me"]["name"].startswith("reader")
        await Operator.filter(token_hash=hash_token(token)).delete()
        cached = await api.raw(ME, token=token)
        if ttl:
            assert cached["data"]["me"]["name"].startswith("reader")  # remembered ...
            await asyncio.sleep(ttl + 0.1)
        refused = await api.raw(ME, token=token)
        assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"  # ... not after
        assert (await api.raw(ME, token="not-a-token"))["errors"][0]["extensions"][
            "code"
        ] == "UNAUTHENTICATED"
