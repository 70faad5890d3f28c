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
from datetime import timedelta
from typing import Any

from django.utils import timezone

from ..conf import get_settings
from ..core.errors import FTAuthError
from ..models import LinkedAccount

logger = logging.getLogger("ftauth.signin")

# Claims about the token, not the person: never stored as the person's claims.
TECHNICAL = ("nonce", "at_hash", "c_hash", "aud", "azp", "exp", "iat", "auth_time")


def about_the_person(claims: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in claims.items() if name not in TECHNICAL}


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
    except FTAuthError as exc:
        logger.error("userinfo answer refused (%s): claims of %s not updated", exc, account.pk)
        return False
    claims = {**account.claims, **about_the_person(userinfo)}
    email = userinfo.get("email")
    values: dict[str, Any] = {"claims": claims, "claims_at": timezone.now()}
    if isinstance(email, str) and len(email) <= 254:
        values["email"] = email
    LinkedAccount.objects.filter(pk=account.pk).update(**values)
    for name, value in values.items():
        setattr(account, name, value)
    return True
