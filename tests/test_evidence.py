"""A verdict needs evidence: only the realm's witness, refusing tokens ftauth knows are
the latest, can withdraw an account (docs/security.md, "A verdict needs evidence").

Every case runs over real HTTP against the sandbox, which behaves as France Travail
documents; where a case needs France Travail to misbehave or the network to fail, a
test hook of the sandbox does it (``FTAUTH_SANDBOX["HOOKS"]``), nothing is patched
inside ftauth. One device and several.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core import checks
from django.db import connection
from django.http import HttpResponse
from django.utils import timezone

from ftauth.checks import check_atomic_requests_on_sqlite
from ftauth.models import AccountSession, AuditEvent, Grant, LinkedAccount
from ftauth.sandbox.consents import withdraw_consent
from ftauth.sandbox.hooks import SandboxHooks
from ftauth.sandbox.keys import rotate_signing_keys
from ftauth.sandbox.scripted import ScriptedUser, forms_of

pytestmark = pytest.mark.django_db(transaction=True)

PERSONAS = {"individu": "sandbox-individu-camille", "partenaire": "sandbox-partenaire-nadia"}
USERINFO = "peconnect-individu/v1/userinfo"
WITHDRAWN = "/ftauth/consent-withdrawn/"


class Hooks(SandboxHooks):
    """France Travail's answers, with the test's changes."""

    def __init__(self) -> None:
        self.api_status: dict[str, int] = {}
        self.jwks_down = False
        # Refresh answers to lose: France Travail rotates, the answer never arrives.
        self.lose_refreshes = 0
        self.hold_refreshes = False
        self.rotated = threading.Event()
        self.release = threading.Event()

    def api_response(self, request, api, answer):
        if api in self.api_status:
            return HttpResponse(status=self.api_status[api])  # an API 401 has no body
        return answer()

    def jwks_response(self, request, realm, answer):
        if self.jwks_down:
            return HttpResponse("<h1>503 Service Unavailable</h1>", status=503)
        return answer()

    def token_endpoint(self, request, answer):
        response = answer()
        if request.POST.get("grant_type") == "refresh_token" and (
            self.lose_refreshes or self.hold_refreshes
        ):
            self.lose_refreshes = max(0, self.lose_refreshes - 1)
            self.rotated.set()
            # Held until the test lets go: the client has given up (read timeout), or
            # the test does something while this refresh is in flight.
            self.release.wait(60)
        return response


@pytest.fixture
def hooks(settings):
    installed = Hooks()
    settings.FTAUTH_SANDBOX = {
        **(getattr(settings, "FTAUTH_SANDBOX", None) or {}),
        "HOOKS": installed,
    }
    yield installed
    installed.release.set()


@pytest.fixture
def site(sandbox, settings, hooks):
    """The sandbox, and the demo's URLs with two views calling France Travail."""
    settings.ROOT_URLCONF = "tests.evidence_urls"
    return sandbox


def devices(base: str, count: int, realm: str = "individu") -> list[ScriptedUser]:
    users = [ScriptedUser(base) for _ in range(count)]
    for user in users:
        page = user.sign_in(realm, persona=PERSONAS[realm], next_url="/ftauth/account/")
        assert page.status_code == 200 and page.url.endswith("/ftauth/account/"), page.text[:300]
    return users


def account_of(realm: str = "individu") -> LinkedAccount:
    return LinkedAccount.objects.get(realm=realm, sub=PERSONAS[realm])


def signed_in(user: ScriptedUser) -> bool:
    return user.get("/ftauth/account/", allow_redirects=False).status_code == 200


def where_sent(user: ScriptedUser) -> str:
    """Where the next page sends this device (after its consent check)."""
    response = user.get("/ftauth/account/", allow_redirects=False)
    return "" if response.status_code == 200 else response.headers["Location"]


def call(user: ScriptedUser, api_path: str, realm: str = "individu") -> dict:
    response = user.get(f"/t/call/{realm}/{api_path}")
    assert response.status_code == 200, response.text[:300]
    return response.json()


def expire_tokens(account: LinkedAccount) -> None:
    Grant.objects.filter(account=account).update(expires_at=timezone.now() - timedelta(minutes=1))


def checks_due(settings) -> None:
    settings.FTAUTH = {**settings.FTAUTH, "CONSENT_CHECK_INTERVAL": 0}


def assert_consent_stands(account: LinkedAccount, revocations) -> None:
    assert revocations == []
    account.refresh_from_db()
    assert account.consent_withdrawn_at is None
    assert not AuditEvent.objects.filter(account=account, kind="consent_revoked").exists()


# --- case 1: another API's 401 is that API's answer ------------------------------------------


