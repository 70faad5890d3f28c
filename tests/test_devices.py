"""One person, several devices: each sign-in is its own grant.

Sign-out, a back-channel logout, a lost refresh token or a refused grant end
one device; only every grant refused is a withdrawal. Run against the sandbox
under each behaviour a real identity server may have at end-session (France
Travail's, undocumented: nothing; certified servers: revoke the ended
session's grant; back-channel logout with ``sid``), and against ``fakeop``
where exact control is needed.
"""

from __future__ import annotations

import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, connections
from django.test import Client
from django.urls import reverse

from ftauth import consent
from ftauth.internal import audit
from ftauth.models import AccountSession, AuditEvent, Grant, LinkedAccount
from ftauth.sandbox.consents import withdraw_consent
from ftauth.sandbox.scripted import ScriptedUser, forms_of
from tests.lifecycle import age_account_check, age_session, give_password, sign_in

PERSONA = "sandbox-individu-camille"
WITHDRAWN = "/ftauth/consent-withdrawn/"
PROFILE = "/profile/"
USERINFO_SHOWN = "peconnect-individu/v1/userinfo</code>"

BEHAVIOURS = {
    "france_travail": {},
    "end_session_revokes_grant": {"END_SESSION_REVOKES_GRANT": True},
    "backchannel_on_end_session": {"BACKCHANNEL_ON_END_SESSION": True},
    "revokes_and_backchannel": {
        "END_SESSION_REVOKES_GRANT": True,
        "BACKCHANNEL_ON_END_SESSION": True,
    },
}


@pytest.fixture(autouse=True)
def profile_reads_every_time(monkeypatch):
    """/profile/ keeps what it read for a while; here each view must ask France Travail."""
    monkeypatch.setattr("demo_site.views.USER_DATA_TTL", 0)


@pytest.fixture(params=list(BEHAVIOURS))
def behaviour(request, settings):
    settings.FTAUTH_SANDBOX = BEHAVIOURS[request.param]
    return request.param


def signed_in(user: ScriptedUser) -> bool:
    return user.get("/ftauth/account/", allow_redirects=False).status_code == 200


def profile_works(user: ScriptedUser) -> bool:
    """/profile/ shows data France Travail returned for this device's token."""
    page = user.get(PROFILE)
    data = page.text.partition("Données lues avec votre jeton")[2]
    return page.url.endswith(PROFILE) and USERINFO_SHOWN in data and "<dd>Camille</dd>" in data


def sign_out(user: ScriptedUser, base: str):
    """The sign-out button of /profile/, followed through France Travail's end-session."""
    page = user.get(PROFILE)
    form = next(f for f in forms_of(page) if f.action.endswith("/ftauth/logout/"))
    return user.http.post(
        f"{base}/ftauth/logout/", data=form.fields, headers={"Referer": page.url}, timeout=10
    )


def devices(base: str, count: int) -> list[ScriptedUser]:
    users = [ScriptedUser(base) for _ in range(count)]
    for user in users:
        page = user.sign_in("individu", persona=PERSONA, next_url=PROFILE)
        assert page.status_code == 200 and page.url.endswith(PROFILE), page.text[:300]
    return users


# --- against the sandbox, under each end-session behaviour ---------------------------------


@pytest.mark.django_db(transaction=True)
def test_sign_out_on_one_device_leaves_the_other_signed_in(
    sandbox, behaviour, settings, revocations
):
    laptop, phone = devices(sandbox, 2)
    account = LinkedAccount.objects.get(sub=PERSONA)
    assert Grant.objects.filter(account=account).count() == 2

    back = sign_out(laptop, sandbox)
    assert back.status_code == 200 and back.url == f"{sandbox}/"
    assert not signed_in(laptop)
    assert Grant.objects.filter(account=account).count() == 1

    # Every request of the phone checks its grant with France Travail now.
    settings.FTAUTH = {**settings.FTAUTH, "CONSENT_CHECK_INTERVAL": 0}
    for _ in range(2):
        assert profile_works(phone)
    assert signed_in(phone)
    assert revocations == []
    account.refresh_from_db()
    assert account.consent_withdrawn_at is None
    assert AccountSession.objects.filter(account=account).count() == 1


