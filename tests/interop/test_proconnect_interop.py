"""ftauth's ``proconnect`` realm against oidc-provider set up like ProConnect.

The server (``tests/interop/idp_proconnect.mjs``) serves everything under
``/api/v2`` and ftauth finds it by discovery; ID tokens and userinfo answers are
ES256, userinfo is ``application/jwt``, the ``acr`` comes from the login, the
sign-out wants ``post_logout_redirect_uri`` and ``state``. Skipped like
test_oidc_provider.py when node or the npm packages are missing.
"""

from __future__ import annotations

import copy
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
from django.conf import settings as django_settings

from ftauth.sandbox.scripted import parse_html_forms

# The server is registered with these (IdentityServer passes them to node).
from tests.interop.test_oidc_provider import CLIENT_ID, CLIENT_SECRET, Browser, IdentityServer

ACCOUNT = "/ftauth/account/"

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def proconnect(live_server, settings, tmp_path):
    from django.core.cache import caches

    server = IdentityServer(
        live_server.url,
        tmp_path / "oidc-provider-proconnect.log",
        script="idp_proconnect.mjs",
        issuer_path="/api/v2",
    )
    for cache in caches.all():
        cache.clear()
    conf = copy.deepcopy(django_settings.FTAUTH)
    conf.update(
        SANDBOX=False,
        REALMS={
            "proconnect": {
                "server": server.url,
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "acr_values": ["eidas1", "eidas1-mfa"],
                "request_amr": True,
            }
        },
    )
    settings.FTAUTH = conf
    yield server
    server.stop()


def sign_in(browser: Browser, acr: str = "eidas1"):
    """Through the login form, with the level the person's provider reached."""
    response = browser.get(f"/ftauth/login/proconnect/?next={ACCOUNT}")
    for _ in range(10):
        if response.is_redirect:
            location = urljoin(response.url, response.headers["Location"])
            response = browser.http.get(location, allow_redirects=False, timeout=15)
            continue
        forms = parse_html_forms(response.text) if response.url.startswith(browser.idp.url) else []
        if not forms:
            return response
        form = forms[0]
        response = browser.http.post(
            urljoin(response.url, form.action),
            data={**dict(form.fields), "login": "aline", "acr": acr},
            allow_redirects=False,
            timeout=15,
        )
    raise AssertionError(f"too many steps (last: {response.url})")


def account():
    from ftauth.models import LinkedAccount

    return LinkedAccount.objects.get(realm="proconnect")


def test_signs_in_through_discovery_with_es256_and_jwt_userinfo(proconnect, live_server):
    browser = Browser(live_server.url, proconnect)
    page = sign_in(browser)
    assert page.status_code == 200 and page.url.endswith(ACCOUNT), (
        page.text[page.text.find("<body") :][:1500],
        proconnect.log.read_text()[-2000:],
    )
    linked = account()
    assert linked.sub == "aline"
    assert linked.claims["custom"] == {"structureTravail": "75011"}
    assert linked.claims["usual_name"] == "Interop aline"
    assert linked.claims["amr"] == ["pwd"]
    assert proconnect.requests_to("/api/v2/token") == 1
    assert proconnect.requests_to("/api/v2/me") == 1  # the discovered userinfo endpoint


def test_a_level_the_site_does_not_accept_is_refused(proconnect, live_server, settings):
    conf = copy.deepcopy(settings.FTAUTH)
    conf["REALMS"]["proconnect"]["acr_values"] = ["eidas1-mfa"]
    settings.FTAUTH = conf
    browser = Browser(live_server.url, proconnect)
    page = sign_in(browser, acr="eidas1")
    assert page.status_code == 403
    assert browser.get(ACCOUNT).status_code != 200


def test_refreshes_at_the_discovered_token_endpoint(proconnect, live_server):
    from ftauth import vault
    from ftauth.models import Grant

    browser = Browser(live_server.url, proconnect)
    assert sign_in(browser).url.endswith(ACCOUNT)
    grant = Grant.objects.get()
    before = vault.get_id_token(grant)
    vault.refresh(grant, force=True)
    assert proconnect.requests_to("/api/v2/token") == 2
    assert vault.get_id_token(Grant.objects.get()) != before


def test_signs_out_with_state_and_comes_back(proconnect, live_server):
    browser = Browser(live_server.url, proconnect)
    page = sign_in(browser)
    form = next(f for f in parse_html_forms(page.text) if f.action.endswith("/ftauth/logout/"))
    response = browser.http.post(
        urljoin(page.url, form.action),
        data=form.fields,
        headers={"Referer": page.url},
        allow_redirects=False,
        timeout=15,
    )
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(f"{proconnect.issuer}/session/end?")
    query = parse_qs(urlsplit(location).query)
    assert {"id_token_hint", "state", "post_logout_redirect_uri"} <= set(query)
    # Signed out here before the person even reaches ProConnect.
    assert browser.get(ACCOUNT).status_code == 302
    back = browser.follow(response)
    assert back.status_code == 200 and back.url == f"{browser.site}/", back.url
