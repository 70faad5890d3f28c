"""Who the identity signs in as: explicit outcomes, one test each."""

import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError
from django.test import Client

from ftauth.adapter import AccountAdapter
from ftauth.models import LinkedAccount
from tests.idp import SUB, authorize, callback, pending_for, sign_in, start

pytestmark = pytest.mark.django_db

User = get_user_model()


def test_first_sign_in_creates_a_user_without_password(client, idp):
    sign_in(client, idp)
    user = User.objects.get()
    assert not user.has_usable_password()
    assert user.first_name == "Camille" and user.last_name == "Martin"
    assert SUB not in user.username  # the username does not reveal the sub


def test_second_sign_in_reuses_the_linked_user(client, idp):
    sign_in(client, idp)
    client.logout()
    sign_in(client, idp)
    assert User.objects.count() == 1
    assert LinkedAccount.objects.count() == 1


def test_session_key_is_cycled_at_sign_in(client, idp):
    params = start(client)
    before = client.session.session_key
    callback(client, idp, params, code=authorize(idp, params))
    assert client.session.session_key != before


def test_never_attaches_to_an_existing_user_by_email_by_default(client, idp):
    existing = User.objects.create_user("camille", email="camille@example.org")
    idp.userinfo_body = {"sub": SUB, "email": "camille@example.org", "email_verified": "true"}
    sign_in(client, idp)
    assert LinkedAccount.objects.get().user != existing


@pytest.fixture
def link_by_email(settings):
    settings.FTAUTH = {**settings.FTAUTH, "LINK_BY_EMAIL": True}


def test_attaches_by_verified_email_when_enabled(client, idp, link_by_email):
    existing = User.objects.create_user("camille", email="Camille@example.org", password="pw-1")
    idp.userinfo_body = {"sub": SUB, "email": "camille@example.org", "email_verified": "true"}
    sign_in(client, idp)
    assert LinkedAccount.objects.get().user == existing


def test_never_attaches_when_two_users_share_the_verified_email(client, idp, link_by_email):
    """Which of the two is the person is unknown: neither is chosen, a new user is made."""
    first = User.objects.create_user("camille", email="camille@example.org")
    second = User.objects.create_user("camille2", email="CAMILLE@example.org")
    idp.userinfo_body = {"sub": SUB, "email": "camille@example.org", "email_verified": "true"}
    sign_in(client, idp)
    linked = LinkedAccount.objects.get().user
    assert linked not in (first, second)
    assert User.objects.count() == 3
    assert client.session["_auth_user_id"] == str(linked.pk)


def test_unverified_email_is_never_used_to_attach(client, idp, link_by_email):
    existing = User.objects.create_user("camille", email="camille@example.org", password="pw-1")
    idp.userinfo_body = {"sub": SUB, "email": "camille@example.org"}
    sign_in(client, idp)
    assert LinkedAccount.objects.get().user != existing


@pytest.mark.parametrize("flag", ["is_staff", "is_superuser"])
def test_never_attaches_to_staff_or_superuser_by_email(client, idp, link_by_email, flag):
    admin = User.objects.create_user("admin", email="camille@example.org", **{flag: True})
    idp.userinfo_body = {"sub": SUB, "email": "camille@example.org", "email_verified": "true"}
    sign_in(client, idp)
    assert LinkedAccount.objects.get().user != admin
    assert client.session["_auth_user_id"] != str(admin.pk)


def test_signed_in_user_links_the_identity_to_their_own_account(client, idp):
    me = User.objects.create_user("me", password="pw-123456")
    client.force_login(me)
    _, response = sign_in(client, idp)
    assert response.status_code == 200  # the confirmation page: nothing linked yet
    assert not LinkedAccount.objects.exists()
    response = client.post("/ftauth/link/confirm/", {"decision": "link"})
    assert response.status_code == 302
    assert LinkedAccount.objects.get().user == me
    assert client.session["_auth_user_id"] == str(me.pk)


def test_identity_of_another_user_is_refused_while_signed_in(client, idp):
    sign_in(client, idp)
    owner = LinkedAccount.objects.get().user
    intruder = User.objects.create_user("intruder")
    client.force_login(intruder)
    _, response = sign_in(client, idp)
    assert response.status_code == 409
    assert LinkedAccount.objects.get().user == owner


def test_inactive_user_is_refused(client, idp):
    sign_in(client, idp)
    User.objects.update(is_active=False)
    client.logout()
    _, response = sign_in(client, idp)
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


class RefusingAdapter(AccountAdapter):
    def can_sign_in(self, request, user, identity):
        return False


def test_adapter_can_refuse_and_nothing_is_left_behind(client, idp, settings):
    settings.FTAUTH = {**settings.FTAUTH, "ACCOUNT_ADAPTER": "tests.test_linking.RefusingAdapter"}
    _, response = sign_in(client, idp)
    assert response.status_code == 403
    assert not User.objects.exists() and not LinkedAccount.objects.exists()