@pytest.mark.django_db(transaction=True)
def test_sign_out_at_france_travail_ends_that_device_only(
    sandbox, behaviour, settings, revocations
):
    """The laptop signs out on France Travail's own site (no id_token_hint)."""
    laptop, phone = devices(sandbox, 2)
    account = LinkedAccount.objects.get(sub=PERSONA)
    laptop.get(
        f"{sandbox}/sandbox/authentification-candidat/compte/deconnexion",
        params={"client_id": settings.FTAUTH["CLIENT_ID"]},
    )
    settings.FTAUTH = {**settings.FTAUTH, "CONSENT_CHECK_INTERVAL": 0}
    if BEHAVIOURS[behaviour].get("BACKCHANNEL_ON_END_SESSION"):
        # The logout token named the laptop's sid: its grant went at once.
        assert Grant.objects.filter(account=account).count() == 1
        assert not signed_in(laptop)
    elif BEHAVIOURS[behaviour].get("END_SESSION_REVOKES_GRANT"):
        # Nothing was said: the laptop's next check finds its grant refused,
        # probes the phone's, which works: only the laptop signs in again.
        assert not signed_in(laptop)
        assert AuditEvent.objects.filter(account=account, kind="grant_ended").count() == 1
    else:
        assert signed_in(laptop)  # France Travail's documented behaviour: nothing changes
    assert profile_works(phone)
    assert revocations == []
    assert LinkedAccount.objects.get(pk=account.pk).consent_withdrawn_at is None


@pytest.mark.django_db(transaction=True)
def test_withdrawal_with_three_devices_ends_all_of_them_once(sandbox, settings, revocations):
    users = devices(sandbox, 3)
    account = LinkedAccount.objects.get(sub=PERSONA)
    assert Grant.objects.filter(account=account).count() == 3
    withdraw_consent(PERSONA, settings.FTAUTH["CLIENT_ID"])
    # One check interval later (here: at once), every device's next request ends it.
    settings.FTAUTH = {**settings.FTAUTH, "CONSENT_CHECK_INTERVAL": 0}
    for user in users:
        response = user.get("/ftauth/account/", allow_redirects=False)
        assert response.status_code == 302 and response.headers["Location"] == WITHDRAWN
        assert not signed_in(user)
    assert revocations == ["every grant refused (invalid_grant on refresh)"]
    assert not Grant.objects.filter(account=account).exists()
    assert not AccountSession.objects.filter(account=account).exists()
    assert AuditEvent.objects.filter(account=account, kind="consent_revoked").count() == 1


# --- against fakeop: exact control ------------------------------------------------------------


@pytest.fixture
def two_devices(fakeop):
    laptop, phone = Client(), Client()
    account = sign_in(laptop, fakeop, "sub-devices")
    laptop_grant = fakeop.grant_of("sub-devices")
    assert sign_in(phone, fakeop, "sub-devices") == account
    return laptop, phone, account, laptop_grant


def page_ok(client: Client) -> bool:
    return client.get("/ftauth/account/").status_code == 200


@pytest.mark.django_db
def test_back_channel_logout_naming_one_sid_ends_that_device_only(fakeop, two_devices):
    laptop, phone, account, laptop_grant = two_devices
    token = fakeop.logout_token(sub=None, sid=laptop_grant.sid)
    assert (
        Client().post("/ftauth/backchannel-logout/individu/", {"logout_token": token}).status_code
        == 200
    )
    assert not page_ok(laptop)
    assert page_ok(phone)
    age_session(phone)
    age_account_check(account)
    assert page_ok(phone)  # its own grant still works at France Travail
    assert Grant.objects.filter(account=account).count() == 1
    assert LinkedAccount.objects.get(pk=account.pk).consent_withdrawn_at is None


