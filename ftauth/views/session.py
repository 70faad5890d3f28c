"""Session views: sign-out, back-channel logout, the account page, unlink,
and the page shown once consent was withdrawn."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import audit, crypto, vault
from ..conf import get_settings
from ..consent import ConsentCheck, check_consent
from ..core.errors import FTAuthError, TokenValidationError
from ..core.logout_token import validate_logout_claims
from ..models import AccountSession, AuditEvent, ConsumedLogoutToken, LinkedAccount
from ..names import realm_label
from ..provider import get_provider
from ..sessions import (
    ENDED_REALM_KEY,
    ENDED_SIGNED_OUT,
    SESSION_KEY,
    end_sessions,
    session_marker,
)

logger = logging.getLogger("ftauth.session")


def _safe_url(request: HttpRequest, url: str | None, default: str) -> str:
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return default


@require_http_methods(["GET", "POST"])
@csrf_protect
@never_cache
def logout(request: HttpRequest) -> HttpResponse:
    """End the Django session, then France Travail's (end-session URL).

    Only a POST signs out (a link or an image must not); a GET, from a typed
    or bookmarked address, shows the sign-out form.
    France Travail calls the return parameter ``redirect_uri`` (not the
    standard ``post_logout_redirect_uri``); it must be absolute.
    """
    if request.method == "GET":
        return render(request, "ftauth/logout.html")
    conf = get_settings()
    after = _safe_url(request, resolve_url(conf.logout_redirect_url), "/")
    end_session_url, id_token = "", ""
    marker = session_marker(request)
    if marker and request.user.is_authenticated:
        account = LinkedAccount.objects.filter(pk=marker.get("account"), user=request.user).first()
        realm = conf.realms.get(account.realm) if account else None
        if account is not None and realm is not None:
            end_session_url = realm.end_session_url
            try:
                id_token = vault.get_id_token(account)
            except crypto.TokenDecryptionError:
                logger.error("sign-out without id_token_hint: %s", "token key missing")
            audit.record(AuditEvent.Kind.SIGNED_OUT, account)
    auth_logout(request)  # also drops the session's registry row (signals.py)
    if not end_session_url:
        return HttpResponseRedirect(after)
    params = {"redirect_uri": request.build_absolute_uri(after)}
    if id_token:
        params["id_token_hint"] = id_token
    return HttpResponseRedirect(f"{end_session_url}?{urlencode(params)}")


def _logout_error(description: str) -> JsonResponse:
    # Back-Channel Logout 1.0 section 2.8: 400, an RFC 6749 error, no caching.
    response = JsonResponse(
        {"error": "invalid_request", "error_description": description}, status=400
    )
    response["Cache-Control"] = "no-store"
    return response


@csrf_exempt  # called by the identity server, which holds no CSRF token; the JWT is the proof
@require_POST
def backchannel_logout(request: HttpRequest, realm: str) -> HttpResponse:
    """End the sessions a signed logout token names (Back-Channel Logout 1.0)."""
    conf = get_settings()
    if realm not in conf.enabled_realms:
        return _logout_error("unknown realm")
    token = request.POST.get("logout_token")
    if not token:
        return _logout_error("logout_token missing")
    provider = get_provider(realm)
    try:
        claims = provider.decode_jwt(token)
        logout_request = validate_logout_claims(
            claims,
            issuer=provider.metadata().issuer,
            client_id=conf.client_id,
            leeway=conf.clock_leeway,
        )
        _remember_jti(logout_request.issuer, logout_request.jti, logout_request.remember_until)
    except TokenValidationError as exc:
        logger.warning("back-channel logout token refused on realm %s: %s", realm, exc.rule)
        return _logout_error(f"logout token refused ({exc.rule})")
    except FTAuthError as exc:
        # The keys could not be fetched: the logout did not happen (section 2.8: 400).
        logger.warning("back-channel logout on realm %s failed: %s", realm, type(exc).__name__)
        return _logout_error("logout failed, try again later")
    ended = _end_named_sessions(realm, logout_request.sub, logout_request.sid)
    response = HttpResponse(status=200)
    response["Cache-Control"] = "no-store"
    logger.info("back-channel logout on realm %s ended %d session(s)", realm, ended)
    return response


def _remember_jti(issuer: str, jti: str, until: float) -> None:
    """Refuse a ``jti`` already used (step 8), remembering it while it could be replayed."""
    try:
        with transaction.atomic():
            ConsumedLogoutToken.objects.create(
                issuer=issuer, jti=jti, expires_at=datetime.fromtimestamp(until, tz=UTC)
            )
    except IntegrityError:
        raise TokenValidationError("jti_replay", "logout token already used") from None


def _end_named_sessions(realm: str, sub: str | None, sid: str | None) -> int:
    if sub is not None:
        accounts = list(LinkedAccount.objects.filter(realm=realm, sub=sub))
    else:
        account_ids = AccountSession.objects.filter(account__realm=realm, op_sid=sid).values(
            "account_id"
        )
        accounts = list(LinkedAccount.objects.filter(pk__in=account_ids))
    ended = 0
    for account in accounts:
        # An identity server also sends logout tokens when the user withdraws
        # consent (the sandbox does; France Travail sends none): ask with the
        # user's token, so a withdrawal is acted on now and shown as such.
        if check_consent(account) is ConsentCheck.WITHDRAWN:
            audit.record(AuditEvent.Kind.BACKCHANNEL_LOGOUT, account, consent="withdrawn")
            continue  # withdraw() ended every session of the account
        # With a sid, only that identity-server session; with sub alone, all of them.
        count = end_sessions(account, reason=ENDED_SIGNED_OUT, op_sid=sid)
        audit.record(AuditEvent.Kind.BACKCHANNEL_LOGOUT, account, sessions=count)
        ended += count
    return ended


@login_required
@require_GET
@never_cache
def account(request: HttpRequest) -> HttpResponse:
    """The France Travail identities linked to the signed-in user, with an unlink form."""
    accounts = LinkedAccount.objects.filter(user=request.user).select_related("token_set")
    identities = []
    for item in accounts.order_by("realm"):
        status = vault.token_status(item)
        identities.append({"account": item, "status": status, "status_label": status_label(status)})
    return render(
        request,
        "ftauth/account.html",
        {"identities": identities, "has_password": request.user.has_usable_password()},
    )


def status_label(status: vault.TokenStatus) -> str:
    labels = {
        vault.TokenStatus.VALID: _("valides"),
        vault.TokenStatus.EXPIRING: _("bientôt expirés"),
        vault.TokenStatus.EXPIRED: _("expirés"),
        vault.TokenStatus.WITHDRAWN: _("consentement retiré"),
        vault.TokenStatus.NONE: _("aucun jeton"),
    }
    return labels[status]


@login_required
@require_POST
@csrf_protect
def unlink(request: HttpRequest, realm: str) -> HttpResponse:
    """Unlink one France Travail identity: its tokens are forgotten, the user stays.

    Other sessions signed in through that identity end (their consent can no
    longer be checked); this one stays signed in.
    """
    account = LinkedAccount.objects.filter(user=request.user, realm=realm).first()
    if account is None:
        raise Http404
    marker = session_marker(request)
    current_sid = marker.get("sid") if marker and marker.get("account") == account.pk else None
    vault.forget_tokens(account)
    ended = end_sessions(account, reason=ENDED_SIGNED_OUT, except_sid=current_sid)
    audit.record(AuditEvent.Kind.UNLINKED, account, sessions=ended)
    if current_sid:
        del request.session[SESSION_KEY]
    account.delete()
    messages.success(
        request,
        _("Votre identité France Travail (%(realm)s) n'est plus liée à ce compte.")
        % {"realm": realm},
        fail_silently=True,
    )
    return HttpResponseRedirect(
        _safe_url(request, request.POST.get("next"), reverse("ftauth:account"))
    )


@require_GET
@never_cache
def consent_withdrawn(request: HttpRequest) -> HttpResponse:
    """Where a session ended by a withdrawal lands: says what happened and what to do.

    The middleware leaves in the signed-out session the realm whose consent
    ended: only its button is offered. Without it, every enabled realm's.
    """
    enabled = get_settings().enabled_realms
    realm = request.session.get(ENDED_REALM_KEY) if hasattr(request, "session") else None
    realms = [realm] if realm in enabled else list(enabled)
    return render(
        request,
        "ftauth/consent_withdrawn.html",
        {"realms": [{"name": name, "label": realm_label(name)} for name in realms]},
    )
