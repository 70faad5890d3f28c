"""A sign-in spends France Travail's quota where it matters (issue 15).

A returning sign-in makes one call (the code exchange); userinfo is read at an
identity's first sign-in, when its stored claims are older than
``CLAIMS_MAX_AGE``, or when the adapter asks. No sign-in fails because of
ftauth's pacing, and no exchanged code is thrown away: a sign-in that cannot
read userinfo in time completes with the ID token's claims, and the grant's next
witness call completes them. Calls are counted at the identity server.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from urllib.parse import urljoin

import pytest
from django.test import Client
from django.utils import timezone

from ftauth.adapter import AccountAdapter
from ftauth.api import rate_limiter
from ftauth.models import Grant, LinkedAccount
from ftauth.sandbox.hooks import SandboxHooks
from ftauth.sandbox.models import IssuedToken
from ftauth.sandbox.scripted import ScriptedUser, forms_of
from tests.lifecycle import age_account_check, age_session, sign_in
from tests.pacing import in_threads

PROTECTED = "/ftauth/account/"
USERINFO_API = "peconnect-individu"


KINDS = {
    "/access_token": "token",
    "/userinfo": "userinfo",
    "/jwk_uri": "jwks",
    "/openid-configuration": "discovery",
}


def calls_during(fakeop, action) -> Counter[str]:
    """The identity server's answers during ``action``, by kind."""
    before = len(fakeop.requests)
    action()
    return Counter(
        next((kind for end, kind in KINDS.items() if request["path"].endswith(end)), "other")
        for request in fakeop.requests[before:]
    )


def age_claims(account: LinkedAccount, seconds: float) -> None:
    LinkedAccount.objects.filter(pk=account.pk).update(
        claims_at=timezone.now() - timedelta(seconds=seconds)
    )


# --- a returning sign-in makes one call ----------------------------------------------------


@pytest.mark.django_db
def test_a_returning_sign_in_makes_one_call(fakeop):
    first = calls_during(fakeop, lambda: sign_in(Client(), fakeop, "sub-returning"))
    assert first == {"discovery": 1, "jwks": 1, "token": 1, "userinfo": 1}
    account = LinkedAccount.objects.get(sub="sub-returning")
    assert account.claims["given_name"] == "Camille" and account.claims_at is not None
    # Another device, or the same one later: the code exchange, and nothing else.
    again = calls_during(fakeop, lambda: sign_in(Client(), fakeop, "sub-returning"))
    assert again == {"token": 1}
    account.refresh_from_db()
    assert account.claims["given_name"] == "Camille"  # what was read before stays


@pytest.mark.django_db
def test_claims_are_read_again_once_older_than_claims_max_age(fakeop, settings):
    settings.FTAUTH = {**settings.FTAUTH, "CLAIMS_MAX_AGE": 3600}
    account = sign_in(Client(), fakeop, "sub-aging")
    age_claims(account, 3500)
    assert calls_during(fakeop, lambda: sign_in(Client(), fakeop, "sub-aging"))["userinfo"] == 0
    age_claims(account, 3700)
    fakeop.userinfo_body = {"sub": "sub-aging", "given_name": "Camille", "family_name": "Durand"}
    assert calls_during(fakeop, lambda: sign_in(Client(), fakeop, "sub-aging"))["userinfo"] == 1
    account.refresh_from_db()
    assert account.claims["family_name"] == "Durand"
    assert timezone.now() - account.claims_at < timedelta(minutes=1)


@pytest.mark.django_db
def test_claims_max_age_zero_reads_userinfo_at_every_sign_in(fakeop, settings):
    settings.FTAUTH = {**settings.FTAUTH, "CLAIMS_MAX_AGE": 0}
    sign_in(Client(), fakeop, "sub-always")
    assert calls_during(fakeop, lambda: sign_in(Client(), fakeop, "sub-always")) == {
        "token": 1,
        "userinfo": 1,
    }


class FreshClaimsAdapter(AccountAdapter):
    """An adapter that wants fresh claims for one person."""

    def wants_fresh_claims(self, request, account, id_token_claims):
        return account.sub == "sub-fresh"


@pytest.mark.django_db
def test_the_account_adapter_can_ask_for_fresh_claims(fakeop, settings):
    settings.FTAUTH = {
        **settings.FTAUTH,
        "ACCOUNT_ADAPTER": "tests.test_signin_calls.FreshClaimsAdapter",
    }
    for sub in ("sub-fresh", "sub-not-fresh"):
        sign_in(Client(), fakeop, sub)
    assert calls_during(fakeop, lambda: sign_in(Client(), fakeop, "sub-fresh"))["userinfo"] == 1
    assert calls_during(fakeop, lambda: sign_in(Client(), fakeop, "sub-not-fresh"))["userinfo"] == 0


# --- no sign-in fails because of the pacing; no code thrown away ---------------------------


