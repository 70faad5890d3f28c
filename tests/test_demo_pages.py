"""The demo site's pages (demo_site/views.py, templates/): what the outside checks rely on."""

from __future__ import annotations

import copy
import re
import socket
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.urls import reverse
from django.utils import timezone

from demo_site.views import USER_DATA_PATHS, api_error_message
from ftauth.core.errors import ApiError, ConsentWithdrawn, QuotaExceeded, TransportError
from tests.lifecycle import ACCESS, REFRESH, make_account, store_tokens


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._form: dict | None = None
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "form":
            self._form = {"attrs": attrs, "inputs": [], "buttons": []}
            self.forms.append(self._form)
        elif tag in ("input", "button") and self._form is not None:
            self._form["inputs" if tag == "input" else "buttons"].append(attrs)

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None


def parse(response) -> _Page:
    page = _Page()
    page.feed(response.content.decode() if hasattr(response, "content") else response.text)
    return page


def sign_in_buttons(response) -> list[dict]:
    return [attrs for tag, attrs in parse(response).tags if "data-ftauth-realm" in attrs]


@pytest.fixture
def closed_port_api(settings):
    """FTAUTH's API URL on a loopback port where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conf = copy.deepcopy(settings.FTAUTH)
    conf["API_URL"] = f"http://127.0.0.1:{port}/sandbox/api"
    conf["API_MAX_RETRIES"] = 0
    conf["HTTP_RETRIES"] = 0
    settings.FTAUTH = conf
    return port


@pytest.fixture
def signed_in(client, db):
    account = make_account("individu", sub="sub-camille-0001")
    account.claims = {"given_name": "Camille", "family_name": "Martin", "email": "c@example.org"}
    account.save()
    client.force_login(account.user, backend="ftauth.backends.FranceTravailBackend")
    return account


def bind_session(client, grant) -> None:
    """Make ``client``'s session one that signed in with ``grant`` (as the callback does)."""
    import time

    from ftauth.internal.sessions import SESSION_KEY
    from ftauth.models import AccountSession

    AccountSession.objects.create(account=grant.account, grant=grant, sid=f"sid-{grant.pk}")
    session = client.session
    session[SESSION_KEY] = {
        "account": grant.account_id,
        "realm": grant.account.realm,
        "sid": f"sid-{grant.pk}",
        "grant": grant.pk,
        "checked_at": time.time(),
        "key": "",
    }
    session.save()


# Home


@pytest.mark.django_db
def test_home_has_one_sign_in_button_per_enabled_realm(client):
    buttons = sign_in_buttons(client.get("/"))
    assert [b["data-ftauth-realm"] for b in buttons] == ["individu", "employeur", "partenaire"]
    assert [b["href"] for b in buttons] == [
        "/ftauth/login/individu/",
        "/ftauth/login/employeur/",
        "/ftauth/login/partenaire/",
    ]


@pytest.mark.django_db
def test_home_leaves_out_disabled_realms(client, settings):
    conf = copy.deepcopy(settings.FTAUTH)
    conf["REALMS"] = {"employeur": conf["REALMS"]["employeur"]}
    settings.FTAUTH = conf
    buttons = sign_in_buttons(client.get("/"))
    assert [b["data-ftauth-realm"] for b in buttons] == ["employeur"]


@pytest.mark.django_db
def test_home_is_in_english_for_an_english_browser(client):
    response = client.get("/", headers={"accept-language": "en"})
    assert "Sign in with France Travail" in response.content.decode()
    assert 'lang="en"' in response.content.decode()


@pytest.mark.django_db
def test_language_switch_posts_to_set_language_with_csrf(client):
    client = type(client)(enforce_csrf_checks=True)
    page = parse(client.get("/offres/"))
    (form,) = [f for f in page.forms if f["attrs"]["action"] == reverse("set_language")]
    assert form["attrs"]["method"] == "post"
    names = {i["name"]: i.get("value") for i in form["inputs"]}
    assert names["next"] == "/offres/"
    assert "csrfmiddlewaretoken" in names
    assert sorted(b["value"] for b in form["buttons"]) == ["en", "fr"]


# Profile


