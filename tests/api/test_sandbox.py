"""The API client against the sandbox, over real HTTP with real tokens and quotas."""

from __future__ import annotations

import multiprocessing
import queue
import uuid

import pytest
from django.contrib.auth import get_user_model

from ftauth import api
from ftauth.core.errors import ConsentWithdrawn, QuotaExceeded
from ftauth.models import LinkedAccount
from ftauth.sandbox.consents import withdraw_consent
from ftauth.sandbox.models import IssuedToken
from ftauth.sandbox.quota import buckets
from ftauth.sandbox.scripted import ScriptedUser
from tests.conftest import sandbox_ftauth_settings

from .conftest import REDIS_URL, redis_available

pytestmark = pytest.mark.django_db(transaction=True)

SEARCH = "offresdemploi/v2/offres/search"


@pytest.fixture
def app(sandbox, settings):
    """A fresh application (its own client id: its own token and quota), at the sandbox."""
    client_id = f"ftauth-api-{uuid.uuid4().hex[:12]}"
    settings.FTAUTH = sandbox_ftauth_settings(sandbox, CLIENT_ID=client_id)
    buckets.reset()
    return client_id


@pytest.fixture
def wire_429s(monkeypatch):
    """Count the 429 answers the sandbox sends (its real quota decides them)."""
    refused: list[str] = []
    take = buckets.take

    def counting_take(client_id, api_name, rate, algorithm="token_bucket"):
        decision = take(client_id, api_name, rate, algorithm)
        if not decision.allowed:
            refused.append(api_name)
        return decision

    monkeypatch.setattr(buckets, "take", counting_take)
    return refused


def application_tokens_issued(client_id: str) -> int:
    return IssuedToken.objects.filter(client_id=client_id, persona_sub="").count()


def test_a_hundred_calls_cost_one_token_request(app, settings):
    # Quotas raised for speed: this test is about tokens.
    settings.FTAUTH_SANDBOX = {"QUOTA_PER_SECOND": 1000}
    settings.FTAUTH = {**settings.FTAUTH, "API_RATE_LIMITS": {"offresdemploi": 1000}}
    for _ in range(100):
        assert api.application().get(SEARCH, params={"range": "0-1"})["resultats"]
    assert application_tokens_issued(app) == 1


def test_search_answers_are_decoded(app):
    response = api.application().request("GET", SEARCH, params={"motsCles": "cuisinier"})
    assert response.status in {200, 206}
    assert response.data["resultats"]
    assert response.headers["Content-Range"].startswith("offres 0-")
    assert response.rate_limit is not None and response.rate_limit.burst_capacity == 4


def test_scopes_may_be_given_as_a_string(app):
    both = api.application("api_offresdemploiv2 o2dsoffre")
    assert both.get(SEARCH, params={"range": "0-1"})["resultats"]
    assert api.application(["o2dsoffre", "api_offresdemploiv2"]).get(
        SEARCH, params={"range": "0-1"}
    )
    assert application_tokens_issued(app) == 1


def test_nothing_found_is_none(app):
    assert api.application().get(SEARCH, params={"motsCles": "zzzz-introuvable"}) is None


def test_sandbox_429s_are_honoured_and_never_reach_the_caller(app, settings, wire_429s):
    # Misconfigured: ftauth believes it may call 20 times a second; the sandbox allows 4.
    settings.FTAUTH = {**settings.FTAUTH, "API_RATE_LIMITS": {"offresdemploi": 20}}
    for _ in range(12):
        api.application().get(SEARCH, params={"range": "0-1"})
    assert wire_429s, "the sandbox never refused: the test proves nothing"


@pytest.mark.parametrize("algorithm", ["token_bucket", "sliding_window", "fixed_window"])
def test_several_processes_sharing_redis_stay_under_the_quota(
    app, sandbox, wire_429s, settings, algorithm
):
    """Four processes, each with its own Django, call the 4/s API at once through one
    Redis: the quota is shared, no 429 reaches a caller, one token serves them all,
    whichever way the server counts its quota."""
    reason = redis_available()
    if reason:
        pytest.skip(reason)
    settings.FTAUTH_SANDBOX = {"QUOTA_ALGORITHM": algorithm}
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    results = context.Queue()
    prefix = f"ftauth-mp-{uuid.uuid4().hex}"
    from .workers import call_offers

    workers = [
        context.Process(
            target=call_offers,
            args=(sandbox, REDIS_URL, prefix, app, 5, barrier, results),
            daemon=True,
        )
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    outcomes = []
    try:
        for _ in workers:
            outcomes.append(results.get(timeout=120))
    except queue.Empty:
        pytest.fail(f"workers did not report: {outcomes}")
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
    assert [o["errors"] for o in outcomes] == [[]] * 4
    assert sum(o["quota_exceeded"] for o in outcomes) == 0
    assert sum(o["ok"] for o in outcomes) == 20
    # Spaced under the quota: the sandbox had (almost) nothing to refuse. Without the
    # shared pacing, four processes would ask for 16 calls a second.
    assert len(wire_429s) <= 2, wire_429s
    assert application_tokens_issued(app) == 1
    # 20 calls at 4/s take about five seconds, whoever makes them.
    assert max(o["elapsed"] for o in outcomes) >= 4.0


def test_user_calls_with_consented_token_until_withdrawal(sandbox, settings):
    settings.FTAUTH = sandbox_ftauth_settings(
        sandbox,
        REALMS={
            "individu": {
                "server": f"{sandbox}/sandbox/authentification-candidat",
                "scopes": [
                    "api_peconnect-individuv1",
                    "openid",
                    "profile",
                    "email",
                    "api_peconnect-statutv1",
                    "statut",
                ],
            },
            "employeur": {"server": f"{sandbox}/sandbox/entreprise"},
            "partenaire": {"server": f"{sandbox}/sandbox/entreprise"},
        },
    )
    buckets.reset()
    browser = ScriptedUser(sandbox)
    page = browser.sign_in("individu", persona="sandbox-individu-camille", next_url="/profile/")
    assert page.status_code == 200
    user = get_user_model().objects.get(ftauth_accounts__sub="sandbox-individu-camille")

    camille = api.for_user(user, realm="individu")
    assert camille.get("peconnect-individu/v1/userinfo")["sub"] == "sandbox-individu-camille"
    assert camille.get("peconnect-statut/v1/statut")["codeStatutIndividu"] == "1"

    withdraw_consent("sandbox-individu-camille", settings.FTAUTH["CLIENT_ID"])
    with pytest.raises(ConsentWithdrawn):
        api.for_user(user, realm="individu").get("peconnect-individu/v1/userinfo")
    assert LinkedAccount.objects.get(user=user).consent_withdrawn_at is not None


def test_quota_exceeded_is_typed_when_the_wait_would_be_too_long(app, settings):
    settings.FTAUTH = {
        **settings.FTAUTH,
        "API_RATE_LIMITS": {"offresdemploi": 0.5},  # one call every two seconds
        "API_MAX_WAIT": 1,
    }
    api.application().get(SEARCH, params={"range": "0-1"})
    with pytest.raises(QuotaExceeded):
        api.application().get(SEARCH, params={"range": "0-1"})