@pytest.mark.django_db
def test_a_sign_in_the_quota_cannot_serve_in_time_completes_with_the_id_tokens_claims(fakeop):
    # Another process got a 429 for userinfo: nobody calls it for longer than a
    # sign-in's budget (SIGN_IN_TIME_BUDGET, 3 s).
    limiter = rate_limiter()
    limiter.pause(USERINFO_API, 60)
    client = Client()
    calls = calls_during(fakeop, lambda: sign_in(client, fakeop, "sub-deferred"))
    assert calls["token"] == 1 and calls["userinfo"] == 0  # decided without waiting
    account = LinkedAccount.objects.get(sub="sub-deferred")
    assert Grant.objects.filter(account=account).count() == 1  # the tokens are kept
    assert account.claims_at is None and "given_name" not in account.claims
    assert client.get(PROTECTED).status_code == 200  # signed in
    # The grant's next witness call (here the consent check) completes the claims.
    limiter.cache.delete(limiter._key(USERINFO_API, "pause"))
    age_session(client)
    age_account_check(account)
    assert calls_during(fakeop, lambda: client.get(PROTECTED))["userinfo"] == 1
    account.refresh_from_db()
    assert account.claims["given_name"] == "Camille" and account.claims_at is not None


@pytest.mark.django_db
def test_claims_completed_later_are_refused_for_another_subject(fakeop):
    """OIDC Core 5.3.2 holds for a userinfo answer read after the sign-in too."""
    limiter = rate_limiter()
    limiter.pause(USERINFO_API, 60)
    client = Client()
    sign_in(client, fakeop, "sub-later")
    limiter.cache.delete(limiter._key(USERINFO_API, "pause"))
    fakeop.userinfo_body = {"sub": "someone-else", "given_name": "Mallory"}
    account = LinkedAccount.objects.get(sub="sub-later")
    age_session(client)
    age_account_check(account)
    assert calls_during(fakeop, lambda: client.get(PROTECTED))["userinfo"] == 1
    account.refresh_from_db()
    assert account.claims_at is None and "given_name" not in account.claims


@pytest.mark.django_db
def test_a_sign_in_whose_userinfo_fails_keeps_its_exchanged_code(fakeop):
    """France Travail's userinfo is known to answer 502 at times: the sign-in goes on."""
    fakeop.fail_next("userinfo", 502)
    client = Client()
    sign_in(client, fakeop, "sub-502")
    account = LinkedAccount.objects.get(sub="sub-502")
    assert Grant.objects.filter(account=account).exists() and account.claims_at is None
    assert client.get(PROTECTED).status_code == 200


