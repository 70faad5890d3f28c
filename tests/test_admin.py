"""Admin: linked accounts, status, actions; tokens absent from every page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from ftauth import crypto, vault
from ftauth.admin import SQL_STATUSES
from ftauth.internal import audit
from ftauth.models import AccountSession, AuditEvent, Grant, LinkedAccount
from ftauth.signals import consent_revoked
from tests.lifecycle import linked_with_tokens, make_account, sign_in, store_tokens

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    user = get_user_model().objects.create_superuser("admin", "admin@example.org", "pw-admin-1")
    client = Client()
    client.force_login(user)
    return client


def secrets_of(accounts) -> list[str]:
    """Every token of these accounts, in clear and as stored."""
    values = []
    for token_set in Grant.objects.filter(account__in=accounts):
        for field in ("access_token_ciphertext", "refresh_token_ciphertext", "id_token_ciphertext"):
            ciphertext = getattr(token_set, field)
            values += [ciphertext, crypto.decrypt(ciphertext)]
    return [v for v in values if v]


def admin_pages() -> list[str]:
    """Index, every app index, and for every registered model: list, search, filters,
    and every object's change, history and delete pages."""
    pages = [reverse("admin:index")]
    for model in admin.site._registry:
        info = model._meta.app_label, model._meta.model_name
        changelist = reverse(f"admin:{info[0]}_{info[1]}_changelist")
        pages += [
            reverse("admin:app_list", args=[model._meta.app_label]),
            changelist,
            changelist + "?q=sub",
            changelist + "?q=persona",
        ]
        for obj in model._default_manager.all():
            for view in ("change", "history", "delete"):
                pages.append(reverse(f"admin:{info[0]}_{info[1]}_{view}", args=[obj.pk]))
    for status in ("valid", "expiring", "expired", "withdrawn", "none"):
        pages.append(reverse("admin:ftauth_linkedaccount_changelist") + f"?token_status={status}")
    pages.append(reverse("admin:ftauth_linkedaccount_changelist") + "?realm=individu")
    return sorted(set(pages))


def test_tokens_are_absent_from_every_admin_page(fakeop, staff):
    accounts = [linked_with_tokens(fakeop), linked_with_tokens(fakeop, "employeur")]
    browser = Client()
    sign_in(browser, fakeop, accounts[0].sub)  # sessions and audit events too
    secrets = secrets_of(accounts)
    assert len(secrets) == 18  # 3 grants (the first account has two devices), 3 tokens each
    pages = admin_pages()
    assert len(pages) > 20
    for page in pages:
        response = staff.get(page)
        # The audit trail cannot be deleted from the admin: its delete pages say 403.
        allowed = {200, 403} if "/ftauth/auditevent/" in page and "/delete/" in page else {200}
        assert response.status_code in allowed, page
        html = response.content.decode()
        for secret in secrets:
            assert secret not in html, page


def test_grant_admin_has_no_token_field():
    model_admin = admin.site._registry[Grant]
    shown = [*model_admin.fields, *model_admin.list_display, *model_admin.search_fields]
    assert not [name for name in shown if "token" in name and name != "token_status"]


def test_changelist_shows_status_and_sessions(fakeop, staff):
    browser = Client()
    account = sign_in(browser, fakeop, "sub-admin-list")
    html = staff.get(reverse("admin:ftauth_linkedaccount_changelist")).content.decode()
    assert "sub-admin-list" in html and "valides" in html
    assert AccountSession.objects.filter(account=account).count() == 1


@pytest.mark.parametrize(
    ("status", "expected"),
    [("valid", {"valid"}), ("withdrawn", {"withdrawn"}), ("none", {"none"})],
)
def test_status_filter(fakeop, staff, status, expected):
    valid = linked_with_tokens(fakeop, sub="valid")
    withdrawn = linked_with_tokens(fakeop, "employeur", sub="withdrawn")
    LinkedAccount.objects.filter(pk=withdrawn.pk).update(consent_withdrawn_at="2026-01-01T00:00Z")
    make_account(sub="none")
    assert valid
    response = staff.get(
        reverse("admin:ftauth_linkedaccount_changelist") + f"?token_status={status}"
    )
    shown = {a.sub for a in response.context["cl"].result_list}
    assert shown == expected


