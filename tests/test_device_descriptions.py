"""ftauth.internal.devices: the short name a grant's device is shown (and kept) as."""

from __future__ import annotations

import pytest

from ftauth.internal.devices import describe

CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            "Firefox 128 · Linux",
        ),
        (CHROME_MAC, "Chrome 120 · macOS"),
        (CHROME_MAC + " Edg/120.0.2210.91", "Edge 120 · macOS"),  # Edge says "Chrome" too
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
            "Safari 17 · iPhone",
        ),
        (
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
            "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
            "Samsung Internet 23 · Android",
        ),
        ("python-requests/2.31.0", "python-requests 2"),
        ("Mozilla/5.0 (X11; Linux x86_64)", "Linux"),
        ("", ""),
    ],
)
def test_a_user_agent_reads_as_browser_and_system(user_agent, expected):
    assert describe(user_agent) == expected


@pytest.mark.parametrize("text", ["Firefox 128 · Linux", "x" * 200, "<script>alert(1)</script>"])
def test_what_is_not_a_user_agent_is_kept_short_and_describing_twice_changes_nothing(text):
    once = describe(text)
    assert len(once) <= 60 and describe(once) == once
