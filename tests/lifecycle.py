"""Helpers of the consent-lifecycle tests: accounts, token sets, signed-in clients."""

from __future__ import annotations

import itertools
import time

from django.contrib.auth import get_user_model

from ftauth import vault
from ftauth.core.tokens import TokenResponse
from ftauth.models import LinkedAccount

_counter = itertools.count(1)

# Recognisable plaintexts: tests search pages, logs and the database for them.
ACCESS = "AT-plaintext-"
REFRESH = "RT-plaintext-"
IDTOKEN = "IDT-plaintext-"


def make_account(realm: str = "individu", *, sub: str | None = None, user=None) -> LinkedAccount:
    n = next(_counter)
    if user is None:
        user = get_user_model().objects.create_user(username=f"persona{n}")
    return LinkedAccount.objects.create(
        user=user,
        realm=realm,
        sub=sub or f"sub-{n}",
        email=f"persona{n}@example.org",
        claims={"given_name": "Camille", "family_name": f"Martin{n}"},
    )


def token_response(
    *,
    suffix: str = "1",
    expires_in: int | None = 1500,
    refresh: bool = True,
    id_token: str | None = None,
    obtained_at: float | None = None,
) -> TokenResponse:
    return TokenResponse(
        access_token=ACCESS + suffix,
        token_type="Bearer",
        expires_in=expires_in,
        scope=("api_peconnect-individuv1", "openid", "profile", "email"),
        refresh_token=REFRESH + suffix if refresh else None,
        id_token=id_token if id_token is not None else IDTOKEN + suffix,
        obtained_at=time.time() if obtained_at is None else obtained_at,
    )


def store_tokens(account: LinkedAccount, **kwargs) -> None:
    claims = kwargs.pop("claims", {"iss": "https://op.example", "sub": account.sub, "aud": "x"})
    vault.save_tokens(account, token_response(**kwargs), claims)