@pytest.mark.django_db
def test_refresh_token_lost_in_transit_ends_that_device_only(fakeop, two_devices, revocations):
    laptop, phone, account, laptop_grant = two_devices
    rotated_from = laptop_grant.refresh_token
    laptop_row = AccountSession.objects.get(sid=laptop.session["_ftauth"]["sid"])
    # The laptop's token is due; France Travail rotates its refresh token, but the
    # answer never arrives (read timeout): ftauth keeps the old, now void, one.
    Grant.objects.filter(pk=laptop_row.grant_id).update(expires_at="2000-01-01T00:00:00Z")
    fakeop.token_delay = 3.0  # past HTTP_READ_TIMEOUT (2 s)
    age_session(laptop)
    age_account_check(account)
    assert page_ok(laptop)  # a timeout says nothing: the session goes on
    deadline = time.monotonic() + 5
    while laptop_grant.refresh_token == rotated_from and time.monotonic() < deadline:
        time.sleep(0.05)  # the server finishes the rotation the client gave up on
    assert laptop_grant.refresh_token != rotated_from
    fakeop.token_delay = 0.0
    age_session(laptop)
    age_account_check(account)
    response = laptop.get("/ftauth/account/")
    # invalid_grant on the laptop's grant; the phone's works: sign in again, here only.
    assert response.status_code == 302 and response["Location"] == "/"
    assert not page_ok(laptop)
    age_session(phone)
    assert page_ok(phone)
    assert revocations == []
    assert LinkedAccount.objects.get(pk=account.pk).consent_withdrawn_at is None
    assert list(Grant.objects.filter(account=account).values_list("pk", flat=True)) == [
        AccountSession.objects.get(sid=phone.session["_ftauth"]["sid"]).grant_id
    ]
    # The answer to the laptop's last refresh was never stored: its refusal is no evidence.
    ended = AuditEvent.objects.get(account=account, kind="grant_ended")
    assert ended.detail["why"] == (
        "invalid_grant on refresh, after a refresh whose answer was never stored"
    )


@pytest.mark.django_db
def test_a_refused_grant_with_a_transient_other_grant_is_not_a_withdrawal(
    fakeop, two_devices, revocations
):
    laptop, phone, account, laptop_grant = two_devices
    fakeop.revoke(laptop_grant)
    age_session(laptop)
    age_account_check(account)
    # The laptop's userinfo 401, its refresh invalid_grant; the probe of the phone's
    # grant meets a 503: cannot tell, so the account keeps its consent.
    fakeop.fail_next("userinfo", 401)
    fakeop.fail_next("userinfo", 503)
    assert laptop.get("/ftauth/account/")["Location"] == "/"
    assert revocations == []
    assert page_ok(phone)


@pytest.mark.django_db
def test_a_refused_grant_beside_one_ftauth_ended_itself_is_not_a_withdrawal(
    fakeop, two_devices, revocations
):
    """The phone's grant holds a refreshed ID token ftauth refuses (another ``sub``):
    ftauth ends that grant itself, but France Travail never refused it (it had just
    refreshed it). The laptop's refusal alone is no evidence that every grant is
    refused: both devices sign in again, no ``consent_revoked``."""
    from ftauth import crypto

    laptop, phone, account, laptop_grant = two_devices
    phone_grant = Grant.objects.get(
        pk=AccountSession.objects.get(sid=phone.session["_ftauth"]["sid"]).grant_id
    )
    bad = fakeop.id_token(fakeop.grant_of("sub-devices"), sub="someone-else")
    Grant.objects.filter(pk=phone_grant.pk).update(pending_id_token_ciphertext=crypto.encrypt(bad))
    fakeop.revoke(laptop_grant)
    age_session(laptop)
    age_account_check(account)
    fakeop.fail_next("userinfo", 401)
    assert laptop.get("/ftauth/account/")["Location"] == "/"
    assert revocations == []
    account.refresh_from_db()
    assert account.consent_withdrawn_at is None
    assert not Grant.objects.filter(account=account).exists()
    assert not page_ok(phone)


@pytest.mark.django_db
def test_an_api_call_with_a_refused_grant_ends_that_device_only(fakeop, two_devices, rf):
    from ftauth import api

    laptop, phone, account, laptop_grant = two_devices
    fakeop.revoke(laptop_grant)
    request = rf.get("/")
    request.user = account.user
    request.session = laptop.session
    with pytest.raises(consent.GrantEnded):
        api.for_request(request, "individu").get("peconnect-individu/v1/userinfo")
    request.session = phone.session
    assert api.for_request(request, "individu").get("peconnect-individu/v1/userinfo")["sub"]
    assert not page_ok(laptop) and page_ok(phone)


@pytest.mark.django_db
def test_api_calls_use_this_sessions_grant(fakeop, two_devices, rf):
    from ftauth import api

    laptop, _phone, account, laptop_grant = two_devices
    request = rf.get("/")
    request.user = account.user
    request.session = laptop.session
    api.for_request(request, "individu").get("peconnect-individu/v1/userinfo")
    used = fakeop.requests_to("userinfo")[-1]["headers"]["Authorization"].removeprefix("Bearer ")
    assert fakeop.grant_with_token(used) is laptop_grant


