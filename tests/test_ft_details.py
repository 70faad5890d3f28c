"""France Travail details: former pole-emploi.fr hosts, application_<client_id>,
client authentication per realm, and the sandbox's site-relative URLs."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, unquote_plus, urlsplit

import pytest
from django.core import checks as django_checks

from ftauth.checks import check_former_servers, check_sandbox
from ftauth.conf import get_settings, load_settings, serving_origin
from ftauth.core.authorize import build_authorization_request
from ftauth.core.errors import ConfigurationError
from ftauth.core.realms import (
    ENTREPRISE_SERVER,
    build_realm,
    is_france_travail_server,
)
from ftauth.core.tokens import basic_authorization
from ftauth.models import LinkedAccount
from ftauth.sandbox.scripted import ScriptedUser
from tests.conftest import sandbox_ftauth_settings


def test_former_pole_emploi_servers_are_known_as_france_travail():
    assert is_france_travail_server("https://authentification-candidat.pole-emploi.fr")
    assert is_france_travail_server("https://entreprise.pole-emploi.fr/")
    assert is_france_travail_server(ENTREPRISE_SERVER)
    assert not is_france_travail_server("https://entreprise.example.fr")
    realm = build_realm("employeur", {"server": "https://entreprise.pole-emploi.fr"}, "x")
    assert realm.current_server == ENTREPRISE_SERVER
    assert realm.token_url.startswith("https://entreprise.pole-emploi.fr/connexion/")


def test_former_server_name_is_a_check_warning_naming_the_new_one(settings):
    settings.FTAUTH = {
        **settings.FTAUTH,
        "REALMS": {"individu": {"server": "https://authentification-candidat.pole-emploi.fr"}},
    }
    [warning] = check_former_servers()
    assert warning.id == "ftauth.W032" and warning.level == django_checks.WARNING
    assert "https://authentification-candidat.francetravail.fr" in warning.hint


def test_application_scope_is_added_only_when_asked():
    plain = build_realm("individu", {}, "x")
    asked = build_realm("individu", {"application_scope": True}, "x")
    assert "application_app-1" not in plain.scopes_for("app-1")
    assert asked.scopes_for("app-1")[-1] == "application_app-1"
    request = build_authorization_request(asked, client_id="app-1", redirect_uri="https://s/cb")
    scope = parse_qs(urlsplit(request.url).query)["scope"][0].split()
    assert scope == [*asked.scopes, "application_app-1"]


def test_client_authentication_method_defaults_to_post_and_refuses_others():
    assert build_realm("individu", {}, "x").token_endpoint_auth_method == "client_secret_post"
    with pytest.raises(ConfigurationError, match="token_endpoint_auth_method"):
        build_realm("individu", {"token_endpoint_auth_method": "private_key_jwt"}, "x")


def test_basic_header_form_encodes_id_and_secret_first():
    # RFC 6749 2.3.1: a ':' in the secret must not split the pair.
    header = basic_authorization("app id", "s:e%cret")
    decoded = base64.b64decode(header.removeprefix("Basic ")).decode()
    client_id, secret = decoded.split(":")
    assert unquote_plus(client_id) == "app id" and unquote_plus(secret) == "s:e%cret"


def _basic_client(live: str, method: str) -> dict:
    return {
        "CLIENTS": [
            {
                "client_id": "ftauth-tests",
                "client_secret": "tests-client-secret",
                "redirect_uris": [f"{live}/ftauth/callback/individu/"],
                "token_endpoint_auth_method": method,
            }
        ]
    }


@pytest.mark.django_db(transaction=True)
def test_realm_set_to_client_secret_basic_signs_in_with_a_server_wanting_basic(sandbox, settings):
    settings.FTAUTH_SANDBOX = _basic_client(sandbox, "client_secret_basic")
    conf = sandbox_ftauth_settings(sandbox)
    conf["REALMS"]["individu"]["token_endpoint_auth_method"] = "client_secret_basic"
    settings.FTAUTH = conf
    page = ScriptedUser(sandbox).sign_in("individu", persona="sandbox-individu-camille")
    assert page.url.endswith("/profile/"), page.text[:300]
    assert LinkedAccount.objects.filter(realm="individu").exists()


@pytest.mark.django_db(transaction=True)
def test_default_post_is_refused_by_a_server_wanting_basic(sandbox, settings):
    settings.FTAUTH_SANDBOX = _basic_client(sandbox, "client_secret_basic")
    page = ScriptedUser(sandbox).sign_in("individu", persona="sandbox-individu-camille")
    assert page.status_code == 503  # invalid_client: the site's credentials, not the user's
    assert not LinkedAccount.objects.exists()


def test_sandbox_servers_default_to_site_paths_completed_by_the_origin(settings):
    settings.FTAUTH = {
        "CLIENT_ID": "c",
        "CLIENT_SECRET": "s",
        "SANDBOX": True,
        "REALMS": {"individu": {}, "employeur": {}},
    }
    assert get_settings().realm("individu").server == "/sandbox/authentification-candidat"
    with serving_origin("http://localhost:8001"):
        conf = get_settings()
        assert conf.realm("individu").authorize_url == (
            "http://localhost:8001/sandbox/authentification-candidat/connexion/oauth2/authorize"
        )
        assert conf.realm("employeur").server == "http://localhost:8001/sandbox/entreprise"
        assert conf.api_url == "http://localhost:8001/sandbox/api"
    # Without SANDBOX, a path is not a server: France Travail's defaults stand.
    off = load_settings({"REALMS": {"individu": {}}}, "http://localhost:8001")
    assert off.realm("individu").server == "https://authentification-candidat.francetravail.fr"


def test_sandbox_on_without_the_sandbox_app_is_reported(settings):
    settings.INSTALLED_APPS = [a for a in settings.INSTALLED_APPS if a != "ftauth.sandbox"]
    assert "ftauth.E030" in {e.id for e in check_sandbox()}
    settings.FTAUTH = {**settings.FTAUTH, "SANDBOX": False}
    assert "ftauth.E030" not in {e.id for e in check_sandbox()}


def test_site_relative_sandbox_without_consent_middleware_is_reported(settings):
    settings.FTAUTH = {**settings.FTAUTH, "REALMS": {"individu": {}}, "API_URL": None}
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "ConsentMiddleware" not in m]
    assert "ftauth.E031" in {e.id for e in check_sandbox()}


@pytest.mark.django_db(transaction=True)
def test_site_relative_sandbox_signs_in_on_the_live_servers_address(live_server, settings):
    from django.core.cache import caches

    caches["default"].clear()
    settings.FTAUTH = {**settings.FTAUTH, "REALMS": {"individu": {}}, "API_URL": None}
    user = ScriptedUser(live_server.url)
    start = user.get("/ftauth/login/individu/", allow_redirects=False)
    assert start.headers["Location"].startswith(
        f"{live_server.url}/sandbox/authentification-candidat/connexion/oauth2/authorize?"
    )
    page = user.sign_in("individu", persona="sandbox-individu-camille")
    assert page.url == f"{live_server.url}/profile/", page.text[:300]
