"""ID tokens and logout tokens, signed by joserfc.

A test hook (``FTAUTH_SANDBOX["HOOKS"]``) may change an ID token's claims or
signature, to prove a client's checks of OpenID Connect Core 3.1.3.7 over HTTP.
"""

from __future__ import annotations

import secrets
import time

from authlib.oidc.core.util import create_half_hash
from joserfc import jwt

from .clients import SandboxClient
from .conf import get_sandbox_settings
from .directory import Persona
from .keys import current_signing_key

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def sign(claims: dict, realm: str) -> str:
    """Sign ``claims`` with the realm's current key (RS256, its ``kid`` in the header)."""
    key = current_signing_key(realm)
    return jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "JWT"}, claims, key)


def build_id_token(
    *,
    realm: str,
    issuer: str,
    client: SandboxClient,
    persona: Persona,
    scopes: set[str],
    sid: str,
    auth_time: int | None,
    nonce: str | None,
    access_token: str | None = None,
) -> str:
    """An ID token (OpenID Connect Core 2) for ``persona``."""
    settings = get_sandbox_settings()
    iat = int(time.time())
    claims: dict[str, object] = dict(persona.claims_for(scopes))
    claims.update(
        {
            "iss": issuer,
            "aud": client.client_id,
            "azp": client.client_id,
            "iat": iat,
            "exp": iat + settings.id_token_lifetime,
            "auth_time": auth_time if auth_time is not None else iat,
            "sid": sid,
            "tokenName": "id_token",
        }
    )
    if nonce:
        claims["nonce"] = nonce
    if access_token:
        at_hash = create_half_hash(access_token, "RS256")
        claims["at_hash"] = at_hash.decode() if isinstance(at_hash, bytes) else at_hash
    claims = settings.hooks.id_token_claims(claims, client=client)
    return settings.hooks.sign_id_token(claims, realm=realm, client=client) or sign(claims, realm)


def build_logout_token(
    *, realm: str, issuer: str, client: SandboxClient, sub: str, sid: str
) -> str:
    """A logout token (OpenID Connect Back-Channel Logout 1.0, section 2.4): no nonce."""
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": issuer,
        "aud": client.client_id,
        "iat": now,
        "exp": now + 120,
        "jti": secrets.token_urlsafe(16),
        "sub": sub,
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    }
    if sid:
        claims["sid"] = sid
    key = current_signing_key(realm)
    return jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "logout+jwt"}, claims, key)
