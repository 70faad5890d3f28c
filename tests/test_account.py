"""The account page: linked identities with their token status, and unlinking."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from ftauth.internal.sessions import SESSION_KEY
from ftauth.models import AuditEvent, Grant, LinkedAccount
from tests.lifecycle import give_password, make_account, sign_in

pytestmark = pytest.mark.django_db

ACCOUNT = "/ftauth/account/"
UNLINK = "/ftauth/account/unlink/individu/"


def test_account_page_lists_identities_with_token_status(fakeop):
    client = Client()
    account = sign_in(client, fakeop, "sub-account-page")
    html = client.get(ACCOUNT).content.decode()
    assert "Mes identités France Travail" in html
    assert account.sub in html
    assert 'data-status="valid"' in html and "valides" in html
    assert f'action="{UNLINK}"' in html
    assert "plaintext" not in html and "AT-" not in html


def test_account_page_needs_a_signed_in_user():
    response = Client().get(ACCOUNT)
    assert response.status_code == 302 and "/login" in response["Location"]


def test_unlink_forgets_tokens_and_keeps_the_user_signed_in(fakeop):
    client = Client()
    account = sign_in(client, fakeop, "sub-unlink-me")
    give_password(client)
    user_id = account.user_id
    response = client.post(UNLINK)
    assert response.status_code == 302 and response["Location"] == ACCOUNT
    assert not LinkedAccount.objects.filter(pk=account.pk).exists()
    assert not Grant.objects.filter(account_id=account.pk).exists()
    assert get_user_model().objects.filter(pk=user_id).exists()
    assert SESSION_KEY not in client.session
    page = client.get(ACCOUNT)
    assert page.status_code == 200
    assert "Aucune identité France Travail" in page.content.decode()
    event = AuditEvent.objects.get(kind="unlinked")
    assert event.sub == "sub-unlink-me" and event.user_id == user_id


def test_unlink_needs_post_and_csrf(fakeop):
    client = Client(enforce_csrf_checks=True)
    account = sign_in(client, fakeop, "sub-unlink-csrf")
    assert client.get(UNLINK).status_code == 405
    assert client.post(UNLINK).status_code == 403
    assert LinkedAccount.objects.filter(pk=account.pk).exists()


def test_unlink_of_an_identity_not_linked_is_404(fakeop):
    client = Client()
    sign_in(client, fakeop, "sub-unlink-other")
    assert client.post("/ftauth/account/unlink/employeur/").status_code == 404


def test_unlink_honours_a_safe_next_only(fakeop):
    client = Client()
    sign_in(client, fakeop, "sub-next-safe")
    give_password(client)
    assert client.post(UNLINK, {"next": "/profile/"})["Location"] == "/profile/"
    other = Client()
    sign_in(other, fakeop, "sub-next-unsafe")
    give_password(other)
    response = other.post(UNLINK, {"next": "https://evil.example/"})
    assert response["Location"] == ACCOUNT


def test_unlinking_the_only_way_into_an_account_is_refused(fakeop):
    """No password, no other identity: the account would be orphaned, and the next
    sign-in would make a second user (``ft-individu-…-2``)."""
    client = Client()
    account = sign_in(client, fakeop, "sub-only-way-in")
    page = client.get(ACCOUNT).content.decode()
    assert 'data-field="unlink-refused"' in page and "ne peut pas être déliée" in page
    refused = r"<button[^>]* disabled aria-describedby=\"ftauth-unlink-refused-individu"
    assert re.search(refused, page)
    response = client.post(UNLINK, {"next": "/profile/"})
    assert response.status_code == 409
    html = response.content.decode()
    assert "seul moyen de se connecter" in html and "n’a pas été déliée" in html
    assert 'href="/profile/"' in html  # the way back is where the user came from
    assert LinkedAccount.objects.filter(pk=account.pk).exists()
    assert Grant.objects.filter(account=account).exists()
    assert SESSION_KEY in client.session
    assert not AuditEvent.objects.filter(kind="unlinked").exists()


def test_unlinking_is_allowed_with_a_password(fakeop):
    client = Client()
    account = sign_in(client, fakeop, "sub-with-password")
    give_password(client)
    page = client.get(ACCOUNT).content.decode()
    assert 'data-field="unlink-refused"' not in page and " disabled" not in page
    assert client.post(UNLINK).status_code == 302
    assert not LinkedAccount.objects.filter(pk=account.pk).exists()


def test_unlinking_is_allowed_when_another_identity_stays_linked(fakeop):
    client = Client()
    account = sign_in(client, fakeop, "sub-two-identities")
    other = make_account("employeur", user=account.user)
    assert client.post(UNLINK).status_code == 302
    assert not LinkedAccount.objects.filter(pk=account.pk).exists()
    # The one left is now the only way in: it stays.
    assert client.post("/ftauth/account/unlink/employeur/").status_code == 409
    assert LinkedAccount.objects.filter(pk=other.pk).exists()


def test_withdrawn_page_is_public_and_not_cached():
    response = Client().get("/ftauth/consent-withdrawn/")
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]
    html = response.content.decode()
    assert "Votre consentement a été retiré" in html
    assert "/ftauth/login/individu/" in html
