"""Userinfo answers, JSON or signed JWT, checked the same way before use.

OIDC Core 5.3.2: the answer's ``sub`` must be the ID token's, or it is
another person's data. A provider whose data says ``userinfo_jwt``
(ProConnect, ``application/jwt``) must answer a JWT signed with an algorithm
the realm allows, whose ``iss`` is the issuer and ``aud`` is this client
(OIDC Core 5.3.2, "If signed, the UserInfo Response SHOULD contain the Claims
iss and aud"): a plain JSON answer is then refused, since anyone on the path
could have written it.
"""

from __future__ import annotations

from typing import Any

from .errors import InvalidResponse, TokenValidationError
from .idtoken import IdTokenRules, check_audience, check_issuer
from .jwt import JwksSource, verify_signature


def userinfo_claims(
    answer: Any,
    *,
    signed: bool,
    rules: IdTokenRules | None,
    jwks_source: JwksSource,
    client_secret: str,
    sub: str,
) -> dict[str, Any]:
    """The claims of a userinfo answer, once it is proven to be about ``sub``."""
    if signed:
        if rules is None:
            raise ValueError("a signed userinfo answer needs the realm's rules")
        if not isinstance(answer, str):
            raise TokenValidationError("userinfo_signature", "userinfo answer is not a signed JWT")
        claims = verify_signature(
            answer.strip(),
            allowed_algorithms=rules.allowed_algorithms,
            jwks_source=jwks_source,
            client_secret=client_secret,
        )
        check_issuer(claims, rules.issuer)
        check_audience(claims, rules.client_id, rules.trusted_audiences)
    else:
        if not isinstance(answer, dict):
            raise InvalidResponse("userinfo answer is not a JSON object")
        claims = answer
    if claims.get("sub") != sub:
        raise TokenValidationError("userinfo_sub", "userinfo sub differs from the ID token's")
    return dict(claims)
