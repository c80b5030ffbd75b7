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
