"""Login and callback views: straight-line code, every failure handed to ``errors``."""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.db import DatabaseError, transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from ..conf import get_settings
from ..core.errors import FTAuthError
from ..internal import signin
from ..internal.sessions import register_session
from .errors import ftauth_view, sign_in_error


def _enabled_realm(realm: str) -> None:
    if realm not in get_settings().enabled_realms:
        raise Http404("unknown realm")


@ftauth_view
@never_cache
@require_GET
def login(request: HttpRequest, realm: str) -> HttpResponse:
    _enabled_realm(realm)
    try:
        url = signin.start(request, realm, request.GET.get("next"))
    except (FTAuthError, DatabaseError) as exc:
        return sign_in_error(request, realm, exc)
    return HttpResponseRedirect(url)


@ftauth_view
@never_cache
@require_GET
def callback(request: HttpRequest, realm: str) -> HttpResponse:
    _enabled_realm(realm)
    logged_in = False
    try:
        identity = signin.complete(request, realm)
        with transaction.atomic():
            user = authenticate(request, ftauth_identity=identity)
            if user is None:
                raise signin.AccountRefused("no backend accepted the identity")
            # login() cycles the session key: no fixation of a pre-login session.
            auth_login(request, user, backend="ftauth.backends.FranceTravailBackend")
            logged_in = True
            register_session(request, user.ftauth_account, user.ftauth_grant)
    except (FTAuthError, DatabaseError) as exc:
        if logged_in:
            # The database work was rolled back: the session must not outlive it.
            auth_logout(request)
        elif (
            isinstance(exc, signin.StateError)
            and not isinstance(exc, signin.SignInExpired)
            and request.user.is_authenticated
        ):
            # A reload of the callback, or Back into the sign-in, by someone
            # already signed in: the state did its job; go where a sign-in leads.
            # (A request that expired still says so: the user asked for something.)
            return HttpResponseRedirect(resolve_url(get_settings().login_redirect_url))
        return sign_in_error(request, realm, exc)
    return HttpResponseRedirect(identity.next_url or get_settings().login_redirect_url)