def test_profile_sends_a_signed_out_visitor_home(client, db):
    response = client.get("/profile/")
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_profile_shows_realm_sub_claims_and_token_status(client, signed_in, closed_port_api):
    response = client.get("/profile/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<dd data-field="realm">individu</dd>' in html
    assert '<dd data-field="sub"><code>sub-camille-0001</code></dd>' in html
    assert "Camille" in html and "c@example.org" in html
    assert 'data-status="none"' in html


def test_profile_has_unlink_and_one_sign_out_form_both_csrf_protected(client, signed_in):
    forms = {f["attrs"]["action"]: f for f in parse(client.get("/profile/")).forms}
    for action in ("/ftauth/account/unlink/individu/", "/ftauth/logout/"):
        assert forms[action]["attrs"]["method"] == "post"
        assert "csrfmiddlewaretoken" in {i["name"] for i in forms[action]["inputs"]}
    page = parse(client.get("/profile/"))
    sign_outs = [f for f in page.forms if f["attrs"]["action"] == "/ftauth/logout/"]
    assert len(sign_outs) == 1  # a browser test clicks "Se déconnecter" by its name


def test_profile_says_france_travail_is_unreachable_instead_of_failing(
    client, signed_in, closed_port_api
):
    bind_session(client, store_tokens(signed_in))
    response = client.get("/profile/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "France Travail ne répond pas pour le moment" in html
    assert 'data-status="valid"' in html
    assert ACCESS not in html and REFRESH not in html


# Offres


def test_offres_shows_the_search_form_without_searching(client, db, closed_port_api):
    response = client.get("/offres/")
    assert response.status_code == 200
    (form,) = [f for f in parse(response).forms if f["attrs"]["action"] == "/offres/"]
    assert form["attrs"]["method"] == "get"
    assert [i["name"] for i in form["inputs"]] == ["motsCles"]
    assert "ne répond pas" not in response.content.decode()


def test_offres_says_france_travail_is_unreachable_instead_of_failing(client, db, closed_port_api):
    response = client.get("/offres/", {"motsCles": "boulanger"})
    assert response.status_code == 200
    assert "France Travail ne répond pas pour le moment" in response.content.decode()


def test_offres_refuses_an_overlong_query_without_calling_france_travail(
    client, db, closed_port_api
):
    response = client.get("/offres/", {"motsCles": "x" * 101})
    assert response.status_code == 200
    assert "ne répond pas" not in response.content.decode()


# Messages


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (QuotaExceeded(retry_after=2.2), "réessayez dans 3 s"),
        (QuotaExceeded(retry_after=None), "réessayez dans un instant"),
        (ConsentWithdrawn("gone"), "consentement a été retiré"),
        (TransportError("timeout"), "ne répond pas"),
        (ApiError(503, {"x": 1}), "erreur (503)"),
    ],
)
def test_api_errors_become_a_message_for_the_visitor(error, text):
    assert text in api_error_message(error)


# Against the sandbox, over real HTTP (live server): what a visitor of the demo sees.


@pytest.fixture
def visitor(sandbox):
    """A browser without JavaScript; the cache (tokens, quotas) starts and ends empty."""
    from django.core.cache import cache

    from ftauth.sandbox.scripted import ScriptedUser

    cache.clear()
    user = ScriptedUser(sandbox)
    yield user
    user.http.close()
    cache.clear()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("realm", "persona", "shown"),
    [
        ("individu", "sandbox-individu-camille", "Camille"),
        ("employeur", "sandbox-employeur-sophie", "Sophie"),
        ("partenaire", "sandbox-partenaire-nadia", "Nadia"),
    ],
)
def test_profile_after_signing_in_shows_identity_and_data_read_with_the_token(
    sandbox, visitor, realm, persona, shown
):
    response = visitor.sign_in(realm, persona=persona)
    assert response.status_code == 200
    assert response.url == f"{sandbox}/profile/"
    html = response.text
    assert f'<dd data-field="realm">{realm}</dd>' in html
    assert f'<dd data-field="sub"><code>{persona}</code></dd>' in html
    assert 'data-status="valid"' in html
    assert shown in html
    if realm in USER_DATA_PATHS:
        assert f"<code>{USER_DATA_PATHS[realm]}</code>" in html  # the API answered
    assert "notice notice--error" not in html


@pytest.mark.django_db(transaction=True)
def test_profile_views_do_not_call_france_travail_each_time(sandbox, visitor, counted_calls):
    """A site that copies the demo must not spend its quota on page views."""
    visitor.sign_in("individu", persona="sandbox-individu-camille")
    signed_in_calls = len(counted_calls)  # the sign-in's userinfo
    for _ in range(3):
        page = visitor.get("/profile/")
        assert "<code>peconnect-individu/v1/userinfo</code>" in page.text
        assert 'data-field="api-data-at"' in page.text  # the page says the data is kept
    assert len(counted_calls) == signed_in_calls


