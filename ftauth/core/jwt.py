"""JWT signature verification: the one place where JOSE happens (joserfc).

Key selection follows the JWS header: an algorithm outside the realm's
allow-list is refused before any key is looked at (``none`` is never
allowed); ``HS*`` algorithms are keyed by the client secret and only where the
realm allows them (OIDC Core 10.1), so a public RSA key can never be used as an
HMAC secret; asymmetric keys come from the realm's JWKS, found by ``kid``, with
one refetch of the JWKS when the ``kid`` is unknown (key rotation), and a lone
JWKS key accepted when the token names no ``kid``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey

from .errors import TokenValidationError

# Asks for the JWKS; ``refresh=True`` asks for a fresh copy (may be refused by
# rate limiting, in which case the cached copy comes back).
JwksSource = Callable[[bool], dict[str, Any]]


def read_header(token: str) -> dict[str, Any]:
    """The JWS protected header, unverified. Refuses JWE and malformed tokens."""
    if not isinstance(token, str) or token.count(".") != 2:
        raise TokenValidationError("format", "not a compact JWS (three dot-separated parts)")
    try:
        obj = jws.extract_compact(token.encode("ascii"))
    except (JoseError, ValueError, UnicodeError) as exc:
        raise TokenValidationError("format", f"malformed JWS: {type(exc).__name__}") from None
    header = obj.headers()
    if not isinstance(header, dict):
        raise TokenValidationError("format", "JWS header is not an object")
    return header


def check_algorithm(header: dict[str, Any], allowed: Collection[str]) -> str:
    """OIDC Core 3.1.3.7 step 7: the ``alg`` must be one this realm is configured for."""
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        raise TokenValidationError("algorithm", "unsigned token (alg none) refused")
    if alg not in allowed:
        raise TokenValidationError(
            "algorithm", f"algorithm {alg!r} not allowed (allowed: {', '.join(allowed)})"
        )
    return alg


def _select_key(header: dict[str, Any], keyset: KeySet) -> Any:
    kid = header.get("kid")
    if kid is not None:
        if not isinstance(kid, str):
            raise TokenValidationError("kid", "kid is not a string")
        for key in keyset.keys:
            if key.kid == kid:
                return key
        # A lone key without kid: the server does not name its keys.
        if len(keyset.keys) == 1 and keyset.keys[0].kid is None:
            return keyset.keys[0]
        return None
    if len(keyset.keys) == 1:
        return keyset.keys[0]
    raise TokenValidationError(
        "kid", "token names no kid and the JWKS has several keys: cannot choose"
    )


_JWKS_ERRORS = (JoseError, ValueError, TypeError, KeyError)


def is_usable_jwks(data: dict[str, Any]) -> bool:
    """At least one key, and every key importable: a JWKS a signature can be checked with."""
    try:
        return bool(KeySet.import_key_set(data).keys)
    except _JWKS_ERRORS:
        return False


def find_key(header: dict[str, Any], jwks_source: JwksSource) -> Any:
    """The JWKS key for this header, refetching the JWKS once on an unknown ``kid``
    or when the copy at hand is unusable (empty, truncated: the server may have healed)."""
    for refresh in (False, True):
        try:
            keyset = KeySet.import_key_set(jwks_source(refresh))
        except _JWKS_ERRORS as exc:
            if not refresh:
                continue
            raise TokenValidationError("jwks", f"unusable JWKS: {type(exc).__name__}") from None
        key = _select_key(header, keyset)
        if key is not None:
            return key
    raise TokenValidationError("kid", f"no key with kid {header.get('kid')!r} in the JWKS")


def verify_signature(
    token: str,
    *,
    allowed_algorithms: Collection[str],
    jwks_source: JwksSource,
    client_secret: str = "",
) -> dict[str, Any]:
    """Verify the signature and return the payload as a dict (claims not yet checked)."""
    header = read_header(token)
    alg = check_algorithm(header, allowed_algorithms)
    if alg.startswith("HS"):
        if not client_secret:
            raise TokenValidationError("signature", "HMAC-signed token but no client secret")
        key: Any = OctKey.import_key(client_secret)
    else:
        key = find_key(header, jwks_source)
    try:
        obj = jws.deserialize_compact(token, key, algorithms=[alg])
    except JoseError as exc:
        raise TokenValidationError("signature", f"signature refused: {exc.error}") from None
    try:
        payload = json.loads(obj.payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise TokenValidationError("format", "payload is not JSON") from None
    if not isinstance(payload, dict):
        raise TokenValidationError("format", "payload is not a JSON object")
    return payload
