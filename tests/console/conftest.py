"""Debian's Chromium driven by Playwright (never a downloaded browser), and page helpers.

Each test gets a fresh headless browser; every dialog and console message is recorded so a
test can assert that no injected script ran. Screenshots go to ``build/console-screenshots``
(test artefacts); with ``PROVISOR_DOCS_SCREENSHOTS=1`` the ones the docs show are copied to
``docs/console`` too (a test run does not otherwise change the checkout).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.plugins_mgmt.conftest import web_root  # noqa: F401 - a fixture of these tests

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "console-screenshots"
DOCS = ROOT / "docs" / "console"


@dataclass
class Browser:
    """A page in a fresh context, with what the page said and asked."""

    page: object
    dialogs: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def shot(self, name: str, *, docs: bool = False) -> Path:
        """Save a full-page screenshot (and a copy for docs/console)."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        target = SHOTS / f"{name}.png"
        await self.page.screenshot(path=str(target), full_page=True)  # type: ignore[attr-defined]
        if docs and os.environ.get("PROVISOR_DOCS_SCREENSHOTS") == "1":
            DOCS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(target, DOCS / f"{name}.png")
        return target


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A headless Debian Chromium page (skipped when Chromium is not installed)."""
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        context = await chromium.new_context(viewport={"width": 1400, "height": 900})
        page = await context.new_page()
        seen = Browser(page)

        async def on_dialog(dialog: object) -> None:
            seen.dialogs.append(dialog.message)  # type: ignore[attr-defined]
            await dialog.dismiss()  # type: ignore[attr-defined]

        page.on("dialog", on_dialog)
        page.on("console", lambda msg: seen.messages.append(msg.text))
        page.on("pageerror", lambda exc: seen.errors.append(str(exc)))
        try:
            yield seen
        finally:
            await context.close()
            await chromium.close()
