"""What goes wrong between the first sign-in and a real server (issue 16, "Deploying").

ftauth mounted under another prefix still signs in through the sandbox, which
registers ftauth's callback where the URLconf puts it; ``check`` says so when
the URLconf has none; a production callback on plain http is logged once.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client
from django.urls import resolve

from ftauth.checks import check_sandbox
from ftauth.internal import redirects
from ftauth.models import LinkedAccount
from ftauth.sandbox.models import IssuedToken
from ftauth.sandbox.scripted import ScriptedUser

PERSONA = "sandbox-individu-camille"


# --- ftauth mounted elsewhere ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_project_mounting_ftauth_under_auth_signs_in_through_the_sandbox(sandbox, settings):
    settings.ROOT_URLCONF = "tests.elsewhere_urls"
    user = ScriptedUser(sandbox)
    page = user.sign_in(
        "individu", persona=PERSONA, next_url="/profile/", login_url="/auth/login/individu/"
    )
    assert page.status_code == 200 and page.url == sandbox + "/profile/"
    assert PERSONA in page.text
    assert LinkedAccount.objects.filter(realm="individu", sub=PERSONA).exists()
    # The sandbox sends its logout tokens to ftauth's back-channel view where it is mounted.
    uri = IssuedToken.objects.get(persona_sub=PERSONA).backchannel_logout_uri
    assert uri == sandbox + "/auth/backchannel-logout/individu/"
    assert resolve(urlsplit(uri).path).url_name == "backchannel_logout"


@pytest.mark.django_db(transaction=True)
def test_the_sandbox_registers_only_the_callback_the_urlconf_has(sandbox, settings):
    """The sandbox models a registration: ftauth's callback of the realm, nothing near it."""
    settings.ROOT_URLCONF = "tests.elsewhere_urls"
    browser = requests.Session()
    start = browser.get(sandbox + "/auth/login/individu/", allow_redirects=False, timeout=10)
    authorize, _, query = start.headers["Location"].partition("?")
    params = {k: v[0] for k, v in parse_qs(query).items()}
    assert params["redirect_uri"] == sandbox + "/auth/callback/individu/"
    assert browser.get(authorize, params=params, timeout=10).status_code == 200
    for redirect_uri in (
        sandbox + "/ftauth/callback/individu/",  # the prefix the sandbox used to assume
        sandbox + "/x/auth/callback/individu/",
        sandbox + "/auth/callback/employeur/",
    ):
        wrong = {**params, "redirect_uri": redirect_uri}
        refused = browser.get(authorize, params=wrong, timeout=10)
        assert refused.status_code == 400, redirect_uri
        assert "redirect_uri" in refused.text, refused.text


@pytest.mark.django_db  # Django 6's check looks at the databases too
def test_check_reports_a_sandbox_without_ftauths_urls(settings):
    settings.ROOT_URLCONF = "tests.no_ftauth_urls"
    assert "ftauth.E032" in {e.id for e in check_sandbox()}
    with pytest.raises(SystemCheckError, match=r"ftauth\.E032"):
        call_command("check")


def test_check_accepts_ftauth_under_any_prefix(settings):
    settings.ROOT_URLCONF = "tests.elsewhere_urls"
    assert "ftauth.E032" not in {e.id for e in check_sandbox()}


# --- a callback on plain http in production ---------------------------------------------------


@pytest.fixture
def unreported(monkeypatch):
    """A process that has not said it yet."""
    monkeypatch.setattr(redirects, "_plain_http_reported", False)


def plain_http_warnings(caplog):
    return [r for r in caplog.records if "plain http" in r.getMessage()]


@pytest.mark.django_db
def test_a_plain_http_callback_with_debug_off_is_logged_once(unreported, settings, caplog):
    """Behind a TLS proxy without SECURE_PROXY_SSL_HEADER, Django sees http."""
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["your.site"]
    with caplog.at_level(logging.WARNING, logger="ftauth.signin"):
        for _ in range(3):
            start = Client(HTTP_HOST="your.site").get("/ftauth/login/individu/")
            assert start.status_code == 302  # the sign-in goes on: France Travail decides
    [warning] = plain_http_warnings(caplog)
    assert warning.levelno == logging.WARNING
    assert "http://your.site/ftauth/callback/individu/" in warning.getMessage()
    assert "SECURE_PROXY_SSL_HEADER" in warning.getMessage()


@pytest.mark.django_db
def test_the_proxy_header_set_gives_https_and_no_warning(unreported, settings, caplog):
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["your.site"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    client = Client(HTTP_HOST="your.site", HTTP_X_FORWARDED_PROTO="https")
    with caplog.at_level(logging.WARNING, logger="ftauth.signin"):
        start = client.get("/ftauth/login/individu/")
    query = parse_qs(urlsplit(start["Location"]).query)
    assert query["redirect_uri"] == ["https://your.site/ftauth/callback/individu/"]
    assert not plain_http_warnings(caplog)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("debug", "host"), [(True, "your.site"), (False, "127.0.0.1:8000"), (False, "localhost")]
)
def test_plain_http_in_development_is_not_reported(unreported, settings, caplog, debug, host):
    settings.DEBUG = debug
    with caplog.at_level(logging.WARNING, logger="ftauth.signin"):
        assert Client(HTTP_HOST=host).get("/ftauth/login/individu/").status_code == 302
    assert not plain_http_warnings(caplog)
