"""A local ProConnect, beside the France Travail look-alike (docs/proconnect.md).

It does what PROCONNECT.md documents and nothing more: everything under
``/api/v2`` with a discovery document; ``state`` and ``nonce`` of 32 characters
at least and any unknown authorize parameter refused (``Y000400``); ID tokens
and userinfo answers signed ES256 (the server's default), userinfo as
``application/jwt``; ``acr`` levels asked through ``claims`` (an ``essential``
level an identity provider cannot reach brings the person back without a code);
``amr`` absent when no MFA happened; a refresh token on every answer, rotated;
sign-out by a browser redirect that requires ``state`` and the registered
``post_logout_redirect_uri``. No back-channel logout, no consent screen.

The registered client is the site's ``proconnect`` realm (its client id and
secret); the registered URIs are ftauth's callback and sign-out return on the
site serving the sandbox. Codes and tokens are signed values (no table), single
use through the cache; the signing key is derived from ``SECRET_KEY``, so every
process of the site publishes the same one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from joserfc import jwt
from joserfc.jwk import ECKey

from ftauth.conf import get_settings
from ftauth.core.realms import PROCONNECT, PROCONNECT_OPTIONAL_PARAMS

from .common import error_page, json_response, oauth_error

REQUIRED = ("response_type", "client_id", "redirect_uri", "scope", "state", "nonce")
PKCE = ("code_challenge", "code_challenge_method")
MIN_RANDOM = 32
CODE_LIFETIME = 60
ACCESS_TOKEN_LIFETIME = 3600
SESSION_LIFETIME = 12 * 3600
LEVELS = ("eidas1", "eidas1-mfa")
FRANCE_TRAVAIL_IDP = "sandbox-france-travail"


@dataclass(frozen=True)
class Professional:
    """A test identity at one identity provider (its ``sub`` is per provider)."""

    key: str
    label: str
    idp_id: str
    mfa: bool
    claims: dict[str, Any]


PROFESSIONALS = {
    p.key: p
    for p in (
        Professional(
            "advisor",
            "Aline Conseil, conseillère France Travail (agence 75011)",
            FRANCE_TRAVAIL_IDP,
            True,
            {
                "sub": "sandbox-pc-advisor",
                "given_name": "Aline",
                "usual_name": "Conseil",
                "email": "aline.conseil@francetravail.example",
                "siret": "13000548100010",
                "organization_label": "France Travail",
                "custom": {"structureTravail": "75011"},
            },
        ),
        Professional(
            "agent",
            "Paul Public, agent de l'État",
            "sandbox-agents-etat",
            True,
            {
                "sub": "sandbox-pc-agent",
                "given_name": "Paul",
                "usual_name": "Public",
                "email": "paul.public@ministere.example",
                "siret": "11000201100044",
                "roles": ["agent_public", "agent_public_etat"],
            },
        ),
        Professional(
            "prescriber",
            "Prune Scriptrice, prescriptrice (association)",
            "sandbox-proconnect-identite",
            True,
            {
                "sub": "sandbox-pc-prescriber",
                "given_name": "Prune",
                "usual_name": "Scriptrice",
                "email": "prune@association.example",
                "siret": "44306184100047",
                "roles": [],
            },
        ),
        Professional(
            "no_mfa",
            "Nora Sansmfa, mairie (fournisseur d'identité sans double authentification)",
            "sandbox-idp-without-mfa",
            False,
            {
                "sub": "sandbox-pc-nomfa",
                "given_name": "Nora",
                "usual_name": "Sansmfa",
                "email": "nora@petite-mairie.example",
                "siret": "21750001600019",
                "roles": ["agent_public_territorial"],
            },
        ),
    )
}


# --- keys, URLs, the registered client ----------------------------------------------------------


def signing_key() -> ECKey:
    """A P-256 key derived from ``SECRET_KEY``: the same in every process of the site."""
    seed = hmac.new(settings.SECRET_KEY.encode(), b"ftauth.sandbox.proconnect", "sha256")
    order = int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)
    private = ec.derive_private_key(int.from_bytes(seed.digest()) % (order - 1) + 1, ec.SECP256R1())
    return ECKey.import_key(private, parameters={"kid": "sandbox-proconnect-1", "use": "sig"})


def issuer(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("ftauth_sandbox:proconnect_root")).rstrip("/")


def _client() -> tuple[str, str]:
    conf = get_settings()
    realm = conf.realms.get(PROCONNECT)
    client_id = (realm.client_id if realm else "") or conf.client_id
    secret = (realm.client_secret if realm else "") or conf.client_secret
    return client_id, secret


def _registered(request: HttpRequest, name: str, *args: str) -> str:
    return request.build_absolute_uri(reverse(name, args=args))


def _sign(claims: dict[str, Any], typ: str = "JWT") -> str:
    return jwt.encode(
        {"alg": "ES256", "kid": "sandbox-proconnect-1", "typ": typ}, claims, signing_key()
    )


def _seal(payload: dict[str, Any], purpose: str) -> str:
    return signing.dumps(payload, salt=f"ftauth.sandbox.proconnect.{purpose}", compress=True)


def _unseal(value: str, purpose: str, max_age: int) -> dict[str, Any] | None:
    try:
        data = signing.loads(value, salt=f"ftauth.sandbox.proconnect.{purpose}", max_age=max_age)
    except (signing.BadSignature, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _once(value: str) -> bool:
    """True the first time ``value`` is spent (codes, rotated refresh tokens)."""
    key = "ftauth:sandbox:proconnect:spent:" + hashlib.sha256(value.encode()).hexdigest()
    return cache.add(key, 1, SESSION_LIFETIME)


# --- discovery and keys -----------------------------------------------------------------------


@require_GET
def root(request: HttpRequest) -> HttpResponse:
    return HttpResponseRedirect(reverse("ftauth_sandbox:proconnect_discovery"))


@require_GET
def discovery(request: HttpRequest) -> HttpResponse:
    base = issuer(request)
    return json_response(
        {
            "issuer": base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/userinfo",
            "end_session_endpoint": f"{base}/session/end",
            "jwks_uri": f"{base}/jwks",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "id_token_signing_alg_values_supported": ["ES256", "RS256", "HS256"],
            "userinfo_signing_alg_values_supported": ["ES256", "RS256", "HS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
            "acr_values_supported": list(LEVELS),
            "claims_parameter_supported": True,
            "code_challenge_methods_supported": ["S256"],
            "backchannel_logout_supported": False,
        }
    )


@require_GET
def jwks(request: HttpRequest) -> HttpResponse:
    return json_response({"keys": [signing_key().as_dict(private=False)]})


# --- authorize --------------------------------------------------------------------------------


def _asked_levels(claims: str) -> tuple[list[str], bool]:
    try:
        acr = json.loads(claims or "{}").get("id_token", {}).get("acr") or {}
    except (ValueError, AttributeError):
        return [], False
    if not isinstance(acr, dict):
        return [], False
    values = acr.get("values") or ([acr["value"]] if isinstance(acr.get("value"), str) else [])
    return [v for v in values if isinstance(v, str)], acr.get("essential") is True


def _refusal(request: HttpRequest, code: str, reason: str) -> HttpResponse:
    # ProConnect shows its own page with the error code; it does not redirect.
    return error_page(
        request,
        _("ProConnect refuse la demande (%(code)s) : %(reason)s")
        % {"code": code, "reason": reason},
        status=400,
    )


@never_cache
@require_http_methods(["GET", "POST"])
def authorize(request: HttpRequest) -> HttpResponse:
    params = request.GET if request.method == "GET" else request.POST
    names = set(params) - {"professional", "csrfmiddlewaretoken"}
    unknown = names - set(REQUIRED) - set(PKCE) - PROCONNECT_OPTIONAL_PARAMS
    if unknown:
        return _refusal(
            request, "Y000400", _("paramètre inconnu : %s") % ", ".join(sorted(unknown))
        )
    missing = [name for name in REQUIRED if not params.get(name)]
    if missing:
        return _refusal(request, "Y000400", _("paramètre manquant : %s") % ", ".join(missing))
    if len(params["state"]) < MIN_RANDOM or len(params["nonce"]) < MIN_RANDOM:
        return _refusal(request, "Y000400", _("state et nonce : 32 caractères au moins"))
    client_id, _secret = _client()
    if params["client_id"] != client_id or params["response_type"] != "code":
        return _refusal(request, "Y000400", _("client inconnu"))
    if params["redirect_uri"] != _registered(request, "ftauth:callback", PROCONNECT):
        return _refusal(request, "Y030118", _("redirect_uri non enregistrée"))
    if "openid" not in params["scope"].split():
        return _refusal(request, "Y000400", _("le périmètre openid est requis"))
    if params.get("code_challenge") and params.get("code_challenge_method") != "S256":
        return _refusal(request, "Y000400", _("PKCE : S256 seulement"))
    asked, essential = _asked_levels(params.get("claims", ""))
    hint = params.get("idp_hint", "")
    choices = [p for p in PROFESSIONALS.values() if not hint or p.idp_id == hint]
    if not choices:
        choices = list(PROFESSIONALS.values())  # an unknown hint: the usual choice
    chosen = (
        PROFESSIONALS.get(request.POST.get("professional", ""))
        if request.method == "POST"
        else None
    )
    if chosen is None:
        fields = {name: params[name] for name in names}
        return render(
            request,
            "ftauth_sandbox/proconnect_login.html",
            {"choices": choices, "fields": fields, "levels": asked},
        )
    acr = _reached_level(chosen, asked)
    back = {"state": params["state"], "iss": issuer(request)}
    if acr is None and essential:
        # What les-emplois met: the level cannot be reached, no code comes back.
        return HttpResponseRedirect(
            f"{params['redirect_uri']}?{urlencode({'state': params['state']})}"
        )
    acr = acr or "eidas1"
    code = _seal(
        {
            "professional": chosen.key,
            "client_id": client_id,
            "redirect_uri": params["redirect_uri"],
            "nonce": params["nonce"],
            "scope": params["scope"],
            "challenge": params.get("code_challenge", ""),
            "acr": acr,
            "amr": ["pwd", "otp", "mfa"] if acr.endswith("-mfa") else None,
            "sid": secrets.token_urlsafe(12),
            "auth_time": int(time.time()),
        },
        "code",
    )
    return HttpResponseRedirect(f"{params['redirect_uri']}?{urlencode({'code': code, **back})}")


def _reached_level(professional: Professional, asked: list[str]) -> str | None:
    """The best level among those asked the person's provider reaches (any: eidas1-mfa
    with MFA, eidas1 without); None when none asked is reachable."""
    reachable = LEVELS if professional.mfa else ("eidas1",)
    if not asked:
        return reachable[-1]
    return next((level for level in reversed(reachable) if level in asked), None)


# --- token, userinfo --------------------------------------------------------------------------


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _tokens(request: HttpRequest, grant: dict[str, Any], *, nonce: bool) -> dict[str, Any]:
    now = int(time.time())
    professional = PROFESSIONALS[grant["professional"]]
    client_id = grant["client_id"]
    claims: dict[str, Any] = {
        "iss": issuer(request),
        "sub": professional.claims["sub"],
        "aud": client_id,
        "iat": now,
        "exp": now + ACCESS_TOKEN_LIFETIME,
        "auth_time": grant["auth_time"],
        "sid": grant["sid"],
        "acr": grant["acr"],
        "idp_id": professional.idp_id,
    }
    if grant.get("amr"):
        claims["amr"] = grant["amr"]
    if nonce:
        claims["nonce"] = grant["nonce"]
    session = {
        k: grant[k]
        for k in ("professional", "client_id", "scope", "acr", "amr", "sid", "auth_time")
    }
    session["until"] = grant.get("until", now + SESSION_LIFETIME)
    return {
        "access_token": _seal({**session, "exp": now + ACCESS_TOKEN_LIFETIME}, "access"),
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_LIFETIME,
        "scope": grant["scope"],
        "id_token": _sign(claims),
        # Always issued, rotated on use; it lives as long as the ProConnect session.
        "refresh_token": _seal({**session, "jti": secrets.token_urlsafe(12)}, "refresh"),
    }


@csrf_exempt
@never_cache
@require_POST
def token(request: HttpRequest) -> HttpResponse:
    form = request.POST
    client_id, secret = _client()
    if form.get("client_id") != client_id or not hmac.compare_digest(
        form.get("client_secret", "").encode(), secret.encode()
    ):
        return oauth_error("invalid_client", "client authentication failed", 401)
    grant_type = form.get("grant_type")
    if grant_type == "authorization_code":
        code = form.get("code", "")
        grant = _unseal(code, "code", CODE_LIFETIME)
        if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
            return oauth_error("invalid_grant", "code invalid or expired")
        if grant["challenge"] and _s256(form.get("code_verifier", "")) != grant["challenge"]:
            return oauth_error("invalid_grant", "PKCE verification failed")
        if not _once(code):
            return oauth_error("invalid_grant", "code already used")
        return json_response(
            _tokens(request, grant, nonce=True), headers={"Cache-Control": "no-store"}
        )
    if grant_type == "refresh_token":
        refresh = form.get("refresh_token", "")
        grant = _unseal(refresh, "refresh", SESSION_LIFETIME)
        if grant is None or grant.get("until", 0) < time.time() or not _once(refresh):
            return oauth_error("invalid_grant", "refresh token invalid, expired or used")
        return json_response(
            _tokens(request, grant, nonce=False), headers={"Cache-Control": "no-store"}
        )
    return oauth_error("unsupported_grant_type", "authorization_code or refresh_token")


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def userinfo(request: HttpRequest) -> HttpResponse:
    header = request.headers.get("Authorization", "")
    grant = _unseal(header.removeprefix("Bearer "), "access", ACCESS_TOKEN_LIFETIME)
    if not header.startswith("Bearer ") or grant is None or grant.get("exp", 0) < time.time():
        return HttpResponse(
            status=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        )
    professional = PROFESSIONALS[grant["professional"]]
    claims = {
        **professional.claims,
        "idp_id": professional.idp_id,
        "iss": issuer(request),
        "aud": grant["client_id"],
    }
    return HttpResponse(_sign(claims), content_type="application/jwt")


# --- sign-out ---------------------------------------------------------------------------------


@never_cache
@require_GET
def end_session(request: HttpRequest) -> HttpResponse:
    """A browser redirect; ``state`` and the registered URI are required (``Y030111``)."""
    state = request.GET.get("state", "")
    uri = request.GET.get("post_logout_redirect_uri", "")
    if not state or not request.GET.get("id_token_hint"):
        return _refusal(request, "Y000400", _("state et id_token_hint sont requis"))
    if uri != _registered(request, "ftauth:logout_return"):
        return _refusal(request, "Y030111", _("post_logout_redirect_uri non enregistrée"))
    return HttpResponseRedirect(f"{uri}?{urlencode({'state': state})}")
