"""A real headless Chromium (Debian's `chromium` package) driven by Playwright, for the
end-to-end tests of the pages the server serves. Tests that need it skip, and say why, when the
browser or Playwright is not installed (`.ci/run` installs both)."""

import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.live import KPI_FIELDS
from tests.support.server import RunningServer

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
# The flags a sandboxed CI machine needs: no GPU, no background calls to Google's hosts.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Key screens go to docs/screenshots/ (shown in the README) only when asked for, with
# UPDATE_SCREENSHOTS=1; otherwise to a temporary folder, so that a test run leaves the work
# tree as it was.
SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "delivery-server-screenshots"
)


def browser_missing() -> str | None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -e '.[test]')"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)"
    return None


@pytest.fixture
async def page() -> AsyncIterator[Any]:
    """A fresh browser page (1280 x 800) in its own context: no cookies or storage shared."""
    missing = browser_missing()
    if missing:
        pytest.skip(missing)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 800})
            page = await context.new_page()
            page.set_default_timeout(15_000)
            yield page
            await context.close()
        finally:
            await browser.close()


async def screenshot(page: Any, name: str) -> None:
    """Save a screenshot of a key screen (under docs/screenshots/ with UPDATE_SCREENSHOTS=1)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def tid(name: str) -> str:
    return f'[data-testid="{name}"]'


class Dashboard:
    """The page as an operator drives it, and what it reported in its console."""

    def __init__(self, page: Any, running: RunningServer) -> None:
        self.page, self.running = page, running
        self.console: list[str] = []
        page.on("console", lambda message: self.console.append(message.text))
        page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))

    async def open(self) -> None:
        await self.page.goto(self.running.base_url + "/")
        await self.page.wait_for_selector(tid("signin-form"))

    async def sign_in(self, token: str) -> None:
        await self.page.fill(tid("token"), token)
        await self.page.click(tid("sign-in"))

    async def text(self, name: str) -> str:
        return str(await self.page.text_content(tid(name)))

    async def value(self, name: str) -> str:
        return str(await self.page.get_attribute(tid(name), "data-value"))

    async def wait_text(self, name: str, part: str) -> None:
        await self.page.wait_for_function(
            "([sel, part]) => { const n = document.querySelector(sel);"
            " return n && !n.hidden && n.textContent.includes(part); }",
            arg=[tid(name), part],
        )

    async def wait_page(self, number: int) -> None:
        await self.page.wait_for_function(
            "n => document.querySelector('[data-testid=logs-page]').dataset.page == n",
            arg=str(number),
        )

    async def open_delivery(self, delivery_id: str, label: str) -> None:
        await self.page.click(f'{tid("delivery-item")}[data-id="{delivery_id}"]')
        await self.wait_text("dep-label", label)

    async def confirm_send(self) -> None:
        await self.page.click(tid("confirm-send"))
        await self.page.wait_for_selector(f"{tid('confirm-dialog')}[open]")
        await self.page.click(tid("confirm-ok"))

    async def figures(self) -> dict[str, float]:
        return {k: float(await self.value(f"kpi-{k}")) for k in KPI_FIELDS}

    async def log_statuses(self) -> list[str]:
        rows = await self.page.query_selector_all(tid("log-row"))
        return [str(await row.get_attribute("data-status")) for row in rows]

    def problems(self) -> list[str]:
        return [t for t in self.console if "Content Security Policy" in t or "pageerror" in t]
