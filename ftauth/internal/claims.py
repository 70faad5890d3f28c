"""A linked account's claims: what France Travail said about the person, and when.

A sign-in always has the ID token's claims. The realm's userinfo says more
(France Travail's individu userinfo is where ``email`` and
``idIdentiteExterne`` are documented) but costs a call under the API quota,
so a returning sign-in reads it only when the stored claims are older than
``CLAIMS_MAX_AGE`` (or the account adapter asks for fresh ones). A sign-in that
could not read it in time (quota, France Travail unreachable) completes with
what it has, and the grant's next successful witness call, which *is* a
userinfo answer, completes the stored claims: no call is made for them alone.
"""

from __future__ import annotations

import logging
import math
import re
from datetime import timedelta
from typing import Any

from django.utils import timezone

from ..conf import get_settings
from ..core.errors import FTAuthError, InvalidResponse
from ..models import LinkedAccount

logger = logging.getLogger("ftauth.signin")

# Claims about the token, not the person: never stored as the person's claims.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

TECHNICAL = ("nonce", "at_hash", "c_hash", "aud", "azp", "exp", "iat", "auth_time")


def about_the_person(claims: dict[str, Any]) -> dict[str, Any]:
    """The claims to store as the person's; :class:`InvalidResponse` when they hold
    what no database stores as JSON (Python reads ``NaN`` and ``1e999``; PostgreSQL's
    jsonb refuses them, NUL and lone surrogates): the identity server's fault, a 502,
    never a failed write taken for the database's (a 503) or a 500."""
    if not _storable(claims):
        raise InvalidResponse("claims hold a value JSON cannot store (NaN, infinity, NUL)")
    return {name: value for name, value in claims.items() if name not in TECHNICAL}


def _storable(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return "\x00" not in value and _LONE_SURROGATE.search(value) is None
    if isinstance(value, dict):
        return all(_storable(name) and _storable(item) for name, item in value.items())
    if isinstance(value, list):
        return all(_storable(item) for item in value)
    return True


def stale(account: LinkedAccount) -> bool:
    """True when the account's claims were never read from userinfo, or too long ago."""
    if account.claims_at is None:
        return True
    age = timedelta(seconds=get_settings().claims_max_age)
    return account.claims_at <= timezone.now() - age


def complete_from_userinfo(account: LinkedAccount, answer: Any) -> bool:
    """Store a userinfo answer as ``account``'s claims if the stored ones are stale;
    True when stored. The answer is read as the sign-in reads it
    (``Provider.userinfo_claims``): a JWT verified where the realm's userinfo is
    signed (a plain JSON answer there is anyone's), about ``account.sub`` (OIDC
    Core 5.3.2); an answer that fails is not stored."""
    if answer is None or not stale(account):
        return False
    from .provider import get_provider

    try:
        userinfo = get_provider(account.realm).userinfo_claims(answer, sub=account.sub)
        claims = {**account.claims, **about_the_person(userinfo)}
    except FTAuthError as exc:
        logger.error("userinfo answer refused (%s): claims of %s not updated", exc, account.pk)
        return False
    email = userinfo.get("email")
    values: dict[str, Any] = {"claims": claims, "claims_at": timezone.now()}
    if isinstance(email, str) and len(email) <= 254:
        values["email"] = email
    LinkedAccount.objects.filter(pk=account.pk).update(**values)
    for name, value in values.items():
        setattr(account, name, value)
    return True
