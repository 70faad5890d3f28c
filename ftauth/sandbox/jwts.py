"""ID tokens and logout tokens, signed by joserfc, tampered on request.

Each ``id_token_*`` tamper mode breaks exactly one rule of OpenID Connect
Core 3.1.3.7 so that a client's check of that rule can be proved over HTTP;
everything else in the token stays valid.
"""

from __future__ import annotations

import secrets
import time
import warnings
from collections.abc import Iterable

from authlib.oidc.core.util import create_half_hash
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from .clients import SandboxClient
from .conf import get_sandbox_settings
from .directory import Persona
from .keys import KEY_SIZE, current_signing_key

OTHER_CLIENT = "sandbox-other-client"
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def _times(lifetime: int, tamper: frozenset[str]) -> tuple[int, int]:
    now = int(time.time())
    if "id_token_expired" in tamper:
        return now - 900, now - 600
    if "id_token_iat_future" in tamper:
        return now + 600, now + 600 + lifetime
    if "id_token_too_old" in tamper:
        # Issued 3 h ago (older than the 2 h 30 lifetime) yet not expired.
        return now - 3 * 3600, now + 600
    return now, now + lifetime


def _audience(client_id: str, tamper: frozenset[str]) -> dict[str, object]:
    if "id_token_wrong_aud" in tamper:
        return {"aud": OTHER_CLIENT}
    if "id_token_multi_aud_no_azp" in tamper:
        return {"aud": [client_id, OTHER_CLIENT]}
    if "id_token_wrong_azp" in tamper:
        return {"aud": [client_id, OTHER_CLIENT], "azp": OTHER_CLIENT}
    return {"aud": client_id, "azp": client_id}


def sign(claims: dict, realm: str, client: SandboxClient, tamper: Iterable[str] = ()) -> str:
    """Sign ``claims`` with the realm's current key, or as a tamper mode says."""
    tamper = frozenset(tamper)
    if "id_token_alg_none" in tamper:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return jwt.encode({"alg": "none"}, claims, None, algorithms=["none"])
    if "id_token_hs256" in tamper:
        # What a server might do when misconfigured: HMAC keyed by the client secret.
        key = OctKey.import_key(client.client_secret)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return jwt.encode({"alg": "HS256"}, claims, key, algorithms=["HS256"])
    key = current_signing_key(realm)
    kid = key.kid
    if "id_token_unknown_kid" in tamper or "id_token_bad_signature" in tamper:
        # A key the JWKS does not publish; with the real kid, the signature is bad.
        key = RSAKey.generate_key(KEY_SIZE, private=True)
        if "id_token_unknown_kid" in tamper:
            kid = f"sandbox-unknown-{secrets.token_urlsafe(6)}"
    return jwt.encode({"alg": "RS256", "kid": kid, "typ": "JWT"}, claims, key)


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
    """An ID token (OpenID Connect Core 2) for ``persona``, tampered as configured."""
    settings = get_sandbox_settings()
    tamper = settings.tamper
    iat, exp = _times(settings.id_token_lifetime, tamper)
    claims: dict[str, object] = dict(persona.claims_for(scopes))
    claims.update(
        {
            "iss": issuer + "/" if "id_token_wrong_iss" in tamper else issuer,
            "iat": iat,
            "exp": exp,
            "auth_time": auth_time if auth_time is not None else iat,
            "sid": sid,
            "tokenName": "id_token",
            **_audience(client.client_id, tamper),
        }
    )
    if nonce:
        claims["nonce"] = (
            f"tampered-{secrets.token_urlsafe(8)}" if "id_token_wrong_nonce" in tamper else nonce
        )
    if access_token:
        at_hash = create_half_hash(access_token, "RS256")
        claims["at_hash"] = at_hash.decode() if isinstance(at_hash, bytes) else at_hash
    if "id_token_no_sub" in tamper:
        claims.pop("sub", None)
    return sign(claims, realm, client, tamper)


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
