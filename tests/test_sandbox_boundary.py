"""In sandbox mode, outbound URLs never come from the request (issue 14, item 2).

Through real HTTP: the live server (Django's own WSGI server, as runserver) serves
ftauth with the sandbox's default site-relative URLs; a request naming another port
in ``Host`` (``ALLOWED_HOSTS`` never checks ports) or in ``X-Forwarded-Host`` must
not send anything there. The listener on that other port is the fake France Travail,
which records every request it gets.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core.cache import caches

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def relative_sandbox(live_server, settings):
    for cache in caches.all():
        cache.clear()
    settings.FTAUTH = {
        **settings.FTAUTH,
        "API_URL": None,
        "REALMS": {"individu": {}, "employeur": {}, "partenaire": {}},
        "HTTP_RETRIES": 0,
    }
    return live_server.url


@pytest.mark.parametrize("header", ["Host", "X-Forwarded-Host"])
def test_a_forged_host_never_chooses_the_identity_server(relative_sandbox, fakeop_server, header):
    fakeop_server.reset()
    evil = f"127.0.0.1:{fakeop_server.server.server_address[1]}"
    own_port = urlsplit(relative_sandbox).port
    with requests.Session() as browser:
        login = browser.get(
            f"{relative_sandbox}/ftauth/login/individu/",
            headers={header: evil},
            allow_redirects=False,
            timeout=10,
        )
        assert login.status_code == 302
        authorize = urlsplit(login.headers["Location"])
        assert authorize.port == own_port
        assert authorize.path.startswith("/sandbox/authentification-candidat/")
        state = parse_qs(authorize.query)["state"][0]
        # A callback with a code: the token request goes to the sandbox, never to Host.
        callback = browser.get(
            f"{relative_sandbox}/ftauth/callback/individu/",
            params={"code": "forged-code", "state": state},
            headers={header: evil},
            allow_redirects=False,
            timeout=30,
        )
    assert callback.status_code in (400, 503)
    assert fakeop_server.requests == []  # not one request, not one secret, reached it


def test_sandbox_on_with_debug_off_refuses_to_serve(client, settings, fakeop):
    settings.DEBUG = False
    settings.FTAUTH = {**settings.FTAUTH, "SANDBOX_ALLOW_WITHOUT_DEBUG": False}
    response = client.get("/ftauth/login/individu/")
    assert response.status_code == 503
    from ftauth.conf import get_http
    from ftauth.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="SANDBOX"):
        get_http()
    assert fakeop.requests == []


def test_sandbox_on_with_debug_off_serves_when_allowed_explicitly(client, settings, fakeop):
    settings.DEBUG = False
    response = client.get("/ftauth/login/individu/")
    assert response.status_code == 302
