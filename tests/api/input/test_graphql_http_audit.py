"""GraphQL over HTTP conformance: the `graphql-http` audit suite against the live server.

`tests/support/graphql_http_audit.mjs` runs npm graphql-http's `auditServer` (61 audits, pinned in
web/package.json) against a real server and prints every result as JSON. A MUST failure fails
the test; the SHOULD warnings and MAY notices must be exactly the documented ones below (see
docs/limits.md, "GraphQL over HTTP conformance"), so an improvement shows up too.
"""

import asyncio
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import RunningServer, api_for

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "tests" / "support" / "graphql_http_audit.mjs"
NODE = shutil.which("node")
PACKAGE = ROOT / "web" / "node_modules" / "graphql-http" / "package.json"

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed: the audit is an npm package"),
    pytest.mark.skipif(
        not PACKAGE.is_file(),
        reason="web/node_modules/graphql-http is missing: run `npm ci --prefix web`",
    ),
]

# Audits that do not pass, by status ("error" = MUST, "warn" = SHOULD, "notice" = MAY).
# Development mode: every audit passes.
EXPECTED_DEVELOPMENT: dict[str, set[str]] = {"error": set(), "warn": set(), "notice": set()}
# Production mode turns introspection off, and four audits probe variables with
# `query Type($name: String!) { __type(name: $name) { name } }`: they get the validation error
# "GraphQL introspection has been disabled" instead of data. That is the point of the mode.
EXPECTED_PRODUCTION: dict[str, set[str]] = {
    "error": {"28B9"},  # MUST allow map {variables} parameter when accepting application/json
    "warn": {"2EA1"},  # SHOULD allow map {variables} ... application/graphql-response+json
    "notice": {"D6D5", "6A70"},  # MAY allow URL-encoded JSON {variables} in GETs (both types)
}


@pytest.fixture
def db_kind() -> str:
    """The audit tests HTTP, not storage: SQLite is enough."""
    return "sqlite"


async def audit(running: RunningServer) -> list[dict[str, Any]]:
    """The audit as an operator: the server refuses requests without a valid token before
    anything else (401, docs/auth-limits.md), which is not what the audit looks at."""
    async for api in api_for(running):
        token = api.tokens["reader"]
    # The server runs in this event loop: the audit must not block it.
    process = await asyncio.create_subprocess_exec(
        str(NODE),
        str(SCRIPT),
        f"{running.base_url}/graphql",
        token,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    results: list[dict[str, Any]] = json.loads(out)
    return results


def report(results: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Print what did not pass (visible with -s or on failure) and group it by status."""
    failed: dict[str, set[str]] = {"error": set(), "warn": set(), "notice": set()}
    for result in results:
        if result["status"] != "ok":
            failed[result["status"]].add(result["id"])
            print(
                f"{result['status']:>6} {result['id']} {result['name']}: {result['reason']}"
                f" (HTTP {result['httpStatus']}, {result['contentType']}) {result['body']}"
            )
    print(f"{len(results)} audits, {sum(map(len, failed.values()))} not ok")
    return failed


async def test_the_server_passes_every_graphql_over_http_audit(
    make_server: Callable[..., Any],
) -> None:
    running = await make_server()
    results = await audit(running)
    assert len(results) == 61
    failed = report(results)
    assert failed["error"] == set(), "MUST failures: the server does not conform"
    assert failed == EXPECTED_DEVELOPMENT


async def test_production_mode_fails_only_the_audits_that_probe_with_introspection(
    make_server: Callable[..., Any],
) -> None:
    running = await make_server(production=True)
    failed = report(await audit(running))
    assert failed == EXPECTED_PRODUCTION
