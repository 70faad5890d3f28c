"""A professional in a real browser: ProConnect's button, the sandbox's ProConnect,
the profile, then the sign-out through ProConnect with its ``state`` and back."""

from __future__ import annotations

import copy
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

SERVER = "/sandbox/proconnect/api/v2"


@pytest.fixture
def pro(sandbox, settings):
    conf = copy.deepcopy(settings.FTAUTH)
    conf["REALMS"]["proconnect"] = {"idp_hint": "sandbox-france-travail"}
    settings.FTAUTH = conf
    return sandbox


def test_a_france_travail_advisor_signs_in_and_out_through_proconnect(
    page: Page, screenshot, pro: str
) -> None:
    page.goto("/")
    page.get_by_role("link", name="S’identifier avec ProConnect", exact=True).click()
    expect(page).to_have_url(re.compile(re.escape(SERVER) + "/authorize"))
    page.get_by_role("button", name=re.compile("Aline Conseil")).click()
    expect(page).to_have_url(re.compile(r"/profile/$"))
    identity = page.locator("section.identity[data-realm='proconnect']")
    expect(identity.locator("[data-field='sub']")).to_have_text("sandbox-pc-advisor")
    assert screenshot("profile-after-proconnect-sign-in").stat().st_size > 0

    navigations: list[str] = []
    page.on(
        "request",
        lambda request: (
            navigations.append(request.url) if request.is_navigation_request() else None
        ),
    )
    page.get_by_role("button", name="Se déconnecter").first.click()
    expect(page).to_have_url(f"{pro}/")
    end_session = [url for url in navigations if f"{SERVER}/session/end" in url]
    assert end_session, navigations
    query = parse_qs(urlsplit(end_session[0]).query)
    assert query["post_logout_redirect_uri"] == [f"{pro}/ftauth/logout/done/"]
    assert len(query["state"][0]) >= 32 and query.get("id_token_hint")
    page.goto("/profile/")
    expect(page).to_have_url(re.compile(r"/$"))
