"""Where ftauth may send a browser: this site only, and back from France Travail."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from ..core.http import is_loopback_host

logger = logging.getLogger("ftauth.signin")

# Whether this process already said that its callback URL is plain http.
_plain_http_reported = False


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


def callback_uri(request: HttpRequest, realm: str) -> str:
    """The ``redirect_uri`` sent to France Travail: ftauth's callback on this request's
    scheme, host and port, so it must be the URL registered for the application."""
    uri = request.build_absolute_uri(reverse("ftauth:callback", args=[realm]))
    _report_plain_http(uri)
    return uri


def _report_plain_http(uri: str) -> None:
    """Once per process, a warning for a production callback on plain http.

    Behind a proxy that terminates TLS, Django sees http unless told otherwise
    (``SECURE_PROXY_SSL_HEADER``), and the callback goes out as ``http://``:
    France Travail refuses it, nothing else would say why. No system check can
    tell (it sees no request); the first such sign-in does. Loopback hosts and
    ``DEBUG`` are development, where plain http is expected.
    """
    global _plain_http_reported
    parts = urlsplit(uri)
    if (
        _plain_http_reported
        or settings.DEBUG
        or parts.scheme != "http"
        or is_loopback_host(parts.hostname)
    ):
        return
    _plain_http_reported = True
    logger.warning(
        "The callback URL sent to France Travail is plain http (%s) while DEBUG is off: "
        "France Travail accepts only the https:// URL registered for the application. "
        "Behind a proxy that terminates TLS, set SECURE_PROXY_SSL_HEADER (and the proxy's "
        "header) so that Django sees https (docs/deployment.md). Said once per process.",
        f"{parts.scheme}://{parts.netloc}{parts.path}",
    )
