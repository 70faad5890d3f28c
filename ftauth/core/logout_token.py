"""Back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0, section 2.6).

The signature and algorithm (steps 2-3) are checked like an ID token's by the
caller (``Provider.decode_jwt``); the claims are checked here, one small named
check per rule, each raising :class:`TokenValidationError` with its ``rule``.
Replay (step 8) needs storage: :func:`validate_logout_claims` returns how long
the ``jti`` must be remembered, and the caller refuses one it has seen.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import TokenValidationError
from .idtoken import check_audience, check_expiry, check_issued_at, check_issuer

Claims = Mapping[str, Any]

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"

# A logout token is sent the moment the user signs out at the identity server:
# one issued longer ago than this is refused, which also bounds how long a
# ``jti`` has to be remembered to refuse its replay.
LOGOUT_TOKEN_MAX_AGE = 600


@dataclass(frozen=True)
class LogoutRequest:
    """A validated logout token: whose sessions to end."""

    issuer: str
    jti: str
    sub: str | None
    sid: str | None
    # Until when the ``jti`` must be remembered (epoch seconds).
    remember_until: float


def check_expiry_if_present(claims: Claims, now: float, leeway: int) -> None:
    """Step 4: ``exp``, required by the final specification but absent from
    earlier drafts some servers still follow, is checked when present."""
    if "exp" in claims:
        check_expiry(claims, now, leeway)


def _identifier(value: Any) -> bool:
    """A string that can name something: not empty, at most 255 characters (what
    ftauth stores), no NUL byte (no database stores one in text)."""
    return isinstance(value, str) and 0 < len(value) <= 255 and "\x00" not in value


def check_subject_or_session(claims: Claims) -> None:
    """Step 5: ``sub``, ``sid`` or both, each a non-empty string."""
    sub, sid = claims.get("sub"), claims.get("sid")
    if sub is None and sid is None:
        raise TokenValidationError("sub_or_sid", "logout token names neither sub nor sid")
    for name, value in (("sub", sub), ("sid", sid)):
        if value is not None and not _identifier(value):
            raise TokenValidationError("sub_or_sid", f"{name} is malformed")


def check_events(claims: Claims) -> None:
    """Step 6: ``events`` is a JSON object with the back-channel logout member,
    itself a JSON object (usually empty)."""
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_LOGOUT_EVENT), dict):
        raise TokenValidationError("events", "not a back-channel logout event")


def check_no_nonce(claims: Claims) -> None:
    """Step 7: a logout token carries no ``nonce``, so an ID token cannot pass for one."""
    if "nonce" in claims:
        raise TokenValidationError("nonce", "a logout token must not contain a nonce")


def check_jti(claims: Claims) -> str:
    """Step 8 needs a ``jti``: required by section 2.4, refused when absent."""
    jti = claims.get("jti")
    if not _identifier(jti):
        raise TokenValidationError("jti", "jti missing or malformed")
    return jti


def validate_logout_claims(
    claims: Claims,
    *,
    issuer: str,
    client_id: str,
    trusted_audiences: Collection[str] = (),
    leeway: int = 60,
    max_age: int = LOGOUT_TOKEN_MAX_AGE,
    now: float | None = None,
) -> LogoutRequest:
    """Steps 4 to 7 of section 2.6 on signature-checked claims, in order."""
    now = time.time() if now is None else now
    check_issuer(claims, issuer)
    check_audience(claims, client_id, trusted_audiences)  # step 3: as in ID tokens
    check_issued_at(claims, now, leeway, max_age)  # step 4, the ID tokens' rule
    check_expiry_if_present(claims, now, leeway)
    check_subject_or_session(claims)
    check_events(claims)
    check_no_nonce(claims)
    jti = check_jti(claims)
    return LogoutRequest(
        issuer=issuer,
        jti=jti,
        sub=claims.get("sub"),
        sid=claims.get("sid"),
        # Past this, check_issued_at refuses the token anyway.
        remember_until=float(claims["iat"]) + max_age + leeway,
    )