def accounts_in_every_state(fakeop) -> dict[str, str]:
    """One account per token status, and the issue's case; each sub with its status."""
    now = timezone.now()

    def grant_expiring_in(sub, seconds):
        account = linked_with_tokens(fakeop, sub=sub)
        Grant.objects.filter(account=account).update(expires_at=now + timedelta(seconds=seconds))
        return account

    linked_with_tokens(fakeop, sub="st-valid")
    grant_expiring_in("st-expiring", 30)
    grant_expiring_in("st-expired", -60)
    withdrawn = linked_with_tokens(fakeop, "employeur", sub="st-withdrawn")
    LinkedAccount.objects.filter(pk=withdrawn.pk).update(consent_withdrawn_at=now)
    make_account(sub="st-none")
    # A grant refreshed 40 minutes ago, expired since, and a newer sign-in, valid:
    # the newer one is the latest (Grant.objects.latest_first), so the account is valid.
    mixed = make_account(sub="st-mixed")
    old = store_tokens(mixed)
    Grant.objects.filter(pk=old.pk).update(
        obtained_at=now - timedelta(hours=2),
        refreshed_at=now - timedelta(minutes=40),
        expires_at=now - timedelta(minutes=15),
    )
    store_tokens(mixed)
    return {
        "st-valid": "valid",
        "st-expiring": "expiring",
        "st-expired": "expired",
        "st-withdrawn": "withdrawn",
        "st-none": "none",
        "st-mixed": "valid",
    }


def test_status_column_and_filter_decide_the_same_way(fakeop, staff):
    expected = accounts_in_every_state(fakeop)
    model_admin = admin.site._registry[LinkedAccount]
    url = reverse("admin:ftauth_linkedaccount_changelist")
    rows = staff.get(url).context["cl"].result_list
    column = {account.sub: model_admin.token_status(account) for account in rows}
    assert column == {sub: str(vault.TokenStatus(status).label) for sub, status in expected.items()}
    for status in SQL_STATUSES:
        rows = staff.get(url, {"token_status": status.value}).context["cl"].result_list
        shown = {account.sub for account in rows}
        assert shown == {sub for sub, value in expected.items() if value == status.value}, status
        # What the filter lists, the column says, row by row.
        assert {model_admin.token_status(account) for account in rows} <= {str(status.label)}


def test_status_column_is_the_vaults_account_status(fakeop):
    expected = accounts_in_every_state(fakeop)
    del expected["st-mixed"]  # see the next test
    for sub, status in expected.items():
        assert vault.account_status(LinkedAccount.objects.get(sub=sub)).value == status, sub


def test_the_vault_calls_the_mixed_account_valid_too(fakeop):
    accounts_in_every_state(fakeop)
    account = LinkedAccount.objects.get(sub="st-mixed")
    assert vault.account_status(account) is vault.TokenStatus.VALID


def test_search_by_sub_email_and_user(fakeop, staff):
    account = linked_with_tokens(fakeop, sub="findme-sub")
    url = reverse("admin:ftauth_linkedaccount_changelist")
    for query in ("findme-sub", account.email, account.user.username):
        result = staff.get(url, {"q": query}).context["cl"].result_list
        assert [a.pk for a in result] == [account.pk]


def test_identity_fields_are_read_only(fakeop, staff):
    account = linked_with_tokens(fakeop)
    other = get_user_model().objects.create_user("other")
    url = reverse("admin:ftauth_linkedaccount_change", args=[account.pk])
    html = staff.get(url).content.decode()
    assert 'name="sub"' not in html and 'name="user"' not in html
    staff.post(url, {"user": other.pk, "sub": "hijacked", "realm": "employeur"})
    account.refresh_from_db()
    assert account.user_id != other.pk and account.sub != "hijacked"
    assert staff.get(reverse("admin:ftauth_linkedaccount_add")).status_code == 403


def test_detail_shows_claims_and_audit_trail(fakeop, staff):
    browser = Client()
    account = sign_in(browser, fakeop, "sub-detail")
    audit.record(AuditEvent.Kind.TOKENS_REFRESHED, account, note="from the test")
    html = staff.get(reverse("admin:ftauth_linkedaccount_change", args=[account.pk])).content
    html = html.decode()
    assert "given_name" in html  # claims snapshot
    assert "jetons rafraîchis" in html and "from the test" in html  # audit trail


def test_withdraw_action_ends_sessions_and_forgets_tokens(fakeop, staff):
    received = []

    def receiver(sender, account, reason, **kwargs):
        received.append(reason)

    consent_revoked.connect(receiver)
    try:
        browser = Client()
        account = sign_in(browser, fakeop, "sub-admin-withdraw")
        response = staff.post(
            reverse("admin:ftauth_linkedaccount_changelist"),
            {"action": "withdraw_consent", "_selected_action": [account.pk], "post": "yes"},
            follow=True,
        )
    finally:
        consent_revoked.disconnect(receiver)
    assert response.status_code == 200
    assert not Grant.objects.filter(account=account).exists()
    assert not AccountSession.objects.filter(account=account).exists()
    assert received == ["admin (admin)"]
    assert browser.get("/ftauth/account/")["Location"] == "/ftauth/consent-withdrawn/"


