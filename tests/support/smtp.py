"""Relaying over SMTP to a real aiosmtpd sink: the sinks, a server that relays to one, a send."""

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from tests.support import flows
from tests.support.client import Api
from tests.support.server import RunningServer, api_for

FIELDS = "id status failureMessage kpis { toSend processed sent pending failed }"


@contextlib.asynccontextmanager
async def relaying(
    make_server: Callable[..., Any], url: str, **settings: Any
) -> AsyncIterator[tuple[Api, RunningServer]]:
    running: RunningServer = await make_server(mta_url=url, **settings)
    async for api in api_for(running):
        yield api, running


async def send(
    api: Api, people: list[dict[str, Any]], until: Callable[[dict[str, Any]], bool], **extra: Any
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Import the profiles, send them a delivery, wait for `until`; (delivery, logs by address)."""
    data = await api.gql(
        "mutation($p: [ProfileInput!]!) { importProfiles(profiles: $p) { profiles { id } } }",
        {"p": people},
    )
    ids = [p["id"] for p in data["importProfiles"]["profiles"]]
    created = await flows.create_delivery(api, ids, **extra)
    await flows.prepare(api, created["id"])
    await flows.confirm(api, created["id"])
    done = await flows.wait_for(api, created["id"], until, timeout=15, fields=FIELDS)
    return done, {log["address"]: log for log in await flows.logs(api, created["id"])}


def people(*emails: str) -> list[dict[str, Any]]:
    return [{"email": e, "firstName": f"F{i}"} for i, e in enumerate(emails)]
