"""The first hour of a new user (issue 9), in a real browser, with the screenshots of the
closing note saved under ``artifacts/first-hour/`` (git-ignored)."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "first-hour"


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def choose_camille(page: Page) -> None:
    page.get_by_role("button", name=re.compile("Camille Martin")).click()


def sign_in(page: Page) -> None:
    page.goto("/")
    page.get_by_role("link", name="Se connecter avec France Travail", exact=True).click()
    page.wait_for_load_state()
    if "/profile/" not in page.url:  # the sandbox may remember the sign-in and consent
        choose_camille(page)
        page.get_by_role("button", name="Accepter").click()
    expect(page).to_have_url(re.compile(r"/profile/$"))


def test_sign_in_pages_a_new_user_meets(page: Page, sandbox: str, settings) -> None:
    page.goto("/")
    shot(page, "03-home-french-browser")
    page.get_by_role("link", name="Se connecter avec France Travail", exact=True).click()
    # 12: the persona buttons' second line is light on dark blue, not grey.
    sub = page.locator(".persona__sub").first
    colour = sub.evaluate("e => getComputedStyle(e).color")
    assert colour == "rgb(227, 230, 255)", colour
    shot(page, "12-sandbox-login-contrast")
    # 7: cancelling says so, without « Code d'erreur : 200 ».
    page.locator("#ftauth-sandbox-cancel").click()
    expect(page.get_by_role("heading", name="Connexion annulée")).to_be_visible()
    expect(page.get_by_text("Code d\u2019erreur")).to_have_count(0)
    shot(page, "07-cancelled")

    # 7: a sign-in left too long says it expired, and the time limit.
    settings.FTAUTH = {**settings.FTAUTH, "PENDING_LOGIN_TTL": 1}
    page.goto("/ftauth/login/individu/")
    time.sleep(1.2)
    choose_camille(page)
    page.get_by_role("button", name="Accepter").click()
    expect(page.get_by_role("heading", name="Demande de connexion expirée")).to_be_visible()
    expect(page.get_by_text("dans la minute qui suit son début")).to_be_visible()
    shot(page, "07-expired")
    settings.FTAUTH = {**settings.FTAUTH, "PENDING_LOGIN_TTL": 600}

    sign_in(page)
    # 10: the person's name, not an opaque user name.
    expect(page.get_by_text("Session ouverte au nom de Camille Martin.")).to_be_visible()
    shot(page, "10-profile-name")
    # 7: Back into the sign-in, or a reloaded callback, lands on the site.
    page.go_back()
    page.go_back()
    page.reload()
    expect(page.get_by_text("Demande de connexion inconnue")).to_have_count(0)
    page.goto("/")
    expect(page.get_by_text("Sans connexion")).to_have_count(0)
    shot(page, "10-home-signed-in")
    page.goto("/offres/?motsCles=cuisinier")
    expect(page.locator("[data-offer-id]").first).to_be_visible()
    shot(page, "10-offres-cuisinier")
    # 4: the account page has a way back.
    page.goto("/ftauth/account/")
    expect(page.get_by_role("link", name="Retour au site")).to_be_visible()
    shot(page, "04-account")
    # 7: GET /ftauth/logout/ is a page with the form.
    page.goto("/ftauth/logout/")
    shot(page, "07-logout-get")
    page.get_by_role("button", name="Se déconnecter").click()
    expect(page).to_have_url(f"{sandbox}/")


def test_consent_withdrawn_page_offers_the_realm_concerned(
    page: Page, sandbox: str, settings
) -> None:
    from ftauth.sandbox.consents import withdraw_consent

    sign_in(page)
    withdraw_consent("sandbox-individu-camille", settings.FTAUTH["CLIENT_ID"])
    # France Travail sends nothing: the next consent check finds out.
    settings.FTAUTH = {**settings.FTAUTH, "CONSENT_CHECK_INTERVAL": 0}
    page.goto("/profile/")
    expect(page).to_have_url(re.compile(r"/ftauth/consent-withdrawn/$"))
    buttons = page.locator("[data-ftauth-realm]")
    expect(buttons).to_have_count(1)
    expect(buttons).to_have_attribute("data-ftauth-realm", "individu")
    expect(page.get_by_text("Votre espace candidat")).to_be_visible()
    shot(page, "08-consent-withdrawn")


def test_admin_in_french_fits_1280_pixels(page: Page, sandbox: str) -> None:
    sign_in(page)  # an account and audit events to show
    get_user_model().objects.create_superuser("admin", "admin@example.org", "pw-admin-1")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto("/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "pw-admin-1")
    page.get_by_role("button", name="Connexion").click()
    page.goto("/admin/ftauth/linkedaccount/")
    expect(page.get_by_role("link", name="Espace", exact=True)).to_be_visible()
    overflow = page.evaluate(
        "() => { const t = document.querySelector('#result_list');"
        " const box = t.closest('.results') || t.parentElement;"
        " return [t.scrollWidth, box.clientWidth]; }"
    )
    assert overflow[0] <= overflow[1], overflow
    shot(page, "09-admin-accounts-1280")
    page.locator("#result_list tbody a").first.click()
    expect(page.locator("input[name=_save]")).to_have_count(0)
    expect(page.get_by_text(re.compile(r"expire le \d{1,2} "))).to_be_visible()
    shot(page, "09-admin-account-read-only")
    page.goto("/admin/ftauth/auditevent/")
    expect(page.get_by_text("Identifiant France Travail (sub)")).to_be_visible()
    shot(page, "09-admin-audit")


def test_doctor_report_against_the_sandbox(sandbox: str) -> None:
    out = io.StringIO()
    call_command("ftauth_doctor", "--site", sandbox, stdout=out, no_color=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "doctor.txt").write_text(out.getvalue())
    assert "0 error(s)" in out.getvalue()
