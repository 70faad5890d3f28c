"""ftauth's pages refuse to be framed themselves (clickjacking), whatever the project's
middleware: the account page's unlink form, the sign-out and link confirmation forms,
the sandbox's consent page. A project that leaves out ``XFrameOptionsMiddleware``
must not make them frameable.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse

FRAME_ANCESTORS = "frame-ancestors 'none'"


def deny_framing(response: HttpResponse) -> HttpResponse:
    """``X-Frame-Options: DENY`` (older browsers) and CSP ``frame-ancestors 'none'``."""
    response["X-Frame-Options"] = "DENY"
    policy = response.get("Content-Security-Policy", "")
    if "frame-ancestors" not in policy:
        response["Content-Security-Policy"] = (
            f"{policy}; {FRAME_ANCESTORS}" if policy else FRAME_ANCESTORS
        )
    return response


def no_framing(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return deny_framing(view(request, *args, **kwargs))

    return wrapped
