"""Headless Chromium for the browser tests: Debian's /usr/bin/chromium driven by Playwright.

Playwright's own browser downloads are never used. Without /usr/bin/chromium the tests
are skipped with a message saying so, unless FTAUTH_REQUIRE_BROWSER is set (as
``make test`` does, after installing it), where a missing browser is a failure.

Screenshots go to ``artifacts/browser/`` (git-ignored): the ones a test takes on purpose,
and one of the page as it was whenever a test fails.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "browser"
# Every action (click, goto) fails after this long instead of Playwright's 30 s;
# expectations keep Playwright's 5 s.
TIMEOUT_MS = 15_000


def _unavailable(reason: str) -> None:
    if os.environ.get("FTAUTH_REQUIRE_BROWSER"):
        pytest.fail(f"{reason} (FTAUTH_REQUIRE_BROWSER is set)", pytrace=False)
    pytest.skip(reason)


def require_browser() -> None:
    """Chromium and Playwright are here, or the test skips (fails if FTAUTH_REQUIRE_BROWSER
    is set): every browser test starts with this, through the fixture or on its own."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is absent: install Debian's chromium to run browser tests")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")


@pytest.fixture
def chromium_browser(monkeypatch, sandbox) -> Iterator[object]:
    """Chromium, started for one test and stopped before its database is flushed.

    Playwright's sync API keeps its event loop marked as running in the test's thread for
    as long as Playwright runs, and Django refuses ORM calls in a thread with a running
    loop. So Playwright lives only inside the test (after the live server and database
    are set up, before they are torn down), and during the test body Django is told that
    this loop is not an async context of its own.
    """
    require_browser()
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.ftauth_call_failed = report.failed
    return report


@pytest.fixture
def page(request, chromium_browser, sandbox):
    """A fresh browser context (no cookies) on the sandbox's live server, French first."""
    context = chromium_browser.new_context(base_url=sandbox, locale="fr-FR")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    if getattr(request.node, "ftauth_call_failed", False):
        _save_screenshot(page, f"failed-{request.node.name}")
    context.close()


def _save_screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / (re.sub(r"[^\w.-]+", "_", name) + ".png")
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def screenshot(page):
    """``screenshot(name)`` saves the page, whole, as a test artefact and returns the path."""
    return lambda name: _save_screenshot(page, name)