# --- unlink, re-link, delete ------------------------------------------------------------------


@pytest.mark.django_db
def test_sign_in_after_unlink_is_a_first_sign_in(fakeop):
    first = Client()
    account = sign_in(first, fakeop, "sub-relink")
    old_user = account.user
    give_password(first)  # another way in: the identity may be unlinked
    assert first.post("/ftauth/account/unlink/individu/").status_code == 302
    assert not LinkedAccount.objects.filter(sub="sub-relink").exists()
    first.post("/ftauth/logout/")
    # Signed out, the identity is unknown again: a new user (never a 503, never
    # the old user because of its username).
    again = Client()
    new_account = sign_in(again, fakeop, "sub-relink")
    assert new_account.user_id != old_user.pk
    assert new_account.user.username.startswith(old_user.username + "-")
    assert get_user_model().objects.filter(pk=old_user.pk).exists()


@pytest.mark.django_db
def test_signed_in_user_relinks_the_unlinked_identity(fakeop):
    client = Client()
    account = sign_in(client, fakeop, "sub-relink-same")
    user = account.user
    give_password(client)  # another way in: the identity may be unlinked
    assert client.post("/ftauth/account/unlink/individu/").status_code == 302
    # While still signed in as that user: the link waits for the user's confirmation.
    response = client.get("/ftauth/login/individu/")
    params = {k: v[0] for k, v in parse_qs(urlsplit(response["Location"]).query).items()}
    code = fakeop.authorize("sub-relink-same", nonce=params["nonce"])
    response = client.get(
        "/ftauth/callback/individu/",
        {"code": code, "state": params["state"], "iss": fakeop.issuer()},
    )
    assert response.status_code == 200 and b"link/confirm" in response.content
    assert client.post("/ftauth/link/confirm/", {"decision": "link"}).status_code == 302
    again = LinkedAccount.objects.get(sub="sub-relink-same")
    assert again.user_id == user.pk
    assert AuditEvent.objects.filter(account=again, kind="linked").exists()


