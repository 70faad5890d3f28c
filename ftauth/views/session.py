"""Session views: sign-out, back-channel logout, the account page, unlink,
and the page shown once consent was withdrawn."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.decorators import login_required
from django.db import DatabaseError, IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import vault
from ..adapter import get_adapter
from ..conf import get_settings
from ..core.authorize import random_token, state_hash
from ..core.errors import FTAuthError, TokenValidationError
from ..core.logout_token import LogoutRequest, validate_logout_claims
from ..internal import audit, lifecycle, sessions
from ..internal.names import realm_label
from ..internal.provider import get_provider
from ..internal.redirects import safe_url
from ..internal.sessions import ENDED_REALM_KEY, SESSION_KEY, session_marker
from ..models import AccountSession, AuditEvent, ConsumedLogoutToken, Grant, LinkedAccount
from .errors import error_page, ftauth_view, service_unavailable

logger = logging.getLogger("ftauth.session")


# The sign-out's ``state`` (ProConnect requires one and sends it back): its hash
# waits in the signed-out session, for this long, until the person comes back.
SESSION_LOGOUT_STATE = "ftauth_logout_state"
LOGOUT_STATE_TTL = 600


@ftauth_view
@require_http_methods(["GET", "POST"])
@csrf_protect
@never_cache
def logout(request: HttpRequest) -> HttpResponse:
    """Sign this device out: end this session, forget its grant's tokens, then
    go through the provider's end-session URL with this grant's ID token.

    The user's other devices stay signed in: they have grants of their own.
    Only a POST signs out (a link or an image must not); a GET, from a typed
    or bookmarked address, shows the sign-out form. Everything local ends before
    the redirect: France Travail was seen not sending people back, and nothing
    here depends on the return trip. The return parameter is the provider's
    (France Travail's ``redirect_uri``, ProConnect's ``post_logout_redirect_uri``)
    and must be absolute; a provider that wants a ``state`` gets one, checked by
    :func:`logout_return`.
    """
    if request.method == "GET":
        return render(request, "ftauth/logout.html")
    conf = get_settings()
    after = safe_url(request, resolve_url(conf.logout_redirect_url), "/")
    realm, end_session_url, id_token = None, "", ""
    marker = session_marker(request)
    try:
        if marker and request.user.is_authenticated:
            row = (
                AccountSession.objects.select_related("account", "grant")
                .filter(sid=marker.get("sid"), account__user=request.user)
                .first()
            )
            realm = conf.realms.get(row.account.realm) if row is not None else None
            if realm is not None:
                end_session_url = _end_session_url(realm.name)
                try:
                    id_token = vault.get_id_token(row.grant)
                except vault.TokensUnreadable:
                    logger.error("sign-out without id_token_hint: %s", "token key missing")
        # Forgets this session's grant (signals.py: lifecycle.sign_out_session) in
        # one transaction, before the session is flushed.
        auth_logout(request)
    except DatabaseError as exc:
        return service_unavailable(request, "sign-out", exc)
    if not end_session_url or realm is None:
        return HttpResponseRedirect(after)
    return_to = request.build_absolute_uri(after)
    params = {}
    if realm.end_session_state:
        state = random_token()
        return_to = request.build_absolute_uri(reverse("ftauth:logout_return"))
        # In the new, signed-out session: the old one is gone already.
        request.session[SESSION_LOGOUT_STATE] = {
            "state": state_hash(state),
            "next": after,
            "until": time.time() + LOGOUT_STATE_TTL,
        }
        params["state"] = state
    params[realm.end_session_redirect_param] = return_to
    if id_token:
        params["id_token_hint"] = id_token
    separator = "&" if "?" in end_session_url else "?"
    return HttpResponseRedirect(f"{end_session_url}{separator}{urlencode(params)}")


def _end_session_url(realm: str) -> str:
    """The realm's end-session endpoint (discovered for ProConnect); its known path
    when discovery cannot be had: the sign-out goes on either way."""
    try:
        return get_provider(realm).endpoints().end_session_url
    except FTAuthError as exc:
        logger.warning("end-session endpoint of %s not discovered: %s", realm, type(exc).__name__)
        return get_settings().realm(realm).end_session_url


@ftauth_view
@require_GET
@never_cache
def logout_return(request: HttpRequest) -> HttpResponse:
    """Where ProConnect sends the person back after its sign-out, with the ``state``.

    The local sign-out happened before the person left: this view only checks
    that the return answers our request (a forged or replayed return is told so,
    and goes nowhere). Single use.
    """
    expected = (
        request.session.pop(SESSION_LOGOUT_STATE, None) if hasattr(request, "session") else None
    )
    state = request.GET.get("state", "")
    if (
        not isinstance(expected, dict)
        or not state
        or not isinstance(expected.get("state"), str)
        or expected.get("until", 0) <= time.time()
        or not constant_time_compare(state_hash(state), expected["state"])
    ):
        logger.warning("sign-out return refused: state missing, unknown or expired")
        return error_page(
            request,
            title=str(_("Retour de déconnexion inattendu")),
            message=str(
                _(
                    "Vous êtes bien déconnecté de ce site, mais ce retour ne répond à aucune "
                    "déconnexion demandée depuis ce navigateur."
                )
            ),
            status=400,
        )
    return HttpResponseRedirect(safe_url(request, expected.get("next"), "/"))


def _logout_error(description: str) -> JsonResponse:
    # Back-Channel Logout 1.0 section 2.8: 400, an RFC 6749 error, no caching.
    response = JsonResponse(
        {"error": "invalid_request", "error_description": description}, status=400
    )
    response["Cache-Control"] = "no-store"
    return response


@ftauth_view
@csrf_exempt  # called by the identity server, which holds no CSRF token; the JWT is the proof
@require_POST
def backchannel_logout(request: HttpRequest, realm: str) -> HttpResponse:
    """End the sessions a signed logout token names (Back-Channel Logout 1.0)."""
    conf = get_settings()
    if realm not in conf.enabled_realms or not conf.realm(realm).backchannel_logout:
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
            client_id=provider.client_id,
            trusted_audiences=conf.trusted_audiences,
            leeway=conf.clock_leeway,
        )
        ended = _logout_named_grants(realm, logout_request)
    except TokenValidationError as exc:
        logger.warning("back-channel logout token refused on realm %s: %s", realm, exc.rule)
        return _logout_error(f"logout token refused ({exc.rule})")
    except FTAuthError as exc:
        # The keys could not be fetched: the logout did not happen (section 2.8: 400).
        logger.warning("back-channel logout on realm %s failed: %s", realm, type(exc).__name__)
        return _logout_error("logout failed, try again later")
    except DatabaseError as exc:
        # Nothing was ended and the jti stays unused: the retry will succeed.
        logger.error(
            "back-channel logout on realm %s failed: %s: %s", realm, type(exc).__name__, exc
        )
        response = JsonResponse({"error": "temporarily_unavailable"}, status=503)
        response["Cache-Control"] = "no-store"
        response["Retry-After"] = "5"
        return response
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


def _logout_named_grants(realm: str, request: LogoutRequest) -> int:
    """End the grants a valid logout token names, recording its ``jti`` in the same
    transaction: if anything fails, nothing is ended and the ``jti`` stays unused,
    so the identity server's retry succeeds. No call to France Travail.

    With a ``sid``, only the grants of that identity-server session (and of
    ``sub``, when given); with ``sub`` alone, every grant of the identity.
    """
    grants = Grant.objects.filter(account__realm=realm).select_related("account")
    if request.sid is not None:
        grants = grants.filter(op_sid=request.sid)
    if request.sub is not None:
        grants = grants.filter(account__sub=request.sub)
    ended: list[tuple[LinkedAccount, lifecycle.Ended]] = []
    with transaction.atomic():
        _remember_jti(request.issuer, request.jti, request.remember_until)
        by_account: dict[int, tuple[LinkedAccount, list[int]]] = {}
        for grant in grants:
            by_account.setdefault(grant.account_id, (grant.account, []))[1].append(grant.pk)
        for account, grant_ids in by_account.values():
            result = lifecycle.forget(account, grant_ids)
            audit.record(
                AuditEvent.Kind.BACKCHANNEL_LOGOUT,
                account,
                grants=result.grants,
                sessions=result.rows,
            )
            ended.append((account, result))
    for _account, result in ended:
        sessions.tombstone(result.sessions, sessions.ENDED_SIGNED_OUT)
    return sum(result.rows for _account, result in ended)


@ftauth_view
@login_required
@require_GET
@never_cache
def account(request: HttpRequest) -> HttpResponse:
    """The France Travail identities linked to the signed-in user, with an unlink form."""
    adapter = get_adapter()
    identities = []
    for item in LinkedAccount.objects.filter(user=request.user).order_by("realm"):
        item.user = request.user
        status = vault.account_status(item, vault.session_grant(request, item))
        identities.append(
            {
                "account": item,
                "status": status,
                "status_label": status.label,
                "can_unlink": adapter.can_unlink(request, item),
            }
        )
    return render(
        request,
        "ftauth/account.html",
        {"identities": identities, "has_password": request.user.has_usable_password()},
    )


@ftauth_view
@login_required
@require_POST
@csrf_protect
def unlink(request: HttpRequest, realm: str) -> HttpResponse:
    """Unlink one France Travail identity: every grant forgotten, the user stays.

    The other sessions signed in through that identity end (their consent can
    no longer be checked); this one stays signed in, as the same user.
    """
    account = LinkedAccount.objects.filter(user=request.user, realm=realm).first()
    if account is None:
        raise Http404
    account.user = request.user
    if not get_adapter().can_unlink(request, account):
        # The page's button is disabled then: a stale page or a hand-made request.
        return error_page(
            request,
            title=_("Identité conservée"),
            message=_(
                "Cette identité France Travail est le seul moyen de se connecter à ce "
                "compte, qui n’a pas de mot de passe : elle n’a pas été déliée. Liez "
                "d’abord une autre identité ou donnez un mot de passe au compte."
            ),
            status=409,
            home_url=safe_url(request, request.POST.get("next"), reverse("ftauth:account")),
        )
    marker = session_marker(request)
    current_sid = marker.get("sid") if marker and marker.get("account") == account.pk else None
    try:
        lifecycle.remove_account(account, kind=AuditEvent.Kind.UNLINKED, keep_sid=current_sid)
    except DatabaseError as exc:
        return service_unavailable(request, "unlink", exc)
    if current_sid:
        del request.session[SESSION_KEY]
    messages.success(
        request,
        _("Votre identité France Travail (%(realm)s) n’est plus liée à ce compte.")
        % {"realm": realm},
        fail_silently=True,
    )
    return HttpResponseRedirect(
        safe_url(request, request.POST.get("next"), reverse("ftauth:account"))
    )


@ftauth_view
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
