"""ConsentMiddleware: sessions signed in through ftauth end when consent ends.

Between two checks of a session the middleware reads only the session's own
data (already loaded by ``SessionMiddleware``): no database query, no HTTP
call. At most every ``CONSENT_CHECK_INTERVAL`` seconds per session it checks
the account: one query (the registry row, the account's session generation
and withdrawal), then, unless another session of the same account asked
France Travail within the interval, a consent check with the user's token.

A session ended elsewhere (withdrawal, back-channel logout, unlink) is signed
out here: a browser is sent to the "consentement retiré" page (or to
``LOGOUT_REDIRECT_URL`` when consent still stands), an XHR gets a 401 JSON.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from django.contrib.auth import logout
from django.db import DatabaseError
from django.db.models import Exists, OuterRef
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils import timezone

from .conf import get_settings, serving
from .consent import ConsentCheck, check_consent
from .models import AccountSession, LinkedAccount
from .sessions import (
    ENDED_CONSENT_WITHDRAWN,
    ENDED_REALM_KEY,
    ENDED_SIGNED_OUT,
    SESSION_KEY,
    TOMBSTONE_KEY,
    follow_session_key,
)

logger = logging.getLogger("ftauth.middleware")


def wants_json(request: HttpRequest) -> bool:
    """An XHR or fetch() call: it gets a 401 JSON, not a page it cannot show."""
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def consent_exempt(view_func: Callable) -> Callable:
    """Mark a view the ConsentMiddleware leaves alone (like ``csrf_exempt``)."""

    @wraps(view_func)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        return view_func(*args, **kwargs)

    wrapped.ftauth_consent_exempt = True  # type: ignore[attr-defined]
    return wrapped


class ConsentMiddleware:
    """Place after ``AuthenticationMiddleware``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # With the sandbox on the site itself, its URLs follow this request's host.
        with serving(request):
            return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable, view_args: tuple, view_kwargs: dict
    ) -> HttpResponse | None:
        # The view is known here, so views that speak for another party (the
        # sandbox stands in for France Travail's own site) can opt out.
        if getattr(view_func, "ftauth_consent_exempt", False):
            return None
        session = getattr(request, "session", None)
        if session is None:
            return None
        ended = session.get(TOMBSTONE_KEY)
        if ended is not None:
            return self.ended(request, ended)
        marker = session.get(SESSION_KEY)
        if isinstance(marker, dict):
            interval = get_settings().consent_check_interval
            checked_at = marker.get("checked_at")
            if not isinstance(checked_at, int | float) or time.time() - checked_at >= interval:
                ended = self.check(request, marker, interval)
                if ended is not None:
                    return self.ended(request, ended)
        return None

    def check(self, request: HttpRequest, marker: dict, interval: int) -> str | None:
        """Check the session's account; why it ended, or ``None`` if it goes on."""
        account_id, sid = marker.get("account"), marker.get("sid")
        if not isinstance(account_id, int) or not isinstance(sid, str):
            return ENDED_SIGNED_OUT  # not a marker ftauth wrote: trust nothing in it
        try:
            account = (
                LinkedAccount.objects.filter(pk=account_id)
                .annotate(
                    registered=Exists(
                        AccountSession.objects.filter(account=OuterRef("pk"), sid=sid)
                    )
                )
                .first()
            )
        except DatabaseError:
            logger.exception("consent check skipped: database unavailable")
            return None
        if account is None:
            return ENDED_SIGNED_OUT  # the identity was unlinked
        if account.consent_withdrawn_at is not None:
            return ENDED_CONSENT_WITHDRAWN
        if not account.registered or account.session_generation != marker.get("generation"):
            return ENDED_SIGNED_OUT  # a back-channel logout, an unlink, "end sessions"
        recent = timezone.now() - timedelta(seconds=interval)
        if account.consent_checked_at is None or account.consent_checked_at <= recent:
            result = check_consent(account)
            if result is ConsentCheck.WITHDRAWN:
                return ENDED_CONSENT_WITHDRAWN
        AccountSession.objects.filter(sid=sid).update(seen_at=timezone.now())
        follow_session_key(request)
        # A transient failure (UNKNOWN) also waits for the next interval: asking
        # again on every request would hammer a server that is already in trouble.
        request.session[SESSION_KEY] = {**request.session[SESSION_KEY], "checked_at": time.time()}
        return None

    def ended(self, request: HttpRequest, reason: str) -> HttpResponse:
        """Sign the session out and say why."""
        marker = request.session.get(SESSION_KEY)
        realm = marker.get("realm") if isinstance(marker, dict) else None
        realm = realm or request.session.get(ENDED_REALM_KEY)
        logout(request)  # flushes the session, tombstone included
        withdrawn = reason == ENDED_CONSENT_WITHDRAWN
        if withdrawn and isinstance(realm, str):
            # For the "consentement retiré" page: a new sign-in on that realm only.
            request.session[ENDED_REALM_KEY] = realm
        if wants_json(request):
            response: HttpResponse = JsonResponse(
                {
                    "error": "consent_withdrawn" if withdrawn else "session_ended",
                    "redirect": reverse("ftauth:consent_withdrawn")
                    if withdrawn
                    else resolve_url(get_settings().logout_redirect_url),
                },
                status=401,
            )
        elif withdrawn:
            response = HttpResponseRedirect(reverse("ftauth:consent_withdrawn"))
        else:
            response = HttpResponseRedirect(resolve_url(get_settings().logout_redirect_url))
        response["Cache-Control"] = "no-store"
        return response
