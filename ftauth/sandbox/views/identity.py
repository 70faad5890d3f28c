"""Discovery, JWKS, token endpoint and end session of the identity servers."""

from __future__ import annotations

import logging
from typing import Any

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import InsecureTransportError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from joserfc import jwt
from joserfc.errors import JoseError

from ftauth.internal.framing import no_framing

from ..clients import get_client
from ..conf import get_sandbox_settings
from ..consents import end_login_session
from ..directory import (
    APPLICATION_SCOPES,
    HOST_REALMS,
    PERSONAS,
    USER_SCOPES,
    parse_realm,
    personas_of,
)
from ..keys import public_jwks, verification_keys
from ..server import SandboxRequest, server
from ..sessions import sign_out
from ..site import RealmSite, host_base, issuer_for, realm_site
from .common import json_response, oauth_error, served_site

logger = logging.getLogger("ftauth.sandbox")


@no_framing
def index(request: HttpRequest) -> HttpResponse:
    """A page for humans: the hosts, realms and personas of the sandbox."""
    hosts = [
        {
            "host": host,
            "base": host_base(request, host),
            "realms": [
                {
                    "name": realm,
                    "site": realm_site(request, host, realm),
                    "personas": personas_of(realm),
                }
                for realm in realms
            ],
        }
        for host, realms in HOST_REALMS.items()
    ]
    return render(request, "ftauth_sandbox/index.html", {"hosts": hosts, "personas": PERSONAS})


def host_home(request: HttpRequest, host: str) -> HttpResponse:
    return index(request)


def _discovery_document(site: RealmSite) -> dict:
    scopes = sorted(USER_SCOPES[site.realm])
    if site.realm == "partenaire":
        scopes += sorted(APPLICATION_SCOPES)
    grant_types = ["authorization_code", "refresh_token"]
    if site.realm == "partenaire":
        grant_types.append("client_credentials")
    document = {
        "issuer": site.issuer,
        "authorization_endpoint": site.authorization_endpoint,
        "token_endpoint": site.token_endpoint,
        "jwks_uri": site.jwks_uri,
        "end_session_endpoint": site.end_session_endpoint,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": grant_types,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": scopes,
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "azp",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "sid",
            "given_name",
            "family_name",
            "gender",
            "email",
            "email_verified",
            "idIdentiteExterne",
            "habilitation",
        ],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": False,
    }
    if site.userinfo_endpoint:
        document["userinfo_endpoint"] = site.userinfo_endpoint
    return document


def discovery(request: HttpRequest, host: str, realm: str) -> HttpResponse:
    site = served_site(request, host, realm)
    return json_response(_discovery_document(site))


def discovery_by_query(request: HttpRequest, host: str) -> HttpResponse:
    site = served_site(request, host, request.GET.get("realm"))
    return json_response(_discovery_document(site))


def jwks(request: HttpRequest, host: str) -> HttpResponse:
    site = served_site(request, host, request.GET.get("realm"))
    return get_sandbox_settings().hooks.jwks_response(
        request, site.realm, lambda: json_response(public_jwks(site.realm))
    )


@csrf_exempt
def token(request: HttpRequest, host: str) -> HttpResponse:
    if request.method != "POST":
        return oauth_error("invalid_request", "The token endpoint takes POST only", 405)
    if not request.GET.get("realm"):
        if request.POST.get("realm"):
            # France Travail's quirk: the realm must be in the URL's query.
            return oauth_error(
                "invalid_request",
                "The realm must be in the URL query (?realm=%2Findividu), not in the body",
            )
        return oauth_error("invalid_request", "Missing 'realm' in the URL query")
    realm = parse_realm(request.GET["realm"])
    if realm is None or realm not in HOST_REALMS[host]:
        return oauth_error("invalid_request", "Unknown realm on this server")
    site = realm_site(request, host, realm)

    def answer() -> HttpResponse:
        try:
            return server.create_token_response(SandboxRequest(request, site, form_only=True))
        except InsecureTransportError:
            return oauth_error("invalid_request", "HTTPS is required")

    return get_sandbox_settings().hooks.token_endpoint(request, answer)


@no_framing
@never_cache
def end_session(request: HttpRequest, host: str) -> HttpResponse:
    """RP-initiated logout, France Travail style (``redirect_uri``, not ``post_logout_...``)."""
    redirect_uri = request.GET.get("redirect_uri") or request.GET.get("post_logout_redirect_uri")
    client, hint_sid = _logout_client(request, host)
    target = None
    if redirect_uri and client is not None and client.check_post_logout_redirect_uri(redirect_uri):
        target = redirect_uri
        if request.GET.get("state"):
            target = add_params_to_uri(target, [("state", request.GET["state"])])
    if target:
        response: HttpResponse = HttpResponseRedirect(target)
    else:
        response = render(
            request, "ftauth_sandbox/logged_out.html", {"base": host_base(request, host)}
        )
    login = sign_out(request, response, host)
    # The login session that ended: the hint's (the application's own view), else
    # the browser's sign-in on this host.
    sid = hint_sid or (login.sid if login is not None else None)
    if sid and client is not None:
        end_login_session(sid, client.client_id)
    return response


def _logout_client(request: HttpRequest, host: str) -> tuple[Any, str | None]:
    """The client named by a valid ``id_token_hint`` (expired is fine), or ``client_id``;
    and the hint's ``sid``, if any."""
    hint = request.GET.get("id_token_hint")
    if hint:
        realms = HOST_REALMS[host]
        try:
            token = jwt.decode(hint, verification_keys(realms), algorithms=["RS256"])
        except (JoseError, ValueError):
            logger.info("sandbox end session: id_token_hint not signed by this server")
            return None, None
        base = host_base(request, host)
        if token.claims.get("iss") not in {issuer_for(base, realm) for realm in realms}:
            return None, None
        aud = token.claims.get("aud")
        client_id = aud[0] if isinstance(aud, list) and aud else aud
        if request.GET.get("client_id") and request.GET["client_id"] != client_id:
            return None, None
        sid = token.claims.get("sid")
        client = get_client(client_id if isinstance(client_id, str) else None)
        return client, sid if isinstance(sid, str) else None
    return get_client(request.GET.get("client_id")), None
