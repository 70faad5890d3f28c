"""The sandbox's authorization server, on authlib's server components.

authlib validates the requests (client, redirect URI, PKCE, codes, grants)
and shapes the error answers; this module stores what it issues and adds
France Travail's habits: ``iss`` and ``client_id`` in the callback (RFC 9207
and France Travail's own), ``nonce`` at the top of the token response,
client_secret_post (Basic only for an extra client registered for it, standing
for another server), PKCE S256 only, 60-second single-use codes whose
replay revokes the tokens they gave (RFC 6749 10.5), refresh-token rotation,
ID tokens on refresh (OpenID Connect Core 12.2), client credentials on
``/partenaire`` only.
"""

from __future__ import annotations

import secrets
import time
from collections import defaultdict
from typing import Any

from authlib.common.urls import add_params_to_uri
from authlib.integrations.django_oauth2 import AuthorizationServer
from authlib.integrations.django_oauth2.requests import DjangoOAuth2Payload, DjangoOAuth2Request
from authlib.oauth2.rfc6749 import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnauthorizedClientError,
    grants,
)
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core.grants import OpenIDCode
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.functional import cached_property

from .clients import SandboxClient, get_client
from .conf import get_sandbox_settings
from .directory import APPLICATION_SCOPES, get_persona, is_known_user_scope
from .jwts import build_id_token
from .models import AuthorizationCode, Consent, IssuedToken, LoginSession, digest
from .site import RealmSite


class _FormPayload(DjangoOAuth2Payload):
    """Token requests are read from the form body only (RFC 6749 4.1.3)."""

    @cached_property
    def data(self) -> dict[str, str]:
        return self._request.POST.dict()

    @cached_property
    def datalist(self) -> dict[str, list[str]]:
        values: dict[str, list[str]] = defaultdict(list)
        for key in self._request.POST:
            values[key].extend(self._request.POST.getlist(key))
        return values


class SandboxRequest(DjangoOAuth2Request):
    """authlib's request, plus the realm it is served for and the login session."""

    def __init__(self, request: HttpRequest, site: RealmSite, *, form_only: bool = False):
        super().__init__(request)
        if form_only:
            self.payload = _FormPayload(request)
        self.site = site
        self.login: LoginSession | None = None


def _requested_scopes(request: SandboxRequest) -> list[str]:
    return (request.payload.scope or "").split()


class _RealmScopes:
    """Scopes are checked per realm, and application scopes apart."""

    request: SandboxRequest

    def validate_requested_scope(self) -> None:
        client_id = self.request.payload.client_id or ""
        realm = self.request.site.realm
        unknown = [
            s
            for s in _requested_scopes(self.request)
            if not is_known_user_scope(realm, s, client_id)
        ]
        if unknown:
            raise InvalidScopeError(f"Unknown scope for realm /{realm}: {' '.join(unknown)}")