def test_database_error_while_linking_is_a_503_without_session(client, idp, monkeypatch):
    from ftauth import vault

    def broken(*args, **kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(vault, "new_grant", broken)
    _, response = sign_in(client, idp)
    assert response.status_code == 503
    assert "_auth_user_id" not in client.session
    assert not User.objects.exists() and not LinkedAccount.objects.exists()


def test_database_error_after_login_ends_the_new_session(client, idp, monkeypatch):
    from ftauth.views import signin as signin_views

    def broken(*args, **kwargs):
        raise DatabaseError("connection lost")

    monkeypatch.setattr(signin_views, "register_session", broken)
    _, response = sign_in(client, idp)
    assert response.status_code == 503
    assert "_auth_user_id" not in client.session
    assert not LinkedAccount.objects.exists()


# --- linking by email is safe by construction (issue 14, item 1) ---------------------------

VICTIM = "victim@example.org"


def sign_in_realm(client, op, realm, sub):
    """The whole flow on ``realm`` (the fake serves every realm on one server)."""
    params = start(client, realm)
    code = op.authorize(sub, realm, nonce=pending_for(params["state"]).nonce)
    return client.get(
        f"/ftauth/callback/{realm}/",
        {
            "code": code,
            "state": params["state"],
            "iss": op.issuer(realm),
            "client_id": "ftauth-tests",
        },
    )


def test_an_unverified_address_is_never_copied_to_the_user(client, idp, link_by_email):
    idp.userinfo_body = {"sub": SUB, "email": VICTIM}
    sign_in(client, idp)
    user = LinkedAccount.objects.get().user
    assert user.email == ""
    assert LinkedAccount.objects.get().email == VICTIM  # kept on the identity, not trusted


def test_a_verified_address_is_copied_to_a_new_user(client, idp):
    idp.userinfo_body = {"sub": SUB, "email": VICTIM, "email_verified": "true"}
    sign_in(client, idp)
    assert LinkedAccount.objects.get().user.email == VICTIM


def test_an_attacker_address_claimed_unverified_never_captures_the_victims_identity(
    idp, link_by_email
):
    """The takeover: the attacker signs in on individu with the victim's address,
    unverified; the victim's first employeur sign-in (address verified) must not be
    linked to the attacker's user, and the victim can sign in."""
    attacker = Client()
    idp.userinfo_body = {"sub": "attacker-sub", "email": VICTIM}
    assert sign_in_realm(attacker, idp, "individu", "attacker-sub").status_code == 302
    attacker_user = LinkedAccount.objects.get(sub="attacker-sub").user

    victim = Client()
    idp.userinfo_body = {"sub": "victim-sub", "email": VICTIM, "email_verified": "true"}
    assert sign_in_realm(victim, idp, "employeur", "victim-sub").status_code == 302
    victim_account = LinkedAccount.objects.get(sub="victim-sub")
    assert victim_account.user != attacker_user
    assert victim.session["_auth_user_id"] == str(victim_account.user.pk)


def test_same_realm_victim_is_not_locked_out_by_an_address_claimed_first(idp, link_by_email):
    idp.userinfo_body = {"sub": "attacker-sub", "email": VICTIM}
    assert sign_in_realm(Client(), idp, "individu", "attacker-sub").status_code == 302
    idp.userinfo_body = {"sub": "victim-sub", "email": VICTIM, "email_verified": "true"}
    victim = Client()
    assert sign_in_realm(victim, idp, "individu", "victim-sub").status_code == 302
    assert "_auth_user_id" in victim.session


def test_a_user_with_a_linked_identity_is_never_matched_by_email(idp, link_by_email):
    site_user = User.objects.create_user("site", email=VICTIM, password="pw-1")
    LinkedAccount.objects.create(user=site_user, realm="employeur", sub="someone-else")
    idp.userinfo_body = {"sub": SUB, "email": VICTIM, "email_verified": "true"}
    assert sign_in_realm(Client(), idp, "individu", SUB).status_code == 302
    assert LinkedAccount.objects.get(sub=SUB).user != site_user


def test_a_user_ftauth_created_is_never_matched_by_email_even_after_an_unlink(idp, link_by_email):
    idp.userinfo_body = {"sub": "first-sub", "email": VICTIM, "email_verified": "true"}
    assert sign_in_realm(Client(), idp, "individu", "first-sub").status_code == 302
    created = LinkedAccount.objects.get(sub="first-sub").user
    assert created.email == VICTIM
    LinkedAccount.objects.all().delete()  # unlinked
    idp.userinfo_body = {"sub": "other-sub", "email": VICTIM, "email_verified": "true"}
    assert sign_in_realm(Client(), idp, "employeur", "other-sub").status_code == 302
    assert LinkedAccount.objects.get(sub="other-sub").user != created


# --- linking a new identity to a signed-in account asks first (issue 14, item 4) ------------


def test_a_cross_site_link_to_login_links_nothing_without_confirmation(client, idp):
    """The attack: one GET of /ftauth/login/individu/ (from any site) by a signed-in
    user whose browser holds someone's France Travail session."""
    me = User.objects.create_user("me", password="pw-123456")
    client.force_login(me)
    idp.userinfo_body = {"sub": SUB, "given_name": "Mallory", "family_name": "Intrus"}
    _, response = sign_in(client, idp)
    page = response.content.decode()
    assert response.status_code == 200
    assert "Mallory Intrus" in page and "me" in page  # names the identity and the account
    assert 'method="post"' in page and "csrfmiddlewaretoken" in page
    assert not LinkedAccount.objects.exists()
    # Leaving the page, or any later GET, links nothing.
    client.get("/ftauth/link/confirm/")
    assert not LinkedAccount.objects.exists()


def test_link_confirmation_needs_the_csrf_token(idp):
    csrf_client = Client(enforce_csrf_checks=True)
    me = User.objects.create_user("me", password="pw-123456")
    csrf_client.force_login(me)
    sign_in(csrf_client, idp)
    response = csrf_client.post("/ftauth/link/confirm/", {"decision": "link"})
    assert response.status_code == 403
    assert not LinkedAccount.objects.exists()


def test_declining_the_link_links_nothing_and_the_offer_is_gone(client, idp):
    me = User.objects.create_user("me", password="pw-123456")
    client.force_login(me)
    sign_in(client, idp)
    assert client.post("/ftauth/link/confirm/", {"decision": "cancel"}).status_code == 302
    assert client.post("/ftauth/link/confirm/", {"decision": "link"}).status_code == 400
    assert not LinkedAccount.objects.exists()
    assert client.session["_auth_user_id"] == str(me.pk)


def test_a_link_offer_serves_another_user_never(client, idp):
    me = User.objects.create_user("me", password="pw-123456")
    client.force_login(me)
    sign_in(client, idp)
    sealed = client.session["ftauth_link_offer"]
    assert SUB not in sealed  # encrypted in the session
    other = User.objects.create_user("other", password="pw-123456")
    client.force_login(other)
    session = client.session
    session["ftauth_link_offer"] = sealed
    session.save()
    assert client.post("/ftauth/link/confirm/", {"decision": "link"}).status_code == 400
    assert not LinkedAccount.objects.exists()


@pytest.mark.parametrize("flag", ["is_staff", "is_superuser"])
def test_staff_cannot_link_from_a_signed_in_session(client, idp, flag):
    admin = User.objects.create_user("admin", password="pw-123456", **{flag: True})
    client.force_login(admin)
    _, response = sign_in(client, idp)
    assert response.status_code == 403
    assert "administration" in response.content.decode()
    assert not LinkedAccount.objects.exists()
    assert client.post("/ftauth/link/confirm/", {"decision": "link"}).status_code == 400
    assert not LinkedAccount.objects.exists()


def test_signed_in_user_signing_in_with_their_own_identity_needs_no_confirmation(client, idp):
    sign_in(client, idp)
    _, response = sign_in(client, idp)  # still signed in, same identity
    assert response.status_code == 302


def test_link_confirmation_speaks_english_too(idp):
    english = Client(HTTP_ACCEPT_LANGUAGE="en")
    me = User.objects.create_user("me", password="pw-123456")
    english.force_login(me)
    _, response = sign_in(english, idp)
    page = response.content.decode()
    assert "Link your France Travail identity?" in page and "Link to this account" in page


class OneUserPerEmailAdapter(AccountAdapter):
    """A site with one user per address: its create_user reuses the user that has it."""

    def create_user(self, request, identity):
        user, _ = User.objects.get_or_create(
            email=identity.email, defaults={"username": self.unique_username(identity)}
        )
        return user


def test_an_adapter_returning_a_user_linked_here_gets_the_conflict_page(client, idp, settings):
    settings.FTAUTH = {
        **settings.FTAUTH,
        "ACCOUNT_ADAPTER": "tests.test_linking.OneUserPerEmailAdapter",
    }
    idp.userinfo_body = {"sub": SUB, "email": "camille@example.org", "email_verified": "true"}
    sign_in(client, idp)
    owner = LinkedAccount.objects.get().user
    client.logout()
    # A second France Travail identity with the same address: the site's user is
    # already linked to one in this realm.
    idp.userinfo_body = {"sub": "sub-other", "email": "camille@example.org"}
    _, response = sign_in(client, idp, sub="sub-other")
    assert response.status_code == 409  # "Compte déjà lié", not "Service indisponible"
    assert LinkedAccount.objects.get().user == owner
    assert "_auth_user_id" not in client.session
