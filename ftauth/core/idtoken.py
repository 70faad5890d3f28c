"""ID token validation, one small named check per rule of OIDC Core 3.1.3.7.

Each check raises :class:`TokenValidationError` with its own ``rule`` name.
The signature and algorithm checks (steps 6 to 8) live in ``core.jwt``;
:func:`validate_id_token` runs them all in the order of the specification.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import TokenValidationError
from .jwt import JwksSource, verify_signature
from .numbers import is_timestamp
from .realms import ID_TOKEN_LIFETIME

Claims = Mapping[str, Any]


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def check_issuer(claims: Claims, issuer: str) -> None:
    """Step 2: ``iss`` exactly equal to the realm's issuer (no normalisation)."""
    if claims.get("iss") != issuer:
        raise TokenValidationError("iss", "issuer does not match the realm's issuer")


def audiences(claims: Claims) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list) and all(isinstance(a, str) for a in aud):
        return aud
    raise TokenValidationError("aud", "aud missing or malformed")


def check_audience(claims: Claims, client_id: str, trusted: Collection[str] = ()) -> None:
    """Step 3: ``aud`` contains our client id, and no audience we do not trust.

    OIDC Core 3.1.3.7 step 3: the token "MUST be rejected if [it] does not list
    the Client as a valid audience, or if it contains additional audiences not
    trusted by the Client". ``trusted`` (``TRUSTED_AUDIENCES``) names the others
    a site accepts; France Travail issues single-audience tokens.
    """
    listed = audiences(claims)
    if client_id not in listed:
        raise TokenValidationError("aud", "token is not meant for this client")
    if any(aud != client_id and aud not in trusted for aud in listed):
        raise TokenValidationError("aud", "token is also meant for an untrusted audience")


def check_authorized_party(claims: Claims, client_id: str) -> None:
    """Steps 4-5: with several audiences ``azp`` is required; when present it is us."""
    azp = claims.get("azp")
    if len(audiences(claims)) > 1 and azp is None:
        raise TokenValidationError("azp", "several audiences and no azp")
    if azp is not None and azp != client_id:
        raise TokenValidationError("azp", "authorized party is another client")


def check_expiry(claims: Claims, now: float, leeway: int) -> None:
    """Step 9: ``exp`` present, numeric and in the future (with a small leeway)."""
    exp = claims.get("exp")
    if not is_timestamp(exp):
        # NaN passes every comparison below: only finite, datable numbers go on.
        raise TokenValidationError("exp", "exp missing or not a number")
    if now > exp + leeway:
        raise TokenValidationError("exp", "token expired")


def check_issued_at(claims: Claims, now: float, leeway: int, max_age: int) -> None:
    """Step 10: ``iat`` present, not in the future, no older than ``max_age``.

    The same rule for every token ftauth accepts: ID tokens (France Travail's
    live 2 h 30: an older ``iat`` means a replayed or mis-issued token even if
    ``exp`` says otherwise) and back-channel logout tokens (their section 2.6
    step 4, with their own, shorter, ``max_age``).
    """
    iat = claims.get("iat")
    if not is_timestamp(iat):
        raise TokenValidationError("iat", "iat missing or not a number")
    if iat > now + leeway:
        raise TokenValidationError("iat", "token issued in the future")
    if now - iat > max_age + leeway:
        raise TokenValidationError("iat", f"token issued more than {max_age} s ago")


def check_auth_time(claims: Claims, now: float, leeway: int) -> None:
    """OIDC Core 2: ``auth_time``, when present, is a time, and not in the future
    (a NaN or an infinity must not reach the session as if it were one)."""
    if "auth_time" not in claims:
        return
    auth_time = claims["auth_time"]
    if not is_timestamp(auth_time):
        raise TokenValidationError("auth_time", "auth_time is not a number")
    if auth_time > now + leeway:
        raise TokenValidationError("auth_time", "authentication time in the future")


def check_nonce(claims: Claims, expected: str) -> None:
    """Step 11: ``nonce`` equal to the one we sent in this browser's request."""
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not expected or not _equal(nonce, expected):
        raise TokenValidationError("nonce", "nonce does not match the authorization request")


def check_token_response_nonce(response_nonce: str | None, expected: str) -> None:
    """France Travail also returns ``nonce`` in the token response: compare it when sent."""
    if response_nonce is not None and not _equal(response_nonce, expected):
        raise TokenValidationError(
            "token_response_nonce", "token response nonce does not match the request"
        )


def check_subject(claims: Claims) -> None:
    """OIDC Core 2: ``sub`` is required, a non-empty string of at most 255 characters."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 255:
        raise TokenValidationError("sub", "sub missing or malformed")


@dataclass(frozen=True)
class IdTokenRules:
    issuer: str
    client_id: str
    allowed_algorithms: Collection[str]
    leeway: int = 60
    max_age: int = ID_TOKEN_LIFETIME
    # Audiences besides ours that an ID token may also list (step 3).
    trusted_audiences: Collection[str] = ()


def validate_claims(
    claims: Claims,
    rules: IdTokenRules,
    *,
    nonce: str | None,
    now: float | None = None,
) -> None:
    """Steps 2-5 and 9-11 on already signature-checked claims.

    ``nonce=None`` skips step 11: only for refreshed ID tokens, which carry no
    nonce of ours (OIDC Core 12.2).
    """
    now = time.time() if now is None else now
    check_issuer(claims, rules.issuer)
    check_audience(claims, rules.client_id, rules.trusted_audiences)
    check_authorized_party(claims, rules.client_id)
    check_expiry(claims, now, rules.leeway)
    check_issued_at(claims, now, rules.leeway, rules.max_age)
    check_auth_time(claims, now, rules.leeway)
    if nonce is not None:
        check_nonce(claims, nonce)
    check_subject(claims)


def validate_id_token(
    id_token: str,
    rules: IdTokenRules,
    *,
    jwks_source: JwksSource,
    client_secret: str,
    nonce: str | None,
    token_response_nonce: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Every rule of OIDC Core 3.1.3.7, in order; returns the claims."""
    claims = verify_signature(
        id_token,
        allowed_algorithms=rules.allowed_algorithms,
        jwks_source=jwks_source,
        client_secret=client_secret,
    )
    validate_claims(claims, rules, nonce=nonce, now=now)
    if nonce is not None:
        check_token_response_nonce(token_response_nonce, nonce)
    return claims


def check_refreshed_id_token(new: Claims, previous: Claims) -> None:
    """OIDC Core 12.2: a refreshed ID token keeps ``iss``, ``sub`` and ``aud``,
    and ``azp``: the same value, or absent if the original had none.

    ``auth_time``, when both carry it, must not change either: a refresh is
    not a new authentication.
    """
    for claim in ("iss", "sub", "aud", "azp"):
        if new.get(claim) != previous.get(claim):
            raise TokenValidationError(
                "refresh_" + claim, f"refreshed ID token changed its {claim}"
            )
    if "auth_time" in new and "auth_time" in previous and new["auth_time"] != previous["auth_time"]:
        raise TokenValidationError("refresh_auth_time", "refreshed ID token changed auth_time")