class S256Required(CodeChallenge):
    """PKCE is mandatory and ``plain`` is refused (RFC 7636 4.2, RFC 9700 2.1.1)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: missing 'code_challenge'")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be 'S256'")
        super().validate_code_challenge(grant, redirect_uri)


class AuthorizationCodeGrant(_RealmScopes, grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_post", "client_secret_basic"]

    def validate_authorization_redirect_uri(self, request: SandboxRequest, client: Any) -> str:
        uri = request.payload.redirect_uri
        if not uri:
            raise InvalidRequestError("Missing 'redirect_uri'")
        if not client.check_redirect_uri(uri, request.site.realm):
            raise InvalidRequestError("'redirect_uri' is not registered for this client")
        return uri

    def create_authorization_response(self, redirect_uri: str, grant_user: Any) -> tuple:
        status, body, headers = super().create_authorization_response(redirect_uri, grant_user)
        location = dict(headers)["Location"]
        site = self.request.site
        # RFC 9207; France Travail also sends client_id.
        params = [("iss", site.issuer), ("client_id", self.client.client_id)]
        params = get_sandbox_settings().hooks.authorization_params(
            params, site=site, client=self.client
        )
        return status, body, [("Location", add_params_to_uri(location, params))]

    def save_authorization_code(self, code: str, request: SandboxRequest) -> None:
        data = request.payload.data
        login = request.login
        assert login is not None  # the view signs the persona in before issuing
        client: SandboxClient = request.client
        AuthorizationCode.objects.create(
            code_hash=digest(code),
            client_id=client.client_id,
            realm=request.site.realm,
            issuer=request.site.issuer,
            persona_sub=request.user.sub,
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope or request.payload.scope or "",
            nonce=data.get("nonce") or "",
            code_challenge=data["code_challenge"],
            code_challenge_method=data["code_challenge_method"],
            sid=login.sid,
            auth_time=login.auth_time,
            backchannel_logout_uri=client.backchannel_logout_uri_for(
                request.payload.redirect_uri, request.site.realm
            ),
        )

    def query_authorization_code(self, code: str, client: Any) -> AuthorizationCode | None:
        row = AuthorizationCode.objects.filter(
            code_hash=digest(code), client_id=client.client_id, realm=self.request.site.realm
        ).first()
        if row is None:
            return None
        # Single use, atomically: of two concurrent exchanges only one wins.
        claimed = AuthorizationCode.objects.filter(pk=row.pk, used_at__isnull=True).update(
            used_at=timezone.now()
        )
        if not claimed:
            # RFC 6749 4.1.2 and 10.5: a replayed code revokes what it gave.
            IssuedToken.objects.filter(authorization_code=row, revoked_at__isnull=True).update(
                revoked_at=timezone.now()
            )
            return None
        if row.created_at + get_sandbox_settings().code_lifetime < time.time():
            return None
        return row

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        # Kept, marked used, so that a replay can be recognised.
        pass

    def authenticate_user(self, authorization_code: AuthorizationCode) -> Any:
        if not consent_is_active(
            authorization_code.realm, authorization_code.persona_sub, authorization_code.client_id
        ):
            return None
        return get_persona(authorization_code.persona_sub, authorization_code.realm)


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_post", "client_secret_basic"]

    def authenticate_refresh_token(self, refresh_token: str) -> IssuedToken | None:
        return IssuedToken.objects.filter(
            refresh_token_hash=digest(refresh_token),
            realm=self.request.site.realm,
            revoked_at__isnull=True,
            refresh_revoked_at__isnull=True,
        ).first()

    def validate_token_request(self) -> None:
        super().validate_token_request()
        if get_sandbox_settings().rotate_refresh_tokens:
            # A rotated refresh token is good for one use, even under concurrency.
            claimed = IssuedToken.objects.filter(
                pk=self.request.refresh_token.pk, refresh_revoked_at__isnull=True
            ).update(refresh_revoked_at=timezone.now())
            if not claimed:
                raise InvalidGrantError()

    def issue_token(self, user: Any, refresh_token: IssuedToken) -> dict:
        scope = self.request.payload.scope or refresh_token.get_scope()
        return self.generate_token(
            user=user,
            scope=scope,
            include_refresh_token=get_sandbox_settings().rotate_refresh_tokens,
        )

    def authenticate_user(self, refresh_token: IssuedToken) -> Any:
        if not consent_is_active(
            refresh_token.realm, refresh_token.persona_sub, refresh_token.client_id
        ):
            return None
        return get_persona(refresh_token.persona_sub, refresh_token.realm)

    def revoke_old_credential(self, refresh_token: IssuedToken) -> None:
        # Done atomically in validate_token_request.
        pass


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_post", "client_secret_basic"]

    def validate_token_request(self) -> None:
        if self.request.site.realm != "partenaire":
            raise UnauthorizedClientError("client_credentials is only served on realm /partenaire")
        super().validate_token_request()

    def validate_requested_scope(self) -> None:
        scopes = _requested_scopes(self.request)
        if not scopes:
            raise InvalidScopeError("client_credentials needs a 'scope', e.g. api_offresdemploiv2")
        unknown = set(scopes) - APPLICATION_SCOPES
        if unknown:
            raise InvalidScopeError(f"Unknown application scope: {' '.join(sorted(unknown))}")


class SandboxOpenIDCode(OpenIDCode):
    """ID token and top-level ``nonce`` in the code exchange's answer."""

    def exists_nonce(self, nonce: str, request: SandboxRequest) -> bool:
        return AuthorizationCode.objects.filter(
            client_id=request.payload.client_id, nonce=nonce
        ).exists()

    def process_token(self, grant: Any, response: tuple) -> dict:
        _, token, _ = response
        request: SandboxRequest = grant.request
        code: AuthorizationCode = request.authorization_code
        scopes = set(token.get("scope", "").split())
        if "openid" in scopes:
            token["id_token"] = build_id_token(
                realm=code.realm,
                issuer=code.issuer,
                client=request.client,
                persona=request.user,
                scopes=scopes,
                sid=code.sid,
                auth_time=code.auth_time,
                nonce=code.nonce,
                access_token=token["access_token"],
            )
        if code.nonce:
            # France Travail repeats the nonce at the top of the token response.
            token["nonce"] = code.nonce
        return token