@pytest.fixture
def counted_calls(monkeypatch):
    """The URLs of every API call ftauth makes (the sign-in's userinfo included)."""
    from ftauth.api.client import ApiClient

    calls = []
    real = ApiClient.call

    def counted(self, method, url, api, **kwargs):
        calls.append(url)
        return real(self, method, url, api, **kwargs)

    monkeypatch.setattr(ApiClient, "call", counted)
    return calls


@pytest.mark.django_db(transaction=True)
def test_profile_shows_what_the_sign_in_read_instead_of_asking_again(
    sandbox, visitor, counted_calls
):
    from ftauth.models import LinkedAccount

    page = visitor.sign_in("individu", persona="sandbox-individu-camille")
    assert page.url.endswith("/profile/")
    # The sign-in read userinfo once; the profile right after shows that answer.
    assert len(counted_calls) == 1 and "/peconnect-individu/v1/userinfo" in counted_calls[0]
    data = page.text.partition("<code>peconnect-individu/v1/userinfo</code>")[2]
    assert "<dd>Camille</dd>" in data and 'data-field="api-data-at"' in data
    # Read long ago: the profile asks France Travail (once, then keeps the answer).
    LinkedAccount.objects.filter(sub="sandbox-individu-camille").update(
        claims_at=timezone.now() - timedelta(hours=2)
    )
    for _ in range(2):
        assert "<dd>Camille</dd>" in visitor.get("/profile/").text
    assert len(counted_calls) == 2


@pytest.mark.django_db(transaction=True)
def test_offres_lists_offers_found_with_the_application_token(sandbox, visitor):
    response = visitor.get("/offres/", params={"motsCles": "cuisinier"})
    assert response.status_code == 200
    assert "notice notice--error" not in response.text
    offers = [attrs for tag, attrs in parse(response).tags if "data-offer-id" in attrs]
    assert 0 < len(offers) <= 20  # range=0-19
    assert "Cuisinier / Cuisinière" in response.text


@pytest.mark.django_db(transaction=True)
def test_offres_says_so_when_nothing_matches(sandbox, visitor):
    # France Travail answers 204 with no body when no offer matches.
    response = visitor.get("/offres/", params={"motsCles": "astronaute"})
    assert response.status_code == 200
    assert "Aucune offre ne correspond à cette recherche." in response.text


@pytest.mark.django_db(transaction=True)
def test_offres_over_quota_says_when_to_try_again(sandbox, visitor, settings):
    settings.FTAUTH_SANDBOX = {"QUOTA_PER_SECOND": 0.05}  # one call per 20 s
    conf = copy.deepcopy(settings.FTAUTH)
    conf.update(API_DEFAULT_RATE=1000, API_MAX_RETRIES=0)
    settings.FTAUTH = conf
    first = visitor.get("/offres/", params={"motsCles": "cuisinier"})
    assert "Cuisinier / Cuisinière" in first.text
    second = visitor.get("/offres/", params={"motsCles": "cuisinier"})
    assert second.status_code == 200
    assert re.search(r"réessayez dans \d+ s\.", second.text)


def test_ftauth_pages_use_the_demos_layout(client, db):
    """An error of the sign-in (here an unknown state) is a page of the demo, with its
    header and navigation, not a bare page of its own."""
    response = client.get("/ftauth/callback/individu/", {"state": "unknown", "code": "x"})
    assert response.status_code == 400
    page = parse(response)
    html = response.content.decode()
    assert ("a", {"class": "brand", "href": "/"}) in page.tags  # the demo's header
    assert 'aria-label="Navigation principale"' in html
    assert "<title>Demande de connexion inconnue ou expirée · Démo ftauth</title>" in html
    assert 'class="ftauth-error"' in html and "Recommencez la connexion" in html
    logout = client.get("/ftauth/logout/").content.decode()
    assert 'class="brand"' in logout and 'data-ftauth-page="logout"' in logout


def test_profile_says_when_the_identity_cannot_be_unlinked(client, signed_in):
    html = client.get("/profile/").content.decode()
    assert 'data-field="unlink-refused"' in html and "seul moyen de se connecter" in html
    assert re.search(r'<button type="submit" class="danger" disabled', html)
    user = signed_in.user
    user.set_password("pw-site-own-1")
    user.save()
    client.force_login(user, backend="ftauth.backends.FranceTravailBackend")
    html = client.get("/profile/").content.decode()
    assert 'data-field="unlink-refused"' not in html and " disabled" not in html