def test_refresh_action_refreshes_now(fakeop, staff):
    account = linked_with_tokens(fakeop)
    before = Grant.objects.get(account=account).access_token_ciphertext
    staff.post(
        reverse("admin:ftauth_linkedaccount_changelist"),
        {"action": "refresh_tokens", "_selected_action": [account.pk]},
    )
    assert len(fakeop.refresh_requests()) == 1
    assert Grant.objects.get(account=account).access_token_ciphertext != before


def test_refresh_action_reports_failures_without_500(fakeop, staff):
    account = linked_with_tokens(fakeop)
    fakeop.fail_next("token", 503)
    response = staff.post(
        reverse("admin:ftauth_linkedaccount_changelist"),
        {"action": "refresh_tokens", "_selected_action": [account.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "TransportError" in response.content.decode()


def test_audit_events_are_read_only(fakeop, staff):
    linked_with_tokens(fakeop)
    event = AuditEvent.objects.create(kind="signed_in", realm="individu", sub="s")
    url = reverse("admin:ftauth_auditevent_change", args=[event.pk])
    assert staff.get(url).status_code == 200
    staff.post(url, {"kind": "linked"})
    event.refresh_from_db()
    assert event.kind == "signed_in"
    delete = reverse("admin:ftauth_auditevent_delete", args=[event.pk])
    assert staff.post(delete, {"post": "yes"}).status_code == 403


def test_actions_need_the_change_permission(fakeop):
    from django.contrib.auth.models import Permission

    viewer = get_user_model().objects.create_user("viewer", password="pw-viewer-1", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_linkedaccount"))
    client = Client()
    client.force_login(viewer)
    browser = Client()
    account = sign_in(browser, fakeop, "sub-viewer")
    url = reverse("admin:ftauth_linkedaccount_changelist")
    assert client.get(url).status_code == 200
    client.post(url, {"action": "withdraw_consent", "_selected_action": [account.pk]})
    assert LinkedAccount.objects.get(pk=account.pk).consent_withdrawn_at is None
    assert Grant.objects.filter(account=account).exists()


CHANGELIST = "admin:ftauth_linkedaccount_changelist"


@pytest.mark.parametrize("action", ["withdraw_consent", "end_all_grants"])
def test_ending_actions_ask_for_confirmation_first(fakeop, staff, action):
    browser = Client()
    account = sign_in(browser, fakeop, f"sub-confirm-{action}")
    url = reverse(CHANGELIST)
    page = staff.post(url, {"action": action, "_selected_action": [account.pk]})
    # The intermediate page, like Django's delete: what will happen, to whom; nothing done.
    assert page.status_code == 200
    html = page.content.decode()
    effect = {"withdraw_consent": "consent_revoked", "end_all_grants": "reste valable"}[action]
    assert 'data-ftauth="effects"' in html and effect in html
    assert account.sub in html and "1 session" in html
    assert 'name="post" value="yes"' in html and f'name="action" value="{action}"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert Grant.objects.filter(account=account).exists()
    assert AccountSession.objects.filter(account=account).exists()
    assert LinkedAccount.objects.get(pk=account.pk).consent_withdrawn_at is None
    assert not AuditEvent.objects.filter(
        account=account, kind__in=["consent_revoked", "sessions_ended"]
    ).exists()
    assert browser.get("/ftauth/account/").status_code == 200
    # Confirmed: done.
    staff.post(url, {"action": action, "_selected_action": [account.pk], "post": "yes"})
    assert not Grant.objects.filter(account=account).exists()
    assert (LinkedAccount.objects.get(pk=account.pk).consent_withdrawn_at is not None) == (
        action == "withdraw_consent"
    )


def test_ending_grants_asks_for_confirmation_first(fakeop, staff):
    browser = Client()
    account = sign_in(browser, fakeop, "sub-confirm-grant")
    grant = Grant.objects.get(account=account)
    url = reverse("admin:ftauth_grant_changelist")
    page = staff.post(url, {"action": "end_grants", "_selected_action": [grant.pk]})
    assert page.status_code == 200 and str(grant) in page.content.decode()
    assert Grant.objects.filter(pk=grant.pk).exists()
    staff.post(url, {"action": "end_grants", "_selected_action": [grant.pk], "post": "yes"})
    assert not Grant.objects.filter(pk=grant.pk).exists()


@pytest.mark.parametrize("action", ["withdraw_consent", "end_all_grants", "refresh_tokens"])
def test_admin_actions_are_csrf_protected(fakeop, action):
    """A POST without the token, whether the action or its confirmation, is refused."""
    admin_user = get_user_model().objects.create_superuser("csrf-admin", "c@example.org", "pw-1")
    staff = Client(enforce_csrf_checks=True)
    staff.force_login(admin_user)
    browser = Client()
    account = sign_in(browser, fakeop, f"sub-csrf-{action}")
    before = Grant.objects.get(account=account).access_token_ciphertext
    url = reverse(CHANGELIST)
    for extra in ({}, {"post": "yes"}):
        response = staff.post(url, {"action": action, "_selected_action": [account.pk], **extra})
        assert response.status_code == 403
    assert Grant.objects.get(account=account).access_token_ciphertext == before
    assert LinkedAccount.objects.get(pk=account.pk).consent_withdrawn_at is None
    assert not fakeop.refresh_requests()


def test_a_grant_reads_as_realm_date_and_device_never_a_token(fakeop):
    account = linked_with_tokens(fakeop)
    grant = Grant.objects.get(account=account)
    Grant.objects.filter(pk=grant.pk).update(device=FIREFOX)
    grant.refresh_from_db()
    text = str(grant)
    assert text.startswith("Espace candidat · connexion du ")
    assert text.endswith(" · Firefox 128 · Linux")
    assert "Grant(" not in text
    for secret in secrets_of([account]):
        assert secret not in text


FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def test_the_device_is_a_short_description_not_the_user_agent(fakeop, staff):
    browser = Client(HTTP_USER_AGENT=FIREFOX)
    account = sign_in(browser, fakeop, "sub-device")
    grant = Grant.objects.get(account=account)
    assert grant.device == "Firefox 128 · Linux"  # all that is kept of the header
    # A grant stored before: its whole User-Agent, shown short all the same.
    legacy = store_tokens(account)
    Grant.objects.filter(pk=legacy.pk).update(device=FIREFOX)
    for url in (
        reverse("admin:ftauth_grant_changelist"),
        reverse("admin:ftauth_grant_change", args=[legacy.pk]),
        reverse("admin:ftauth_linkedaccount_change", args=[account.pk]),
    ):
        html = staff.get(url).content.decode()
        assert "Firefox 128 · Linux" in html and "Gecko/20100101" not in html, url


XSS = "<script>alert(1)</script>"


def test_a_user_agent_with_markup_is_escaped_in_the_admin(fakeop, staff):
    browser = Client(HTTP_USER_AGENT=XSS)
    account = sign_in(browser, fakeop, "sub-xss-device")
    grant = Grant.objects.get(account=account)
    assert grant.device == XSS  # nothing to summarise in it: kept as sent, cut short
    for url in (
        reverse("admin:ftauth_grant_changelist"),
        reverse("admin:ftauth_grant_change", args=[grant.pk]),
        reverse("admin:ftauth_linkedaccount_change", args=[account.pk]),
        reverse("admin:ftauth_grant_delete", args=[grant.pk]),
    ):
        html = staff.get(url).content.decode()
        assert XSS not in html, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, url
    page = staff.post(
        reverse("admin:ftauth_grant_changelist"),
        {"action": "end_grants", "_selected_action": [grant.pk]},
    ).content.decode()
    assert XSS not in page and "&lt;script&gt;" in page


MARKUP_NAME = '<img src=x onerror="alert(1)">'


def test_claims_with_markup_are_escaped_on_the_site_and_in_the_admin(fakeop, staff):
    fakeop.userinfo_body = {
        "sub": "sub-xss-claims",
        "given_name": MARKUP_NAME,
        "family_name": XSS,
        "email": "xss@example.org",
    }
    browser = Client()
    account = sign_in(browser, fakeop, "sub-xss-claims")
    assert account.claims["given_name"] == MARKUP_NAME
    pages = {
        "profile": browser.get("/profile/"),
        "home": browser.get("/"),
        "account": browser.get("/ftauth/account/"),
        "admin list": staff.get(reverse(CHANGELIST)),
        "admin change": staff.get(reverse("admin:ftauth_linkedaccount_change", args=[account.pk])),
        "admin confirm": staff.post(
            reverse(CHANGELIST), {"action": "withdraw_consent", "_selected_action": [account.pk]}
        ),
    }
    for name, response in pages.items():
        assert response.status_code == 200, name
        html = response.content.decode()
        assert MARKUP_NAME not in html and XSS not in html, name
        assert "<img src=x" not in html and "<script>alert" not in html, name
    for name in ("profile", "home", "admin list", "admin change", "admin confirm"):
        assert "&lt;img src=x" in pages[name].content.decode(), name
