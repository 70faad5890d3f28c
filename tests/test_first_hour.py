"""What a new user meets on ftauth's own pages (issue 9): cancel and refusal,
a reloaded callback, an expired sign-in, GET on logout, two tabs on the
sandbox login, the "consentement retiré" page, the account page."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from ftauth.internal.sessions import ENDED_REALM_KEY
from ftauth.sandbox.scripted import ScriptedUser, forms_of

pytestmark = pytest.mark.django_db(transaction=True)

PERSONA = "sandbox-individu-camille"


def test_cancel_and_refusal_pages_show_no_error_code(sandbox):
    user = ScriptedUser(sandbox)
    refused = user.sign_in("individu", persona=PERSONA, decision="refuse")
    assert "Autorisation refusée" in refused.text
    other = ScriptedUser(sandbox)
    login_page = other.get("/ftauth/login/individu/")
    cancel = re.search(r'href="([^"]+)" id="ftauth-sandbox-cancel"', login_page.text)[1]
    cancelled = other.get(html.unescape(cancel))
    assert "Connexion annulée" in cancelled.text
    for page in (refused, cancelled):
        assert page.status_code == 200
        assert "Code d\u2019erreur" not in page.text and "200" not in page.text.split("<main")[1]


def test_reloading_the_callback_once_signed_in_goes_to_the_site(sandbox):
    user = ScriptedUser(sandbox)
    page = user.sign_in("individu", persona=PERSONA, next_url="/profile/")
    callback = next(r for r in page.history if "/ftauth/callback/" in r.url)
    again = user.get(callback.url, allow_redirects=False)
    assert again.status_code == 302 and again.headers["Location"] == "/profile/"
    # Signed out, the same used state is still refused with a page.
    other = ScriptedUser(sandbox)
    assert other.get(callback.url).status_code == 400


def test_back_into_the_sign_in_after_signing_in_goes_to_the_site(sandbox):
    user = ScriptedUser(sandbox)
    start = user.get("/ftauth/login/individu/", allow_redirects=False)
    authorize = start.headers["Location"]
    page = user.get(authorize)  # the sandbox's login page
    page = user.submit(page, form_id="ftauth-sandbox-login", button=("persona", PERSONA))
    page = user.submit(page, form_id="ftauth-sandbox-consent", button=("decision", "accept"))
    assert page.url.endswith("/profile/")
    # Back to the sandbox's page: single sign-on and the remembered consent send the
    # browser straight to the callback with the old state.
    back = user.get(authorize)
    assert back.status_code == 200 and back.url.endswith("/profile/")


def test_an_expired_sign_in_says_so_and_gives_the_time_limit(sandbox, settings):
    settings.FTAUTH = {**settings.FTAUTH, "PENDING_LOGIN_TTL": 600}
    user = ScriptedUser(sandbox)
    start = user.get("/ftauth/login/individu/", allow_redirects=False)
    state = parse_qs(urlsplit(start.headers["Location"]).query)["state"][0]
    # Time passes: the request expired (the purge may even have removed it).
    from tests.idp import aged

    jar = user.http.cookies
    cookie = next(c for c in jar if c.name == "ftauth_pending")
    jar.set("ftauth_pending", aged(cookie.value), domain=cookie.domain, path=cookie.path)
    page = user.get(f"/ftauth/callback/individu/?state={state}&code=x")
    assert page.status_code == 400
    assert "expirée" in page.text and "10 minutes" in page.text
    assert "/ftauth/login/individu/" in page.text  # and a way to start again


def test_get_on_logout_gives_a_page_with_the_form(sandbox):
    user = ScriptedUser(sandbox)
    signed_out = user.get("/ftauth/logout/")
    assert signed_out.status_code == 200 and "Aucune session n\u2019est ouverte" in signed_out.text
    user.sign_in("individu", persona=PERSONA)
    page = user.get("/ftauth/logout/")
    form = next(f for f in forms_of(page) if f.action == "/ftauth/logout/")
    assert form.method == "post"
    out = user.http.post(
        sandbox + "/ftauth/logout/",
        data=form.fields,
        headers={"Referer": page.url},
        timeout=10,
    )
    assert out.status_code == 200
    assert user.get("/profile/", allow_redirects=False).status_code == 302


def test_two_tabs_on_the_sandbox_login_page_both_end_signed_in(sandbox):
    user = ScriptedUser(sandbox)
    tab1 = user.get("/ftauth/login/individu/")
    tab2 = user.get("/ftauth/login/individu/")
    first = user.submit(tab1, form_id="ftauth-sandbox-login", button=("persona", PERSONA))
    first = user.submit(first, form_id="ftauth-sandbox-consent", button=("decision", "accept"))
    assert first.url.endswith("/profile/")
    # Signing in rotated the CSRF token: tab 2's form is stale. No debug page;
    # the sandbox remembers the sign-in and consent, so tab 2 lands signed in too.
    second = user.submit(tab2, form_id="ftauth-sandbox-login", button=("persona", PERSONA))
    assert "CSRF" not in second.text
    assert second.status_code == 200 and second.url.endswith("/profile/")


def choose_and_accept(user: ScriptedUser, page, persona: str):
    """Pick ``persona`` on a sandbox login page and accept the consent screen."""
    page = user.submit(page, form_id="ftauth-sandbox-login", button=("persona", persona))
    return user.submit(page, form_id="ftauth-sandbox-consent", button=("decision", "accept"))


def test_two_tabs_choosing_two_personas_each_sign_in_as_their_own(sandbox):
    """Tab 1 signs in as Camille; tab 2, shown before, chooses Karim: it must not come
    back signed in as Camille without a word."""
    user = ScriptedUser(sandbox)
    tab1 = user.get("/ftauth/login/individu/")
    tab2 = user.get("/ftauth/login/individu/")
    first = choose_and_accept(user, tab1, PERSONA)
    assert first.url.endswith("/profile/") and "Camille Martin" in first.text
    karim = "sandbox-individu-karim"
    second = user.submit(tab2, form_id="ftauth-sandbox-login", button=("persona", karim))
    # Said plainly, on the identity server's page, with a fresh form: nothing issued.
    assert second.status_code == 403 and "/ftauth/callback/" not in second.url
    notice = html.unescape(second.text.split('id="ftauth-sandbox-stale">')[1].split("</p>")[0])
    assert "un autre onglet a ouvert une session au nom de" in notice and "Camille" in notice
    # Chosen again from the fresh form: the consent page is Karim's, and so is the identity.
    consent = user.submit(second, form_id="ftauth-sandbox-login", button=("persona", karim))
    assert "Karim" in consent.text and "Camille" not in consent.text
    back = user.submit(consent, form_id="ftauth-sandbox-consent", button=("decision", "accept"))
    # Camille is signed in on the site: linking Karim's identity asks first (link-confirm).
    assert 'data-ftauth-page="link-confirm"' in back.text
    assert "Karim" in back.text.split('data-ftauth="identity">')[1].split("</strong>")[0]


def test_a_stale_consent_form_never_consents_for_another_sign_in(sandbox):
    user = ScriptedUser(sandbox)
    tab1 = user.get("/ftauth/login/individu/")
    tab2 = user.get("/ftauth/login/individu/")
    # Tab 2 reaches Karim's consent page; tab 1 then signs in as Camille.
    karims_consent = user.submit(
        tab2, form_id="ftauth-sandbox-login", button=("persona", "sandbox-individu-karim")
    )
    choose_and_accept(user, tab1, PERSONA)
    answer = user.submit(
        karims_consent, form_id="ftauth-sandbox-consent", button=("decision", "accept")
    )
    assert answer.status_code == 403 and 'id="ftauth-sandbox-stale"' in answer.text
    assert "/ftauth/callback/" not in answer.url


def test_consent_withdrawn_page_offers_the_button_of_the_realm_concerned(sandbox, client):
    session = client.session
    session[ENDED_REALM_KEY] = "employeur"
    session.save()
    text = client.get("/ftauth/consent-withdrawn/").content.decode()
    assert 'data-ftauth-realm="employeur"' in text and "espace recruteur" in text
    assert 'data-ftauth-realm="individu"' not in text
    assert "(employeur)" not in text and "Se reconnecter (" not in text
    # Unknown which realm (a bookmark): every enabled realm, each by its name.
    text = Client().get("/ftauth/consent-withdrawn/").content.decode()
    assert text.count("data-ftauth-realm=") == 3 and "Espace candidat" in text


def test_account_page_has_a_way_back_and_human_realm_names(sandbox):
    user = ScriptedUser(sandbox)
    user.sign_in("individu", persona=PERSONA)
    page = user.get("/ftauth/account/")
    assert 'href="/"' in page.text and "Retour au site" in page.text
    assert "Espace candidat" in page.text and "Délier mon espace candidat" in page.text


def test_after_a_real_withdrawal_the_page_offers_that_realm_only(sandbox, settings):
    from ftauth.sandbox.consents import withdraw_consent

    user = ScriptedUser(sandbox)
    user.sign_in("employeur", persona="sandbox-employeur-sophie")
    withdraw_consent("sandbox-employeur-sophie", settings.FTAUTH["CLIENT_ID"])
    settings.FTAUTH = {**settings.FTAUTH, "CONSENT_CHECK_INTERVAL": 0}
    page = user.get("/ftauth/account/")
    assert page.url.endswith("/ftauth/consent-withdrawn/")
    assert 'data-ftauth-realm="employeur"' in page.text
    assert 'data-ftauth-realm="individu"' not in page.text


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_sandbox_login_text_on_the_persona_buttons_meets_wcag_aa():
    from pathlib import Path

    templates = Path(__file__).resolve().parent.parent / "ftauth/sandbox/templates/ftauth_sandbox"
    css = (templates / "base.html").read_text()
    button_bg = re.search(r"\bbutton \{[^}]*background: (#[0-9a-f]{6})", css)[1]
    sub = re.search(r"\.persona__sub \{ color: (#[0-9a-f]{6})", css)[1]
    short = re.search(r"\.muted \{ color: #([0-9a-f]{3});", css)[1]
    muted = "#" + "".join(c * 2 for c in short)
    assert contrast(sub, button_bg) >= 4.5
    assert contrast(muted, "#ffffff") >= 4.5
    assert contrast("#555555", button_bg) < 4.5  # why .muted must stay off the buttons
    for name in ("login.html", "consents_login.html"):
        for button in re.findall(r"<button.*?</button>", (templates / name).read_text(), re.S):
            assert "muted" not in button, name


def test_large_button_is_styled_and_base_template_keeps_its_blocks():
    from pathlib import Path

    from django.template import Context, Template

    ftauth_dir = Path(__file__).resolve().parent.parent / "ftauth"
    assert ".ftauth-button.large {" in (ftauth_dir / "static/ftauth/ftauth.css").read_text()
    html = Template('{% load ftauth %}{% ftauth_button "individu" css_class="large" %}').render(
        Context()
    )
    assert 'class="ftauth-button ftauth-button--individu large"' in html
    base = (ftauth_dir / "templates/ftauth/base.html").read_text()
    for block in ("title", "extra_head", "content"):
        assert f"{{% block {block} %}}" in base


def test_demo_profile_shows_the_persons_name_and_home_the_right_offers_text(sandbox):
    user = ScriptedUser(sandbox)
    home = user.get("/")
    assert "Sans connexion" in home.text
    page = user.sign_in("individu", persona=PERSONA, next_url="/profile/")
    assert "Session ouverte au nom de Camille Martin." in page.text
    assert "Compte du site" not in page.text
    home = user.get("/")
    assert "Sans connexion" not in home.text and "propre jeton" in home.text


def test_the_documented_example_search_finds_offers(sandbox):
    from pathlib import Path

    install = (Path(__file__).resolve().parent.parent / "docs/install.md").read_text()
    words = re.search(r'params=\{"motsCles": "([^"]+)"\}', install)[1]
    page = ScriptedUser(sandbox).get(f"/offres/?motsCles={words}")
    assert page.status_code == 200 and "data-offer-id=" in page.text