@pytest.mark.parametrize("count", [1, 2])
def test_an_unrelated_apis_401_withdraws_nothing(site, hooks, settings, revocations, count):
    users = devices(site, count)
    account = account_of()
    # An API the application is not subscribed to, or a gateway's own 401.
    hooks.api_status["peconnect-statut"] = 401
    assert call(users[0], "peconnect-statut/v1/statut") == {"error": "ApiError", "status": 401}
    # The witness was asked (the token was refreshed once, userinfo answered): no verdict.
    checks_due(settings)
    assert all(signed_in(user) for user in users)
    assert call(users[0], USERINFO)["ok"]
    assert Grant.objects.filter(account=account).count() == count
    assert not AuditEvent.objects.filter(account=account, kind="grant_ended").exists()
    assert_consent_stands(account, revocations)


def test_without_userinfo_only_the_refresh_is_a_witness(site, hooks, settings, revocations):
    """A realm whose userinfo is switched off: its refresh is its witness, no API's 401 is."""
    (user,) = devices(site, 1)
    account = account_of()
    conf = settings.FTAUTH
    realms = {**conf["REALMS"], "individu": {**conf["REALMS"]["individu"], "fetch_userinfo": False}}
    settings.FTAUTH = {**conf, "REALMS": realms}
    hooks.api_status["peconnect-individu"] = 401  # userinfo, no longer the witness
    assert call(user, USERINFO) == {"error": "ApiError", "status": 401}
    assert Grant.objects.filter(account=account).exists()
    assert not AuditEvent.objects.filter(account=account, kind="grant_ended").exists()
    assert_consent_stands(account, revocations)


def test_an_unrelated_401_after_a_real_withdrawal_is_judged_by_the_witness(
    site, hooks, settings, revocations
):
    (user,) = devices(site, 1)
    withdraw_consent(PERSONAS["individu"], settings.FTAUTH["CLIENT_ID"])
    hooks.api_status["peconnect-statut"] = 401
    # The refresh (the witness) refuses the grant: that, not the 401, is the evidence.
    assert call(user, "peconnect-statut/v1/statut") == {"error": "ConsentWithdrawn"}
    assert revocations == ["every grant refused (invalid_grant on refresh)"]


# --- case 2: rotated tokens are durable the moment they arrive -------------------------------


@pytest.mark.parametrize("count", [1, 2])
def test_a_rotation_is_kept_when_the_jwks_is_down_after_a_key_rotation(
    site, hooks, settings, revocations, count
):
    users = devices(site, count)
    account = account_of()
    rotate_signing_keys()  # the refreshed ID token is signed with a key ftauth never saw
    hooks.jwks_down = True
    expire_tokens(account)
    assert call(users[0], USERINFO)["ok"]  # the refreshed tokens serve at once
    grant = Grant.objects.get(account=account, refreshed_at__isnull=False)
    assert grant.pending_id_token_ciphertext, "validated later, not thrown away"
    hooks.jwks_down = False
    checks_due(settings)
    assert all(signed_in(user) for user in users)
    grant.refresh_from_db()
    assert not grant.pending_id_token_ciphertext
    assert grant.id_token_claims["sub"] == PERSONAS["individu"]
    assert Grant.objects.filter(account=account).count() == count
    assert_consent_stands(account, revocations)


@pytest.mark.skipif(
    connection.vendor == "sqlite",
    reason="SQLite cannot commit beside a view's transaction: ftauth.W041 says so",
)
@pytest.mark.parametrize("count", [1, 2])
def test_a_rotation_survives_a_view_whose_transaction_rolls_back(
    site, settings, revocations, monkeypatch, count
):
    users = devices(site, count)
    account = account_of()
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)
    expire_tokens(account)
    before = set(Grant.objects.filter(account=account).values_list("refresh_token_ciphertext"))
    failed = users[0].get(f"/t/call-then-fail/individu/{USERINFO}")
    assert failed.status_code == 500  # the view's own failure, after its call
    after = set(Grant.objects.filter(account=account).values_list("refresh_token_ciphertext"))
    assert len(after - before) == 1, "the rotated refresh token was committed"
    checks_due(settings)
    expire_tokens(account)  # the next call refreshes with the kept refresh token
    assert all(signed_in(user) for user in users)
    assert call(users[0], USERINFO)["ok"]
    assert_consent_stands(account, revocations)


def test_atomic_requests_on_sqlite_is_reported(settings, monkeypatch):
    database = {"ENGINE": "django.db.backends.sqlite3", "NAME": "x", "ATOMIC_REQUESTS": True}
    monkeypatch.setitem(settings.DATABASES, "other", database)
    (warning,) = check_atomic_requests_on_sqlite()
    assert warning.id == "ftauth.W041" and warning.level == checks.WARNING
    database["ATOMIC_REQUESTS"] = False
    assert check_atomic_requests_on_sqlite() == []


# --- case 3: an answer lost in transit -------------------------------------------------------


