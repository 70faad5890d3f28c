"""Helpers of the consent-lifecycle tests: accounts, token sets, signed-in clients."""

from __future__ import annotations

import itertools
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model

from ftauth import vault
from ftauth.core.tokens import TokenResponse
from ftauth.models import Grant, LinkedAccount

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


def store_tokens(account: LinkedAccount, **kwargs) -> Grant:
    """A grant of ``account`` holding recognisable tokens (a sign-in without a browser)."""
    claims = kwargs.pop("claims", {"iss": "https://op.example", "sub": account.sub, "aud": "x"})
    grant = vault.new_grant(account, token_response(**kwargs), claims)
    grant.account = account
    return grant


def sign_in(client, fakeop, sub: str, realm: str = "individu") -> LinkedAccount:
    """Sign ``client`` in through ftauth's real login and callback views."""
    response = client.get(f"/ftauth/login/{realm}/")
    assert response.status_code == 302, response.content
    params = {k: v[0] for k, v in parse_qs(urlsplit(response["Location"]).query).items()}
    code = fakeop.authorize(sub, realm, nonce=params["nonce"])
    response = client.get(
        f"/ftauth/callback/{realm}/",
        {"code": code, "state": params["state"], "iss": fakeop.issuer(realm)},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    return LinkedAccount.objects.get(realm=realm, sub=sub)


def linked_with_tokens(fakeop, realm: str = "individu", *, sub: str | None = None):
    """An account whose tokens come from ``fakeop`` (a real grant there), without a browser."""

    account = make_account(realm, sub=sub)
    add_grant(fakeop, account)
    return account


def add_grant(fakeop, account: LinkedAccount) -> Grant:
    """Another grant of ``account`` at ``fakeop`` (one more device signed in)."""
    from ftauth.internal.provider import get_provider

    tokens = TokenResponse.from_json(fakeop.issue(account.sub, account.realm))
    claims = get_provider(account.realm).validate_id_token(tokens.id_token, nonce=None)
    grant = vault.new_grant(account, tokens, claims)
    grant.account = account
    return grant


def grant_of(account: LinkedAccount) -> Grant:
    """The account's only (or latest) grant, with its account attached."""
    grant = vault.latest_grant(account)
    assert grant is not None, "the account has no grant"
    grant.account = account
    return grant


def age_session(client, seconds: float = 10_000) -> None:
    """Pretend ``client``'s last consent check was ``seconds`` ago (any session engine)."""
    from django.conf import settings

    from ftauth.internal.sessions import SESSION_KEY

    session = client.session
    marker = dict(session[SESSION_KEY])
    marker["checked_at"] -= seconds
    session[SESSION_KEY] = marker
    session.save()
    # With signed cookies the session *is* the cookie: hand the new one to the client.
    client.cookies[settings.SESSION_COOKIE_NAME] = session.session_key


def age_account_check(account: LinkedAccount, seconds: float = 10_000) -> None:
    """Pretend France Travail was last asked about ``account``'s grants ``seconds`` ago."""
    from datetime import timedelta

    from django.utils import timezone

    then = timezone.now() - timedelta(seconds=seconds)
    Grant.objects.filter(account=account).update(checked_at=then)


SESSION_ENGINES = [
    "django.contrib.sessions.backends.db",
    "django.contrib.sessions.backends.cache",
    "django.contrib.sessions.backends.cached_db",
    "django.contrib.sessions.backends.file",
    "django.contrib.sessions.backends.signed_cookies",
]


@pytest.fixture(params=SESSION_ENGINES, ids=lambda engine: engine.rsplit(".", 1)[1])
def session_engine(request, settings, tmp_path):
    """Each of Django's session engines in turn."""
    settings.SESSION_ENGINE = request.param
    settings.SESSION_FILE_PATH = str(tmp_path)
    return request.param


def server_side(engine: str) -> bool:
    return not engine.endswith("signed_cookies")


@pytest.fixture
def revocations():
    """The reasons of every ``consent_revoked`` sent during the test, in order."""
    from ftauth.signals import consent_revoked

    received = []

    def receiver(sender, account, reason, **kwargs):
        received.append(reason)

    consent_revoked.connect(receiver)
    yield received
    consent_revoked.disconnect(receiver)


def give_password(*clients) -> None:
    """The user signed in on ``clients`` gets a password of the site's own: unlinking
    their only France Travail identity is then allowed (``AccountAdapter.can_unlink``).
    Each client's session is kept valid (Django ties a session to the password)."""
    from django.contrib.auth import HASH_SESSION_KEY
    from django.contrib.auth import SESSION_KEY as USER_KEY

    user = get_user_model().objects.get(pk=clients[0].session[USER_KEY])
    user.set_password("pw-site-own-1")
    user.save(update_fields=["password"])
    for client in clients:
        session = client.session
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.save()
