"""The admin as an operator reads it: French labels, local dates, read-only pages
without « Enregistrer », audit rows that say what happened."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from ftauth.models import AuditEvent
from tests.lifecycle import linked_with_tokens, make_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    user = get_user_model().objects.create_superuser("admin", "admin@example.org", "pw-admin-1")
    client = Client(HTTP_ACCEPT_LANGUAGE="fr")
    client.force_login(user)
    return client


def test_realm_is_called_espace_everywhere_with_its_human_name(staff):
    make_account("partenaire")
    AuditEvent.objects.create(kind="signed_in", realm="partenaire", sub="s-1")
    for name in ("linkedaccount", "auditevent"):
        html = staff.get(reverse(f"admin:ftauth_{name}_changelist")).content.decode()
        assert "Royaume" not in html and "royaume" not in html
        assert "Par realm" not in html and ">realm<" not in html.lower()
        assert "Par espace" in html and "espace partenaire (partenaire)" in html


def test_audit_column_headers_are_french(staff):
    AuditEvent.objects.create(kind="signed_in", realm="individu", sub="s-1")
    html = staff.get(reverse("admin:ftauth_auditevent_changelist")).content.decode()
    for english in (">Sub<", ">User<", ">Account<", ">Realm<"):
        assert english not in html
    assert "Identifiant France Travail (sub)" in html and "Utilisateur" in html


def test_token_expiry_is_a_local_date_like_the_others(fakeop, staff):
    account = linked_with_tokens(fakeop)
    expires = account.grants.get().expires_at
    html = staff.get(reverse("admin:ftauth_linkedaccount_change", args=[account.pk]))
    html = html.content.decode()
    assert str(expires) not in html  # not "2026-03-12 13:03:00+00:00"
    local = timezone.localtime(expires)
    assert f"{local.hour}:{local.minute:02d}" in html


def test_read_only_pages_have_no_save_buttons(staff):
    account = make_account()
    event = AuditEvent.objects.create(kind="signed_in", realm="individu", sub="s", account=account)
    for url in (
        reverse("admin:ftauth_linkedaccount_change", args=[account.pk]),
        reverse("admin:ftauth_auditevent_change", args=[event.pk]),
    ):
        html = staff.get(url).content.decode()
        assert 'name="_save"' not in html and 'name="_continue"' not in html, url
        assert "Enregistrer" not in html, url


def test_audit_row_reads_as_a_sentence():
    event = AuditEvent(
        kind="signed_out",
        realm="partenaire",
        sub="sandbox-partenaire-nadia",
        created_at=datetime(2026, 3, 12, 13, 3, tzinfo=UTC),
    )
    text = str(event)
    assert "signed_out" not in text and "partenaire:" not in text
    assert text.startswith("Déconnexion · espace partenaire · sandbox-partenaire-nadia · ")
    assert "2026" in text and "14:03" in text  # Europe/Paris
