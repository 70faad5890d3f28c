"""ConsentMiddleware: sessions signed in through ftauth end when consent ends.

Between two checks of a session the middleware reads only the session's own
data (already loaded by ``SessionMiddleware``): no database query, no HTTP
call. At most every ``CONSENT_CHECK_INTERVAL`` seconds per session it checks
the session: one query (its registry row, grant and account), then, unless
France Travail confirmed that grant within the interval, a check of the
grant with its own token (``ftauth.consent``).

A session ended elsewhere (withdrawal, back-channel logout, refused grant,
unlink, sign-out on another device sharing its grant) is signed out here:
a browser is sent to the "consentement retiré" page (or to
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
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils import timezone

from .conf import get_settings, serving
from .consent import ConsentCheck, check_grant, send_pending_revocation
from .core.errors import ConfigurationError
from .internal.sessions import (
    ENDED_CONSENT_WITHDRAWN,
    ENDED_GRANT_REFUSED,
    ENDED_REALM_KEY,
    ENDED_SIGNED_OUT,
    SESSION_KEY,
    TOMBSTONE_KEY,
    follow_session_key,
)
from .models import AccountSession, LinkedAccount

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
            try:
                interval = get_settings().consent_check_interval
            except ConfigurationError as exc:
                # Reported by manage.py check; the site's pages must not answer 500.
                logger.error("consent check skipped, FTAUTH settings cannot load: %s", exc)
                return None
            checked_at = marker.get("checked_at")
            due = not isinstance(checked_at, int | float) or time.time() - checked_at >= interval
            # A marker written before grants existed (migration 0002) is bound to its
            # grant at its first request, before the view may need that grant.
            if due or "grant" not in marker:
                ended = self.check(request, marker, interval)
                if ended is not None:
                    return self.ended(request, ended)
        return None

    def check(self, request: HttpRequest, marker: dict, interval: int) -> str | None:
        """Check the session's grant; why the session ended, or ``None`` if it goes on.

        A database error skips the check (the session goes on, checked again
        at the next interval): nothing is written halfway.
        """
        sid, grant_id = marker.get("sid"), marker.get("grant")
        if not isinstance(sid, str) or not isinstance(marker.get("account"), int):
            return ENDED_SIGNED_OUT  # not a marker ftauth wrote: trust nothing in it
        try:
            return self._check(request, marker, sid, grant_id, interval)
        except DatabaseError as exc:
            logger.error(
                "consent check skipped, database unavailable: %s: %s", type(exc).__name__, exc
            )
            return None

    def _check(
        self, request: HttpRequest, marker: dict, sid: str, grant_id: Any, interval: int
    ) -> str | None:
        row = (
            AccountSession.objects.select_related("account", "grant")
            .filter(sid=sid, account_id=marker["account"])
            .first()
        )
        if row is not None and "grant" not in marker:
            # Signed in before migration 0002, which bound this session's registry
            # row to its account's grant: the session goes on with that grant.
            grant_id = row.grant_id
            request.session[SESSION_KEY] = {**marker, "grant": grant_id}
        if row is None or row.grant_id != grant_id:
            # Its grant was forgotten: a sign-out elsewhere, a refusal, a
            # back-channel logout, an unlink or a withdrawal. Say which.
            account = LinkedAccount.objects.filter(pk=marker["account"]).first()
            if account is not None and account.consent_withdrawn_at is not None:
                send_pending_revocation(account)
                return ENDED_CONSENT_WITHDRAWN
            return ENDED_SIGNED_OUT
        grant = row.grant
        if grant is not None:
            grant.account = row.account  # already read, with the row
        recent = timezone.now() - timedelta(seconds=interval)
        if grant is not None and (grant.checked_at is None or grant.checked_at <= recent):
            result = check_grant(grant)
            if result is ConsentCheck.WITHDRAWN:
                return ENDED_CONSENT_WITHDRAWN
            if result is ConsentCheck.ENDED:
                return ENDED_GRANT_REFUSED
            # NO_TOKENS (expired, no refresh token: France Travail may issue
            # none) leaves the session signed in, without calls on the user's behalf.
        AccountSession.objects.filter(pk=row.pk).update(seen_at=timezone.now())
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
        try:
            logout(request)  # flushes the session, tombstone included
        except DatabaseError as exc:
            # The registry could not be updated: the session ends all the same.
            logger.error("sign-out of an ended session: %s: %s", type(exc).__name__, exc)
            request.session.flush()
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