class Wire(SandboxHooks):
    """Counts what the sandbox answers: 429s, and refreshes per refresh token."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: Counter[int] = Counter()
        self.refreshes: Counter[str] = Counter()
        self.refused_refreshes = 0

    def api_response(self, request, api, answer):
        response = answer()
        with self.lock:
            self.statuses[response.status_code] += 1
        return response

    def token_endpoint(self, request, answer):
        response = answer()
        if request.POST.get("grant_type") == "refresh_token":
            with self.lock:
                self.refreshes[request.POST.get("refresh_token", "")] += 1
                self.refused_refreshes += response.status_code != 200
        return response


def concurrent_requests() -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        # The live server hands its one in-memory SQLite connection to every thread.
        pytest.skip("concurrent requests are tested on PostgreSQL (set DATABASE_URL)")


@pytest.fixture
def wire(settings):
    installed = Wire()
    settings.FTAUTH_SANDBOX = {"HOOKS": installed}
    return installed


def at_the_callback(user: ScriptedUser, persona: str) -> str:
    """Sign in at the sandbox up to France Travail's redirect back: the callback URL,
    with its code, not followed yet."""
    page = user.get("/ftauth/login/individu/", params={"next": PROTECTED})
    form = next(f for f in forms_of(page) if f.id == "ftauth-sandbox-login")
    data = {**form.fields, "persona": persona}
    answer = user.http.post(
        urljoin(page.url, form.action or page.url),
        data=data,
        headers={"Referer": page.url},
        allow_redirects=False,
        timeout=30,
    )
    while answer.status_code == 302 and "/ftauth/callback/" not in answer.headers["Location"]:
        answer = user.get(answer.headers["Location"], allow_redirects=False)
    if answer.status_code == 200:  # the consent screen
        consent = next(f for f in forms_of(answer) if f.id == "ftauth-sandbox-consent")
        answer = user.http.post(
            urljoin(answer.url, consent.action or answer.url),
            data={**consent.fields, "decision": "accept"},
            headers={"Referer": answer.url},
            allow_redirects=False,
            timeout=30,
        )
    location = answer.headers["Location"]
    assert "/ftauth/callback/individu/" in location and "code=" in location, location
    return location


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_burst_of_callbacks_within_the_quota_never_503s_nor_throws_away_a_code(
    sandbox, wire, settings
):
    concurrent_requests()
    # Every sign-in wants userinfo (CLAIMS_MAX_AGE 0), eight at once, under the
    # sandbox's 4 calls/s and ftauth's defaults (two callers of this host may wait).
    settings.FTAUTH = {**settings.FTAUTH, "CLAIMS_MAX_AGE": 0}
    persona = "sandbox-individu-camille"
    ScriptedUser(sandbox).sign_in("individu", persona=persona)  # consented once
    users = [ScriptedUser(sandbox, timeout=60) for _ in range(8)]
    callbacks = [at_the_callback(user, persona) for user in users]
    exchanged_before = IssuedToken.objects.filter(persona_sub=persona).count()
    threads, answers = in_threads(
        [
            lambda user=user, url=url: user.get(url, allow_redirects=False)
            for user, url in zip(users, callbacks, strict=True)
        ]
    )
    for thread in threads:
        thread.join(60)
    assert sorted(a.status_code for a in answers) == [302] * 8
    assert all(a.headers["Location"] == PROTECTED for a in answers)
    # Each code was exchanged once, and each exchange's tokens are a stored grant.
    exchanged = IssuedToken.objects.filter(persona_sub=persona).count() - exchanged_before
    account = LinkedAccount.objects.get(sub=persona)
    assert exchanged == 8 and Grant.objects.filter(account=account).count() == 9
    assert wire.statuses[429] == 0  # and France Travail's quota was respected
    assert all(user.get(PROTECTED, allow_redirects=False).status_code == 200 for user in users)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_refresh_storm_refreshes_each_grant_once(sandbox, wire, settings):
    """Devices whose access tokens expired at the same moment, two tabs each, at once,
    with the quota saturated: each grant is refreshed exactly once, no page errs
    (a page the quota cannot serve says when to come back)."""
    concurrent_requests()
    settings.ROOT_URLCONF = "tests.evidence_urls"
    persona = "sandbox-individu-camille"
    users = [ScriptedUser(sandbox, timeout=60) for _ in range(5)]
    for user in users:
        assert user.sign_in("individu", persona=persona).status_code == 200
    account = LinkedAccount.objects.get(sub=persona)
    Grant.objects.filter(account=account).update(expires_at=timezone.now() - timedelta(minutes=1))
    storm = [
        lambda user=user: user.get(f"/t/call/individu/{USERINFO_API}/v1/userinfo").json()
        for user in users
        for _tab in range(2)
    ]
    threads, pages = in_threads(storm)
    for thread in threads:
        thread.join(60)
    assert len(pages) == 10
    assert {page.get("error") for page in pages} <= {None, "QuotaExceeded"}, pages
    assert any(page.get("ok") for page in pages)
    # Five grants, five refreshes, each with its grant's own refresh token, none refused.
    assert sum(wire.refreshes.values()) == 5 and set(wire.refreshes.values()) == {1}
    assert wire.refused_refreshes == 0
    assert Grant.objects.filter(account=account, refreshed_at__isnull=False).count() == 5


# --- local work: what a callback writes ------------------------------------------------------


def _writes_to(queries, table: str) -> list[str]:
    return [
        q["sql"].split()[0]
        for q in queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
        and f'"{table}"' in q["sql"].split("(")[0].split(" SET ")[0]
    ]


@pytest.mark.django_db
def test_a_sign_in_writes_the_linked_account_once(fakeop):
    """A first sign-in inserts the account with what it records (no update after the
    insert); a returning one updates it once."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as first:
        sign_in(Client(), fakeop, "sub-writes-once")
    assert _writes_to(first.captured_queries, "ftauth_linkedaccount") == ["INSERT"]
    account = LinkedAccount.objects.get(sub="sub-writes-once")
    assert account.claims["given_name"] == "Camille"
    assert account.claims_at is not None and account.last_login_at is not None
    with CaptureQueriesContext(connection) as again:
        sign_in(Client(), fakeop, "sub-writes-once")
    assert _writes_to(again.captured_queries, "ftauth_linkedaccount") == ["UPDATE"]
    account.refresh_from_db()
    assert account.last_login_at > account.linked_at


@pytest.mark.django_db
def test_a_first_sign_in_without_userinfo_records_no_claims_read(fakeop):
    """claims_at says when userinfo was read: a first sign-in that could not read it
    leaves it empty, and records the rest (the next witness call completes it)."""
    fakeop.fail_next("userinfo", 502)
    sign_in(Client(), fakeop, "sub-no-userinfo")
    account = LinkedAccount.objects.get(sub="sub-no-userinfo")
    assert account.claims_at is None
    assert account.last_login_at is not None and account.consent_withdrawn_at is None


@pytest.mark.django_db
def test_a_first_sign_in_links_and_logs_in_at_one_time(fakeop):
    account = sign_in(Client(), fakeop, "sub-order")
    assert account.last_login_at == account.linked_at