@pytest.mark.parametrize("realm", ["individu", "partenaire"])
def test_a_lost_rotation_answer_ends_the_one_device_without_a_withdrawal(
    site, hooks, settings, revocations, realm
):
    (user,) = devices(site, 1, realm)
    account = account_of(realm)
    settings.FTAUTH = {**settings.FTAUTH, "HTTP_READ_TIMEOUT": 1}
    hooks.lose_refreshes = 1
    expire_tokens(account)
    checks_due(settings)
    # France Travail rotates; ftauth gave up waiting: a timeout says nothing.
    assert where_sent(user) == ""
    assert hooks.rotated.is_set()
    hooks.release.set()
    grant = Grant.objects.get(account=account)
    assert grant.rotation_uncertain_since is not None
    # The next check: invalid_grant on the refresh token France Travail voided.
    sent = where_sent(user)
    assert sent and sent != WITHDRAWN  # signed out on this device: sign in again
    assert not Grant.objects.filter(account=account).exists()
    ended = AuditEvent.objects.get(account=account, kind="grant_ended")
    assert "never stored" in ended.detail["why"]
    assert_consent_stands(account, revocations)
    # And a new sign-in works at once.
    devices(site, 1, realm)


# --- a true withdrawal is still detected ------------------------------------------------------


@pytest.mark.parametrize("count", [1, 3])
def test_a_true_withdrawal_is_detected_within_one_check_interval(
    site, settings, revocations, count
):
    users = devices(site, count)
    account = account_of()
    withdraw_consent(PERSONAS["individu"], settings.FTAUTH["CLIENT_ID"])
    checks_due(settings)
    assert [where_sent(user) for user in users] == [WITHDRAWN] * count
    assert len(revocations) == 1
    account.refresh_from_db()
    assert account.consent_withdrawn_at is not None
    assert not Grant.objects.filter(account=account).exists()
    event = AuditEvent.objects.get(account=account, kind="consent_revoked")
    assert event.detail["evidence"]["grants_refused"] == count


def test_consent_revoked_carries_the_reason_and_the_evidence(site, settings):
    from ftauth.signals import consent_revoked

    (user,) = devices(site, 1)
    received = []

    def receiver(sender, account, reason, evidence, **kwargs):
        received.append((reason, evidence))

    consent_revoked.connect(receiver)
    try:
        withdraw_consent(PERSONAS["individu"], settings.FTAUTH["CLIENT_ID"])
        checks_due(settings)
        assert where_sent(user) == WITHDRAWN
    finally:
        consent_revoked.disconnect(receiver)
    ((reason, evidence),) = received
    assert reason.startswith("every grant refused")
    assert evidence["witness"] in ("refresh", "userinfo") and evidence["grants_refused"] == 1


# --- endings never wait for a refresh in flight ------------------------------------------------


def _refresh_in_flight(site, hooks, user: ScriptedUser, account: LinkedAccount):
    """Start a page on ``user``'s device whose refresh France Travail holds."""
    hooks.hold_refreshes = True
    expire_tokens(account)
    other = ScriptedUser(site)
    other.http.cookies.update(user.http.cookies)
    result: dict = {}
    thread = threading.Thread(
        target=lambda: result.setdefault("page", other.get(f"/t/call/individu/{USERINFO}"))
    )
    thread.start()
    assert hooks.rotated.wait(30), "the refresh never reached the token endpoint"
    return thread, result


def _sign_out(user: ScriptedUser, base: str):
    page = user.get("/ftauth/logout/")  # its form, on a page that calls nobody
    form = next(f for f in forms_of(page) if f.action.endswith("/ftauth/logout/"))
    return user.http.post(
        f"{base}/ftauth/logout/", data=form.fields, headers={"Referer": page.url}, timeout=20
    )


@pytest.mark.parametrize("ending", ["sign_out", "backchannel_logout", "admin"])
def test_an_ending_does_not_wait_for_a_refresh_in_flight(
    site, hooks, settings, revocations, admin_user, ending
):
    settings.FTAUTH_SANDBOX = {**settings.FTAUTH_SANDBOX, "BACKCHANNEL_ON_END_SESSION": True}
    laptop, phone = devices(site, 2)
    account = account_of()
    laptop_grant = AccountSession.objects.order_by("pk").first().grant_id
    thread, result = _refresh_in_flight(site, hooks, laptop, account)
    # While France Travail holds the laptop's refresh, the laptop's grant ends.
    if ending == "sign_out":
        assert _sign_out(laptop, site).status_code == 200
    elif ending == "backchannel_logout":
        laptop.get(
            f"{site}/sandbox/authentification-candidat/compte/deconnexion",
            params={"client_id": settings.FTAUTH["CLIENT_ID"]},
        )
    else:
        from django.test import Client

        admin = Client()
        admin.force_login(admin_user)
        response = admin.post(
            "/admin/ftauth/grant/",
            {"action": "end_grants", "_selected_action": [laptop_grant], "post": "yes"},
        )
        assert response.status_code == 302
    assert thread.is_alive(), "the ending completed while the refresh was still in flight"
    assert not Grant.objects.filter(pk=laptop_grant).exists()
    hooks.release.set()
    thread.join(60)
    # Its late answer brings nothing back.
    assert "error" in result["page"].json()
    assert not Grant.objects.filter(pk=laptop_grant).exists()
    assert Grant.objects.filter(account=account).count() == 1
    assert not signed_in(laptop)
    hooks.hold_refreshes = False
    assert call(phone, USERINFO)["ok"]
    assert_consent_stands(account, revocations)
