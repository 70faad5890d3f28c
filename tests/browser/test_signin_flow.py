"""A person in a real browser: sign in, see the profile, withdraw consent, sign out.

Headless Chromium against the demo site and its sandbox identity server on the live
server (the ``sandbox`` fixture); every step is a click a person would make.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS


def screenshot_dir():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


pytestmark = pytest.mark.browser

INDIVIDU_SERVER = "/sandbox/authentification-candidat"
ENTREPRISE_SERVER = "/sandbox/entreprise"


@dataclass(frozen=True)
class Visitor:
    """Who clicks which button: a persona of the sandbox (ftauth/sandbox/directory.py)."""

    realm: str
    button: str
    server: str
    name: str
    sub: str


CAMILLE = Visitor(
    "individu",
    "Se connecter avec France Travail",
    INDIVIDU_SERVER,
    "Camille Martin",
    "sandbox-individu-camille",
)
VISITORS = [
    CAMILLE,
    Visitor(
        "employeur",
        "Recruteur : se connecter avec France Travail",
        ENTREPRISE_SERVER,
        "Sophie Leroy",
        "sandbox-employeur-sophie",
    ),
    Visitor(
        "partenaire",
        "Partenaire : se connecter avec France Travail",
        ENTREPRISE_SERVER,
        "Nadia Petit",
        "sandbox-partenaire-nadia",
    ),
]


def sign_in(page: Page, visitor: Visitor = CAMILLE, *, consent: bool = True) -> None:
    """From the home page to /profile/: the button, the persona, the consent screen
    (not shown again once the person has consented, as at France Travail)."""
    page.goto("/")
    page.get_by_role("link", name=visitor.button, exact=True).click()

    expect(page).to_have_url(re.compile(re.escape(visitor.server) + "/"))
    page.get_by_role("button", name=re.compile(re.escape(visitor.name))).click()

    if consent:
        # The consent screen lists what the site asks for; the person accepts it.
        expect(page.get_by_text("Vous identifier")).to_be_visible()
        page.get_by_role("button", name="Accepter").click()

    expect(page).to_have_url(re.compile(r"/profile/$"))


@pytest.mark.parametrize("visitor", VISITORS, ids=lambda visitor: visitor.realm)
def test_signs_in_and_sees_realm_and_sub_on_profile(
    page: Page, screenshot, visitor: Visitor
) -> None:
    sign_in(page, visitor)

    identity = page.locator(f"section.identity[data-realm='{visitor.realm}']")
    expect(identity.locator("[data-field='realm']")).to_have_text(visitor.realm)
    expect(identity.locator("[data-field='sub']")).to_have_text(visitor.sub)
    expect(identity).to_contain_text(visitor.name.split()[0])
    assert screenshot(f"profile-after-sign-in-{visitor.realm}").stat().st_size > 0


def test_sign_out_goes_through_the_end_session_url_and_back(
    page: Page, screenshot, sandbox: str
) -> None:
    sign_in(page)
    navigations: list[str] = []
    page.on(
        "request",
        lambda request: (
            navigations.append(request.url) if request.is_navigation_request() else None
        ),
    )

    # The header and the profile both offer it; either posts to /ftauth/logout/.
    page.get_by_role("button", name="Se déconnecter").first.click()

    expect(
        page.get_by_role("link", name="Se connecter avec France Travail", exact=True)
    ).to_be_visible()
    end_session = [url for url in navigations if f"{INDIVIDU_SERVER}/compte/deconnexion" in url]
    assert end_session, f"sign-out never reached the end-session URL: {navigations}"
    query = parse_qs(urlsplit(end_session[0]).query)
    assert query.get("id_token_hint"), "the end-session URL carries no id_token_hint"
    # France Travail calls the way back redirect_uri; it leads home to the demo.
    assert query.get("redirect_uri") == [f"{sandbox}/"], query
    expect(page).to_have_url(f"{sandbox}/")

    # Signed out for real: the profile sends the visitor back home.
    page.goto("/profile/")
    expect(page).to_have_url(re.compile(r"/$"))
    screenshot("home-after-sign-out")


def test_consent_withdrawn_at_france_travail_ends_the_demo_session(
    page: Page, screenshot, settings
) -> None:
    sign_in(page)

    # The person opens France Travail's "Mes consentements" in another tab and withdraws.
    account = page.context.new_page()
    account.goto(f"{INDIVIDU_SERVER}/compte/consentements")
    expect(account.get_by_role("heading", name="Mes consentements")).to_be_visible()
    persona = account.get_by_role("button", name=re.compile(re.escape(CAMILLE.name)))
    if persona.count():  # The sandbox asks who is there unless it still knows.
        persona.click()
    account.get_by_role("button", name="Retirer mon consentement").click()
    # Still France Travail's page (the demo's own middleware has no say on it), confirming.
    expect(account).to_have_url(re.compile(re.escape(INDIVIDU_SERVER) + "/compte/consentements"))
    expect(account.get_by_role("status")).to_contain_text("consentement a été retiré")
    account.close()

    # France Travail sends nothing: the demo finds out at the session's next consent
    # check, at most CONSENT_CHECK_INTERVAL later (here: due at once).
    settings.FTAUTH = {**settings.FTAUTH, "CONSENT_CHECK_INTERVAL": 0}
    # Back on the demo, the next click shows why the session ended.
    page.get_by_role("link", name="Accueil").click()
    expect(page.get_by_text("consentement a été retiré")).to_be_visible()
    screenshot("consent-withdrawn")
    page.goto("/profile/")
    expect(page).to_have_url(re.compile(r"/$"))


def test_signing_out_one_browser_leaves_the_other_signed_in(
    page: Page, chromium_browser, sandbox: str, screenshot, settings
) -> None:
    """Two browsers of one person: each sign-in is its own grant."""
    other_context = chromium_browser.new_context(base_url=sandbox, locale="fr-FR")
    other = other_context.new_page()
    try:
        sign_in(page)
        sign_in(other, consent=False)
        page.get_by_role("button", name="Se déconnecter").first.click()
        expect(
            page.get_by_role("link", name="Se connecter avec France Travail", exact=True)
        ).to_be_visible()

        # The other browser checks its own grant at once, and keeps working.
        settings.FTAUTH = {**settings.FTAUTH, "CONSENT_CHECK_INTERVAL": 0}
        other.goto("/profile/")
        expect(other).to_have_url(re.compile(r"/profile/$"))
        identity = other.locator("section.identity[data-realm='individu']")
        expect(identity.locator("[data-field='sub']")).to_have_text(CAMILLE.sub)
        expect(identity).to_contain_text("peconnect-individu/v1/userinfo")
        other.screenshot(
            path=str(
                screenshot("two-browsers-signed-out").parent
                / "two-browsers-other-still-signed-in.png"
            )
        )
    finally:
        other_context.close()
