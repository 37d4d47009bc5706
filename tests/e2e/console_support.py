"""Helpers of the console's end-to-end tests: Debian's Chromium driven by Playwright, screenshots per run."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, ViewportSize, async_playwright, expect

CHROMIUM = "/usr/bin/chromium"
# Nothing may reach the internet: no component updates, no sync, no background fetches.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
SCREENSHOTS = Path(__file__).parent / "screenshots"


def chromium_or_skip() -> str:
    """The Chromium executable; skips the test where Debian's chromium is not installed."""
    found = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if not found:
        pytest.skip("Debian's chromium is not installed (make test installs it when run as root)")
    return found


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A headless Chromium for the test, closed afterwards."""
    executable = chromium_or_skip()
    # Two shared cores: a page's first load may take longer than Playwright's default 5 s.
    expect.set_options(timeout=20_000)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


def screenshot_folder() -> Path:
    """A new folder for this run's screenshots, named by the time it started (UTC)."""
    folder = SCREENSHOTS / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


_ERRORS: dict[int, list[str]] = {}


def script_errors(page: Page) -> list[str]:
    """Uncaught exceptions and console errors of the page's scripts so far (failed requests aside)."""
    return _ERRORS.setdefault(id(page), [])


async def open_page(
    browser: Browser, viewport: ViewportSize, *, locale: str = "en-GB", poll_seconds: float | None = None
) -> Page:
    """A fresh page (own session storage) at a viewport size; ``poll_seconds`` overrides the console's config."""
    context = await browser.new_context(viewport=viewport, locale=locale)
    page = await context.new_page()
    page.set_default_timeout(20_000)
    page.on("pageerror", lambda error: script_errors(page).append(str(error)))
    page.on(
        "console",
        lambda message: (
            script_errors(page).append(message.text)
            if message.type == "error" and not message.text.startswith("Failed to load resource")
            else None
        ),
    )
    if poll_seconds is not None:
        config = {"poll_seconds": poll_seconds, "oidc": None}
        await page.route("**/console/config.json", lambda route: route.fulfill(json=config))
    return page


async def post(http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST through the gateway and insist on 201."""
    response = await http.post(path, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result
