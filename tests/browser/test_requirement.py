"""Browser tests skip where no browser is installed, and fail where one is required.

Not marked ``browser``: this runs in every run, so a browser test that would skip
quietly in the browser run (``FTAUTH_REQUIRE_BROWSER=1``) is caught anywhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from . import conftest, test_install_docs

MISSING = Path("/nonexistent/chromium")


@pytest.fixture
def no_browser(monkeypatch):
    monkeypatch.setattr(conftest, "CHROMIUM", MISSING)


def test_a_missing_browser_skips_when_not_required(no_browser, monkeypatch):
    monkeypatch.delenv("FTAUTH_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="absent"):
        conftest.require_browser()


def test_a_missing_browser_fails_when_required(no_browser, monkeypatch):
    monkeypatch.setenv("FTAUTH_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="FTAUTH_REQUIRE_BROWSER"):
        conftest.require_browser()


def outcome_of(test, *args) -> str:
    """How ``test`` ends: "failed", "skipped" or "passed" (a skip must not end this test)."""
    try:
        test(*args)
    except pytest.fail.Exception:
        return "failed"
    except pytest.skip.Exception:
        return "skipped"
    return "passed"


def test_the_install_docs_test_fails_when_the_browser_is_required_and_missing(
    no_browser, monkeypatch, tmp_path
):
    test = test_install_docs.test_following_install_md_gives_a_site_one_signs_in_to
    monkeypatch.setenv("FTAUTH_REQUIRE_BROWSER", "1")
    assert outcome_of(test, tmp_path) == "failed"
    assert not any(tmp_path.iterdir()), "it stops before following the page"
    monkeypatch.delenv("FTAUTH_REQUIRE_BROWSER")
    assert outcome_of(test, tmp_path) == "skipped"