@pytest.mark.django_db
def test_admin_delete_ends_sessions_and_is_audited(fakeop, two_devices):
    laptop, phone, account, _ = two_devices
    staff = get_user_model().objects.create_superuser("root", "root@example.org", "pw-root-1")
    admin_client = Client()
    admin_client.force_login(staff)
    url = reverse("admin:ftauth_linkedaccount_delete", args=[account.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    assert not LinkedAccount.objects.filter(pk=account.pk).exists()
    assert not Grant.objects.exists() and not AccountSession.objects.exists()
    event = AuditEvent.objects.get(kind="deleted")
    assert (event.realm, event.sub, event.detail["sessions"]) == ("individu", "sub-devices", 2)
    assert not page_ok(laptop) and not page_ok(phone)


@pytest.mark.django_db
def test_admin_ends_one_grant(fakeop, two_devices):
    laptop, phone, account, _ = two_devices
    staff = get_user_model().objects.create_superuser("root", "root@example.org", "pw-root-1")
    admin_client = Client()
    admin_client.force_login(staff)
    laptop_grant_id = AccountSession.objects.get(sid=laptop.session["_ftauth"]["sid"]).grant_id
    response = admin_client.post(
        reverse("admin:ftauth_grant_changelist"),
        {"action": "end_grants", "_selected_action": [laptop_grant_id], "post": "yes"},
    )
    assert response.status_code == 302
    assert not page_ok(laptop) and page_ok(phone)
    assert AuditEvent.objects.filter(account=account, kind="grant_ended").count() == 1


# --- database errors: nothing half-written, no 500, the retry works ---------------------------


@pytest.fixture
def failing_audit(monkeypatch):
    """The next audit record (inside each ending's transaction) fails like a lost database."""
    calls = {"left": 1}
    real = audit.record

    def record(*args, **kwargs):
        if calls["left"]:
            calls["left"] -= 1
            raise DatabaseError("connection lost")
        return real(*args, **kwargs)

    monkeypatch.setattr(audit, "record", record)
    return calls


@pytest.mark.django_db
def test_database_error_during_sign_out(fakeop, two_devices, failing_audit):
    laptop, phone, account, _ = two_devices
    response = laptop.post("/ftauth/logout/")
    assert response.status_code == 503
    assert page_ok(laptop)  # still signed in, grant kept: nothing half-done
    assert Grant.objects.filter(account=account).count() == 2
    assert laptop.post("/ftauth/logout/").status_code == 302
    assert not page_ok(laptop) and page_ok(phone)


@pytest.mark.django_db
def test_database_error_during_unlink(fakeop, two_devices, failing_audit):
    laptop, phone, account, _ = two_devices
    give_password(laptop, phone)  # another way in: the identity may be unlinked
    assert laptop.post("/ftauth/account/unlink/individu/").status_code == 503
    assert LinkedAccount.objects.filter(pk=account.pk).exists()
    assert AccountSession.objects.filter(account=account).count() == 2 and page_ok(phone)
    assert laptop.post("/ftauth/account/unlink/individu/").status_code == 302
    assert not LinkedAccount.objects.filter(pk=account.pk).exists()
    assert page_ok(laptop) and not page_ok(phone)


@pytest.mark.django_db
def test_database_error_during_back_channel_logout(fakeop, two_devices, failing_audit):
    laptop, phone, _account, laptop_grant = two_devices
    token = fakeop.logout_token(sub=None, sid=laptop_grant.sid)
    post = {"logout_token": token}
    response = Client().post("/ftauth/backchannel-logout/individu/", post)
    assert response.status_code == 503
    assert page_ok(laptop)  # nothing ended, and the jti was not spent:
    assert Client().post("/ftauth/backchannel-logout/individu/", post).status_code == 200
    assert not page_ok(laptop) and page_ok(phone)


@pytest.mark.django_db
def test_database_error_during_withdrawal(fakeop, two_devices, failing_audit, revocations):
    laptop, phone, account, _ = two_devices
    fakeop.withdraw("sub-devices")
    age_session(laptop)
    age_account_check(account)
    # The withdrawal's transaction fails: the page is served, nothing changed.
    assert page_ok(laptop)
    assert LinkedAccount.objects.get(pk=account.pk).consent_withdrawn_at is None
    assert Grant.objects.filter(account=account).count() == 2 and revocations == []
    age_session(laptop)
    assert laptop.get("/ftauth/account/")["Location"] == WITHDRAWN
    assert phone.get("/ftauth/account/")["Location"] == WITHDRAWN
    assert revocations == ["every grant refused (invalid_grant on refresh)"]


@pytest.mark.django_db
def test_consent_revoked_is_sent_once_after_an_attempt_stopped_halfway(
    fakeop, two_devices, revocations, monkeypatch
):
    laptop, phone, account, _ = two_devices
    real = consent.send_pending_revocation

    def crash(*args, **kwargs):
        raise RuntimeError("worker killed after the commit")

    monkeypatch.setattr(consent, "send_pending_revocation", crash)
    with pytest.raises(RuntimeError):
        consent.withdraw(account, "admin")
    monkeypatch.setattr(consent, "send_pending_revocation", real)
    assert revocations == []  # committed, not yet announced
    # The next session to notice the withdrawal sends it, once.
    assert phone.get("/ftauth/account/")["Location"] == WITHDRAWN
    assert laptop.get("/ftauth/account/")["Location"] == WITHDRAWN
    assert consent.withdraw(account, "admin") is False
    assert len(revocations) == 1


# --- two first sign-ins of one identity at the same moment ------------------------------------


@pytest.mark.django_db
def test_first_sign_in_that_loses_the_race_signs_in_as_the_winner(fakeop, monkeypatch):
    from ftauth.internal import signin

    winner = Client()
    account = sign_in(winner, fakeop, "sub-race")
    real = signin._linked_account
    calls = {"n": 0}

    def read_before_the_winner_committed(realm, sub):
        calls["n"] += 1
        return None if calls["n"] == 1 else real(realm, sub)

    monkeypatch.setattr(signin, "_linked_account", read_before_the_winner_committed)
    loser = Client()
    assert sign_in(loser, fakeop, "sub-race") == account
    assert calls["n"] == 2
    assert get_user_model().objects.count() == 1
    assert LinkedAccount.objects.count() == 1
    assert page_ok(winner) and page_ok(loser)
    assert Grant.objects.filter(account=account).count() == 2


@pytest.mark.django_db
def test_the_race_loser_records_its_sign_in_on_the_winners_account(fakeop, monkeypatch):
    """The loser's first sign-in wrote nothing (its insert was rolled back): what it
    records (claims, address, last login, claims read, consent) goes on the winner's."""
    from datetime import timedelta

    from django.utils import timezone

    from ftauth.internal import signin

    account = sign_in(Client(), fakeop, "sub-race-fields")
    long_ago = timezone.now() - timedelta(days=30)
    LinkedAccount.objects.filter(pk=account.pk).update(
        last_login_at=long_ago, claims_at=long_ago, consent_withdrawn_at=long_ago, email=""
    )
    real = signin._linked_account
    calls = {"n": 0}

    def read_before_the_winner_committed(realm, sub):
        calls["n"] += 1
        return None if calls["n"] == 1 else real(realm, sub)

    monkeypatch.setattr(signin, "_linked_account", read_before_the_winner_committed)
    fakeop.userinfo_body = {
        "sub": "sub-race-fields",
        "given_name": "Dominique",
        "email": "dominique@example.org",
    }
    assert sign_in(Client(), fakeop, "sub-race-fields") == account
    assert calls["n"] == 2  # the loser's path
    account.refresh_from_db()
    assert account.claims["given_name"] == "Dominique"
    assert account.email == "dominique@example.org"
    assert account.last_login_at > long_ago and account.claims_at > long_ago
    assert account.consent_withdrawn_at is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_first_sign_ins_both_succeed(fakeop):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent transactions are tested on PostgreSQL (set DATABASE_URL)")
    from urllib.parse import parse_qs, urlsplit

    clients, callbacks = [Client(), Client()], []
    for client in clients:
        location = client.get("/ftauth/login/individu/")["Location"]
        params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        code = fakeop.authorize("sub-simultaneous", nonce=params["nonce"])
        callbacks.append({"code": code, "state": params["state"], "iss": fakeop.issuer("individu")})
    barrier = threading.Barrier(2)
    statuses = []

    def callback(client, params):
        try:
            barrier.wait()
            statuses.append(client.get("/ftauth/callback/individu/", params).status_code)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=callback, args=pair)
        for pair in zip(clients, callbacks, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == [302, 302]
    assert LinkedAccount.objects.filter(sub="sub-simultaneous").count() == 1
    assert get_user_model().objects.count() == 1
    assert all(page_ok(client) for client in clients)


@pytest.mark.django_db
def test_database_error_during_an_admin_action_is_a_message(fakeop, two_devices, failing_audit):
    laptop, phone, account, _ = two_devices
    staff = get_user_model().objects.create_superuser("root", "root@example.org", "pw-root-1")
    admin_client = Client()
    admin_client.force_login(staff)
    url = reverse("admin:ftauth_linkedaccount_changelist")
    response = admin_client.post(
        url,
        {"action": "end_all_grants", "_selected_action": [account.pk], "post": "yes"},
        follow=True,
    )
    assert response.status_code == 200
    assert "La base de données est indisponible" in response.content.decode()
    assert page_ok(laptop) and page_ok(phone)  # nothing half-done
    delete = reverse("admin:ftauth_linkedaccount_delete", args=[account.pk])
    failing_audit["left"] = 1
    assert admin_client.post(delete, {"post": "yes"}, follow=True).status_code == 200
    assert LinkedAccount.objects.filter(pk=account.pk).exists()


@pytest.mark.django_db
def test_a_session_uses_only_the_grant_it_signed_in_with(fakeop, two_devices):
    """Never another device's tokens, never another realm's: no fallback to the latest grant."""
    from types import SimpleNamespace

    from ftauth import vault
    from tests.lifecycle import add_grant, make_account

    laptop, _phone, account, _ = two_devices
    laptop_row = AccountSession.objects.get(sid=laptop.session["_ftauth"]["sid"])
    request = SimpleNamespace(session=laptop.session)
    assert vault.session_grant(request, account).pk == laptop_row.grant_id
    # The same person's employeur identity, signed in on another device only.
    employeur = make_account("employeur", user=account.user)
    add_grant(fakeop, employeur)
    assert vault.session_grant(request, employeur) is None
    # The laptop's grant ended: the phone's (newer) is not handed out instead.
    Grant.objects.filter(pk=laptop_row.grant_id).delete()
    assert vault.session_grant(request, account) is None
