"""Fixtures of the studio's browser tests: a real Chromium driven by Playwright.

The browser is Debian's `chromium` package (CI installs it, .ci/run), driven through
Playwright for Python's `executable_path`: no browser is downloaded (`playwright install` is
never run). Without chromium or the playwright package the browser tests skip, saying which
is missing.

Write the tests of this folder as plain `def` tests: Playwright's sync API runs its own event
loop in the test thread, and while it is open an `async def` test cannot start one
(`pytest_collection_modifyitems` below refuses them with that reason). For the same reason
the browser lives for this package only (scope "package", one launch for all the studio's
tests), not for the whole session: the async tests of other folders run after it is closed.
"""

from __future__ import annotations

import inspect
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import ServerProcess

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Request

HERE = Path(__file__).resolve().parent
AXE = HERE / "vendor" / "axe.min.js"
#: How long a page may take to connect its change feed (`body[data-feed=live]`), in ms.
LIVE_TIMEOUT_MS = 15_000
#: The impacts of axe-core's violations that fail a test (issue 12: zero serious ones).
AXE_FAILING_IMPACTS = ("serious", "critical")
#: The API token of the `token_server`.
TOKEN = "studio-test-token"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse `async def` tests in this folder, saying why (the module's docstring)."""
    wrong = [
        item.nodeid
        for item in items
        if HERE in Path(str(item.path)).parents
        and inspect.iscoroutinefunction(getattr(item, "function", None))
    ]
    if wrong:
        raise pytest.UsageError(
            f"{', '.join(wrong)}: write the tests of tests/studio as `def`, not `async def`: "
            "Playwright's sync API holds the thread's event loop (tests/studio/conftest.py)"
        )


def chromium_path() -> str | None:
    """Debian's chromium (`/usr/bin/chromium`), or a `chromium` on PATH."""
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One headless Chromium for all the studio's tests (each test opens its own context)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -c constraints.txt '.[dev]'")
    executable = chromium_path()
    if executable is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    # as root, Chromium's own sandbox cannot start; background networking: no calls home
    args = ["--disable-background-networking"]
    if os.geteuid() == 0:
        args.append("--no-sandbox")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True, args=args)
        yield launched
        launched.close()


@dataclass
class Watch:
    """What a page did and what went wrong in it: the URLs it requested, console errors,
    uncaught exceptions, requests that failed (no answer at all: refused by the CSP,
    connection reset, ...; an HTTP error status is an answer)."""

    requested: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                self.console.append(f"{message.text} ({message.location.get('url', '')})")

        def on_failed(request: Request) -> None:
            self.failed.append(f"{request.method} {request.url}: {request.failure}")

        page.on("request", lambda request: self.requested.append(request.url))
        page.on("console", on_console)
        page.on("pageerror", lambda error: self.exceptions.append(str(error)))
        page.on("requestfailed", on_failed)


def open_page(browser: Browser, url: str, live: bool = True) -> tuple[Page, Watch]:
    """A page in a fresh context (its own session storage) at `url`, watched from its first
    request; with `live`, once the studio's change feed is connected."""
    page = browser.new_context().new_page()
    watch = Watch()
    watch.attach(page)
    page.goto(url)
    if live:
        wait_live(page)
    return page, watch


def wait_live(page: Page) -> None:
    """Wait until the studio says its change feed is connected (`body[data-feed=live]`)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_selector("body[data-feed=live]", state="attached", timeout=LIVE_TIMEOUT_MS)
    except PlaywrightTimeout:
        feed = page.evaluate("document.body && document.body.dataset.feed")
        raise AssertionError(
            f"the studio at {page.url} did not connect its change feed within "
            f"{LIVE_TIMEOUT_MS / 1000:.0f} s (body[data-feed] is {feed!r}, not 'live')"
        ) from None


@pytest.fixture
def studio(browser: Browser, lo_server: str) -> Iterator[Page]:
    """The studio opened on the session's shared server, its change feed connected.

    After the test, the page must not have thrown an uncaught exception."""
    page, watch = open_page(browser, f"{lo_server}/studio/")
    yield page
    exceptions = list(watch.exceptions)
    page.context.close()
    assert not exceptions, f"uncaught exceptions in the studio: {exceptions}"


def run_axe(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations of impact serious or critical in `page` as it is now: each its
    rule, impact, help text and the CSS selectors of the elements at fault.

    The vendored axe-core is evaluated through the DevTools protocol, which the page's CSP
    (no inline script) does not govern: the page under test is not loosened for it."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    violations: list[dict[str, Any]] = page.evaluate(
        """async (impacts) => {
            const result = await window.axe.run(document, {resultTypes: ["violations"]});
            return result.violations
                .filter((v) => impacts.includes(v.impact))
                .map((v) => ({id: v.id, impact: v.impact, help: v.help,
                              targets: v.nodes.map((n) => n.target.join(" "))}));
        }""",
        list(AXE_FAILING_IMPACTS),
    )
    return violations


@pytest.fixture
def axe() -> Callable[[Page], list[dict[str, Any]]]:
    """`axe(page)`: the serious and critical accessibility violations in `page` (run_axe)."""
    return run_axe


@dataclass(frozen=True)
class TokenServer:
    """A server that requires `Authorization: Bearer {token}` on its API."""

    url: str
    token: str


@pytest.fixture(scope="package")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenServer]:
    """A real server with LO_API_TOKENS set (one for the studio's tests: starting takes a
    few seconds)."""
    server = ServerProcess(
        tmp_path_factory.mktemp("studio-tokens") / "data", env={"LO_API_TOKENS": TOKEN}
    )
    server.start()
    yield TokenServer(server.url, TOKEN)
    server.stop()
