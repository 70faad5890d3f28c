"""ConsentMiddleware: sessions signed in through ftauth end when consent ends.

Between two checks of a session the middleware reads only the session's own
data (already loaded by ``SessionMiddleware``): no database query, no HTTP
call. At most every ``CONSENT_CHECK_INTERVAL`` seconds per session it checks
the session: one query (its registry row, grant and account, and when France
Travail last vouched for any grant of the account). France Travail's quota
grows with accounts, not devices: when another grant of the account was
confirmed within the interval, nothing is asked. Otherwise the session's grant
is asked about with its own token (``ftauth.consent``), *after* the view: a
page that calls the realm's witness itself (its userinfo) with that grant, or
refreshes it, has made the check, and the question is not asked twice. The
check after the view is a background one: it takes a turn under the quota
only if one is free now, and is postponed otherwise, so a page never waits
for it. A device whose grant alone France Travail refused is found at its own
next call (docs/security.md).

A session ended elsewhere (withdrawal, back-channel logout, refused grant,
unlink, sign-out on another device sharing its grant) is signed out here:
a browser is sent to the "consentement retiré" page (or to
``LOGOUT_REDIRECT_URL`` when consent still stands), an XHR gets a 401 JSON.

The middleware also notes when the request arrived (``internal.arrival``):
the budgets of the calls made while serving it count from there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from typing import Any

from django.contrib.auth import logout
from django.db import DatabaseError
from django.db.models import F, OuterRef, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils import timezone

from .conf import get_settings, serving
from .consent import ConsentCheck, check_grant, send_pending_revocation
from .core.errors import ConfigurationError
from .internal import witness
from .internal.arrival import arrival_of, arriving
from .internal.sessions import (
    ENDED_CONSENT_WITHDRAWN,
    ENDED_GRANT_REFUSED,
    ENDED_REALM_KEY,
    ENDED_SIGNED_OUT,
    SESSION_KEY,
    TOMBSTONE_KEY,
    follow_session_key,
)
from .models import AccountSession, Grant, LinkedAccount

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


@dataclass(frozen=True)
class _DueCheck:
    """A session whose grant is to be asked about after the view."""

    sid: str
    row_id: int
    grant: Any


DUE_CHECK = "_ftauth_due_check"


def _start_header() -> str:
    try:
        return get_settings().request_start_header
    except ConfigurationError:
        return ""  # reported by manage.py check; the page is served all the same


class ConsentMiddleware:
    """Place after ``AuthenticationMiddleware``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # With the sandbox on the site itself, its URLs follow this request's host.
        arrived = arrival_of(request.META, _start_header())
        with serving(request), arriving(arrived), witness.watching():
            response = self.get_response(request)
            due = getattr(request, DUE_CHECK, None)
            if due is not None:
                ended = self.check_after_view(request, due)
                if ended is not None:
                    return self.ended(request, ended)
            return response

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
        # When France Travail last vouched for any grant of the account: one
        # witness call per account and interval, whichever device asked.
        latest_check = (
            Grant.objects.filter(account_id=OuterRef("account_id"))
            .order_by(F("checked_at").desc(nulls_last=True))
            .values("checked_at")[:1]
        )
        row = (
            AccountSession.objects.select_related("account", "grant")
            .annotate(account_checked=Subquery(latest_check))
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
        recent = timezone.now() - timedelta(seconds=interval)
        if grant is not None and not (row.account_checked and row.account_checked > recent):
            # Asked after the view, unless the view's own call answers first.
            grant.account = row.account  # already read, with the row
            setattr(request, DUE_CHECK, _DueCheck(sid=sid, row_id=row.pk, grant=grant))
            return None
        # NO_TOKENS (no grant here) leaves the session signed in, without calls on
        # the user's behalf; another grant of the account vouched for it recently.
        self._checked(request, row.pk)
        return None

    def check_after_view(self, request: HttpRequest, due: _DueCheck) -> str | None:
        """The due check of the session's grant, unless the view's own call to the
        witness (or a refresh) made it; why the session ended, or ``None``."""
        marker = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
        if not isinstance(marker, dict) or marker.get("sid") != due.sid:
            return None  # the view signed this session out, or in again
        try:
            if not witness.noted(due.grant.pk):
                result = check_grant(due.grant, background=True)
                if result is ConsentCheck.WITHDRAWN:
                    return ENDED_CONSENT_WITHDRAWN
                if result is ConsentCheck.ENDED:
                    return ENDED_GRANT_REFUSED
                # NO_TOKENS (expired, no refresh token: France Travail may issue
                # none) leaves the session signed in, without calls on the user's behalf.
            self._checked(request, due.row_id)
        except DatabaseError as exc:
            logger.error(
                "consent check skipped, database unavailable: %s: %s", type(exc).__name__, exc
            )
        return None

    def _checked(self, request: HttpRequest, row_id: int) -> None:
        AccountSession.objects.filter(pk=row_id).update(seen_at=timezone.now())
        follow_session_key(request)
        # A transient failure (UNKNOWN), or a check postponed for the quota, also
        # waits for the next interval: asking again on every request would hammer
        # a server that is already in trouble.
        request.session[SESSION_KEY] = {**request.session[SESSION_KEY], "checked_at": time.time()}

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
