"""Where ftauth may send a browser after an action: this site only."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme


def safe_url(request: HttpRequest, url: str | None, default: str) -> str:
    """``url`` when it stays on this site (same host, no scheme downgrade), else ``default``."""
    # A NUL byte cannot be stored in PostgreSQL text: such a URL is no URL of ours.
    if (
        url
        and "\x00" not in url
        and url_has_allowed_host_and_scheme(
            url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
    ):
        return url
    return default