def _refreshed_id_token(grant: Any, response: tuple) -> None:
    """OpenID Connect Core 12.2: same iss, sub, aud, azp, auth_time; no nonce."""
    _, token, _ = response
    request: SandboxRequest = grant.request
    previous: IssuedToken = request.refresh_token
    scopes = set(token.get("scope", "").split())
    if "openid" in scopes and request.user is not None:
        token["id_token"] = build_id_token(
            realm=previous.realm,
            issuer=previous.issuer,
            client=request.client,
            persona=request.user,
            scopes=scopes,
            sid=previous.sid,
            auth_time=previous.auth_time,
            nonce=None,
            access_token=token["access_token"],
        )


def _refresh_extension(grant: Any) -> None:
    grant.register_hook("after_create_token_response", _refreshed_id_token)


def consent_is_active(realm: str, persona_sub: str, client_id: str) -> bool:
    return Consent.objects.filter(
        realm=realm, persona_sub=persona_sub, client_id=client_id, withdrawn_at__isnull=True
    ).exists()


class SandboxAuthorizationServer(AuthorizationServer):
    """authlib's Django server with the sandbox's clients, storage and realms."""

    def __init__(self) -> None:
        super().__init__(client_model=None, token_model=IssuedToken)
        self.register_token_generator("default", self.generate_bearer_token)
        self.register_grant(AuthorizationCodeGrant, [S256Required(), SandboxOpenIDCode()])
        self.register_grant(RefreshTokenGrant, [_refresh_extension])
        self.register_grant(ClientCredentialsGrant)

    def query_client(self, client_id: str) -> SandboxClient | None:
        return get_client(client_id)

    def create_oauth2_request(self, request: Any) -> SandboxRequest:
        if isinstance(request, SandboxRequest):
            return request
        return SandboxRequest(request, request.sandbox_site)

    @staticmethod
    def generate_bearer_token(
        grant_type: str,
        client: SandboxClient,
        user: Any = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict:
        token = {
            "access_token": secrets.token_urlsafe(32),
            "token_type": "Bearer",
            "expires_in": get_sandbox_settings().access_token_lifetime,
            "scope": scope or "",
        }
        if include_refresh_token:
            token["refresh_token"] = secrets.token_urlsafe(32)
        return token

    def save_token(self, token: dict, request: SandboxRequest) -> IssuedToken:
        code: AuthorizationCode | None = request.authorization_code
        previous: IssuedToken | None = request.refresh_token
        source: Any = code or previous
        refresh = token.get("refresh_token")
        return IssuedToken.objects.create(
            access_token_hash=digest(token["access_token"]),
            refresh_token_hash=digest(refresh) if refresh else None,
            client_id=request.client.client_id,
            realm=request.site.realm,
            issuer=request.site.issuer,
            persona_sub=request.user.sub if request.user is not None else "",
            scope=token.get("scope", ""),
            sid=source.sid if source else "",
            auth_time=source.auth_time if source else None,
            expires_in=token["expires_in"],
            authorization_code=code or (previous.authorization_code if previous else None),
            backchannel_logout_uri=source.backchannel_logout_uri if source else "",
        )

    def handle_error_response(self, request: SandboxRequest, error: OAuth2Error) -> Any:
        if error.redirect_uri and isinstance(request, SandboxRequest):
            # RFC 9207: error responses carry the issuer too.
            error.redirect_uri = add_params_to_uri(
                error.redirect_uri, [("iss", request.site.issuer)]
            )
        return super().handle_error_response(request, error)

    def create_token_response(self, request: Any = None) -> Any:
        with transaction.atomic():
            return super().create_token_response(request)


server = SandboxAuthorizationServer()
