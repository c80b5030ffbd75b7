"""GraphiQL at /graphql in a real Chromium, with every asset served by the server itself."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.http.graphiql import VENDOR, assets_dir
from server.settings import Settings
from tests.support import flows
from tests.support.browser import screenshot
from tests.support.client import Api, event
from tests.support.server import RunningServer

NOT_INSTALLED = [p for p in VENDOR.values() if not (assets_dir(Settings()) / p).is_file()]
needs_assets = pytest.mark.skipif(
    bool(NOT_INSTALLED), reason="GraphiQL assets not installed: run `npm ci --prefix web`"
)

ME = "{ me { name roles } }"
PROGRESS = """subscription {
  deploymentProgress(deliveryId: "%s") {
    status
    kpis { toSend processed sent failed deliveredRate }
  }
}"""
RESULT = "document.querySelector('.result-window .CodeMirror').CodeMirror.getValue()"


class Browser:
    """The page as a user drives it, plus everything it requested and every CSP complaint."""

    def __init__(self, page: Any, running: RunningServer) -> None:
        self.page, self.running = page, running
        self.requests: list[str] = []
        self.console: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("websocket", lambda ws: self.requests.append(ws.url))
        page.on("console", lambda message: self.console.append(message.text))

    async def open(self) -> None:
        await self.page.goto(self.running.base_url + "/graphql")
        await self.page.wait_for_selector(".graphiql-query-editor .CodeMirror")

    async def use_token(self, token: str) -> None:
        await self.page.fill("#token", token)
        await self.page.click("#token-use")
        await self.page.wait_for_selector("#token-state.set")

    async def run(self, query: str) -> None:
        """Replace the query editor's text, as typed, and press the run button."""
        await self.page.click(".graphiql-query-editor .CodeMirror-lines")
        await self.page.keyboard.press("Control+A")
        await self.page.keyboard.press("Delete")
        await self.page.keyboard.insert_text(query)  # no auto-closed brackets doubling ours
        await self.page.click(".graphiql-execute-button")

    async def result_with(self, *texts: str) -> dict[str, Any]:
        """Wait until the result pane holds every text; returns it parsed."""
        await self.page.wait_for_function(
            f"texts => texts.every(t => ({RESULT}).includes(t))", arg=list(texts)
        )
        return json.loads(await self.page.evaluate(RESULT))  # type: ignore[no-any-return]

    def foreign(self) -> list[str]:
        origins = (self.running.base_url + "/", self.running.base_url.replace("http", "ws") + "/")
        return [url for url in self.requests if not url.startswith(origins)]

    def csp_violations(self) -> list[str]:
        return [text for text in self.console if "Content Security Policy" in text]


@needs_assets
async def test_a_query_and_a_live_subscription_run_from_graphiql_offline(
    page: Any, server: RunningServer, api: Api
) -> None:
    browser = Browser(page, server)
    await browser.open()
    await browser.use_token(api.tokens["admin"])
    await browser.run(ME)
    me = (await browser.result_with('"roles"', "ADMINISTRATION"))["data"]["me"]
    assert me["roles"] == ["ADMINISTRATION"]

    ids = await flows.import_profiles(api, [f"g{i}@example.com" for i in range(4)])
    created = await flows.create_delivery(api, ids, feedbackMode="EFS")
    await flows.prepare(api, created["id"])
    await browser.run(PROGRESS % created["id"])
    await browser.result_with('"READY"', '"toSend": 4')

    await flows.confirm(api, created["id"])
    await browser.result_with('"processed": 4')
    logs = await flows.logs(api, created["id"])
    response = await api.feedback(
        [event(log["messageId"], "delivered") for log in logs[:3]]
        + [event(logs[3]["messageId"], "hard_bounce", reason="USER_UNKNOWN")]
    )
    assert response.status_code == 200
    live = await browser.result_with('"sent": 3', '"failed": 1')
    assert live["data"]["deploymentProgress"]["kpis"]["deliveredRate"] == 75.0
    await screenshot(page, "graphiql")

    assert browser.requests, "the page made no request at all"
    assert browser.foreign() == [], "requests left the server's origin"
    assert any(url.startswith("ws://") for url in browser.requests), "no WebSocket opened"
    assert browser.csp_violations() == []


@needs_assets
async def test_a_wrong_token_shows_the_server_errors_in_the_result_pane(
    page: Any, server: RunningServer, api: Api
) -> None:
    browser = Browser(page, server)
    await browser.open()
    await browser.use_token("not-a-token")
    await browser.run(ME)
    errors = (await browser.result_with("UNAUTHENTICATED"))["errors"]
    assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"
    # GraphiQL's dialogs insert a <style> at run time: the page's CSP nonce lets it in.
    await page.click('[aria-label="Open settings dialog"]')
    await page.wait_for_selector(".graphiql-dialog")
    await page.keyboard.press("Escape")

    await browser.run(PROGRESS % "1")
    errors = (await browser.result_with("4403"))["errors"]
    assert "refused the token" in errors[0]["message"]
    assert browser.foreign() == []
    assert browser.csp_violations() == []


@needs_assets
async def test_the_page_and_its_assets_carry_a_self_only_csp(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        page = await http.get("/graphql", headers={"accept": "text/html"})
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "script-src 'self' 'nonce-" in csp
        assert "unsafe-eval" not in csp and "unsafe-inline" not in csp
        host = server.base_url.removeprefix("http://")
        assert f"connect-src 'self' ws://{host} wss://{host};" in csp
        assert "http" not in csp
        for name in VENDOR:
            asset = await http.get(f"/graphiql/assets/{name}")
            assert asset.status_code == 200, name
        for outside in ["/graphiql/assets/package.json", "/graphiql/index.html"]:
            assert (await http.get(outside)).status_code == 404, outside


async def test_without_installed_assets_a_browser_gets_the_install_instructions(
    make_server: Callable[..., Any], tmp_path: Path
) -> None:
    empty = tmp_path / "no-node-modules"
    empty.mkdir()
    running = await make_server(graphiql_assets_dir=str(empty))
    async with httpx.AsyncClient(base_url=running.base_url) as http:
        page = await http.get("/graphql", headers={"accept": "text/html,application/xhtml+xml"})
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "npm ci --prefix web" in page.text
        asset = await http.get("/graphiql/assets/graphiql.min.js")
        assert asset.status_code == 404
        assert "npm ci --prefix web" in asset.json()["error"]
        # Not a browser: told how to send a query (tests/api/input/test_graphql_get.py), assets or
        # not.
        assert (await http.get("/graphql", headers={"accept": "*/*"})).status_code == 400
        query = await http.post("/graphql", json={"query": "{ __typename }"})
        assert query.status_code == 401  # GraphQL is for operators (docs/auth-limits.md)
