"""Login and callback views: straight-line code, every failure handed to ``errors``."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth import authenticate
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.db import DatabaseError, transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_GET, require_POST

from ..conf import get_settings
from ..core.errors import FTAuthError
from ..internal import signin
from ..internal.names import realm_label
from ..internal.sessions import register_session
from .errors import ftauth_view, sign_in_error


def _pending_cookie(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Whatever the view answers, the browser's pending-request cookie follows what
    the view did with it (a request added, or consumed)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return signin.save_pending(request, view(request, *args, **kwargs))

    return wrapped


def _enabled_realm(realm: str) -> None:
    if realm not in get_settings().enabled_realms:
        raise Http404("unknown realm")


@ftauth_view
@_pending_cookie
@never_cache
@require_GET
def login(request: HttpRequest, realm: str) -> HttpResponse:
    _enabled_realm(realm)
    try:
        url = signin.start(request, realm, request.GET.get("next"), acr=request.GET.get("acr"))
    except (FTAuthError, DatabaseError) as exc:
        return sign_in_error(request, realm, exc)
    return HttpResponseRedirect(url)


@ftauth_view
@_pending_cookie
@never_cache
@require_GET
def callback(request: HttpRequest, realm: str) -> HttpResponse:
    _enabled_realm(realm)
    try:
        identity = signin.complete(request, realm)
        if signin.needs_link_confirmation(request, identity):
            signin.offer_link(request, identity)
            return _link_confirmation_page(request, identity)
    except (FTAuthError, DatabaseError) as exc:
        if (
            isinstance(exc, signin.StateError)
            and not isinstance(exc, signin.SignInExpired)
            and request.user.is_authenticated
        ):
            # A reload of the callback, or Back into the sign-in, by someone
            # already signed in: the state did its job; go where a sign-in leads.
            # (A request that expired still says so: the user asked for something.)
            return HttpResponseRedirect(resolve_url(get_settings().login_redirect_url))
        return sign_in_error(request, realm, exc)
    return _sign_in(request, realm, identity)


def _link_confirmation_page(
    request: HttpRequest, identity: signin.VerifiedIdentity
) -> HttpResponse:
    claims = identity.claims
    name = " ".join(
        str(claims[c]) for c in ("given_name", "family_name") if isinstance(claims.get(c), str)
    )
    response = TemplateResponse(
        request,
        "ftauth/link_confirm.html",
        {
            "identity_name": name,
            "identity_email": identity.email,
            "realm_label": realm_label(identity.realm),
            "account_name": request.user.get_username(),
            "ttl_minutes": signin.LINK_OFFER_TTL // 60,
        },
    )
    response["Cache-Control"] = "no-store"
    return response


@ftauth_view
@never_cache
@require_POST
@csrf_protect
def link_confirm(request: HttpRequest) -> HttpResponse:
    """The signed-in user's answer to the link confirmation page (a CSRF-protected POST)."""
    if not request.user.is_authenticated:
        return HttpResponseRedirect(resolve_url(get_settings().login_redirect_url))
    try:
        identity = signin.take_link_offer(request)
    except signin.LinkOfferExpired as exc:
        return sign_in_error(request, request.POST.get("realm") or "individu", exc)
    if request.POST.get("decision") != "link":
        return HttpResponseRedirect(resolve_url(get_settings().login_redirect_url))
    return _sign_in(request, identity.realm, identity, confirmed=True)


def _sign_in(
    request: HttpRequest,
    realm: str,
    identity: signin.VerifiedIdentity,
    *,
    confirmed: bool = False,
) -> HttpResponse:
    logged_in = False
    try:
        if not confirmed and signin.needs_link_confirmation(request, identity):
            raise signin.LinkOfferExpired("a link needs the user's confirmation")
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
        return sign_in_error(request, realm, exc)
    return HttpResponseRedirect(identity.next_url or get_settings().login_redirect_url)
