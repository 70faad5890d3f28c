"""Two hosts, one PostgreSQL database, one Redis: what must be shared is shared.

Two gunicorn servers (two "hosts", two workers each) serve the demo site with
DEBUG off, sharing one PostgreSQL database and one Redis (a key prefix of
their own), behind no load balancer: the test plays it, sending each request
to the host it picks with the public ``Host`` of host A, as a balancer would.
The identity server is the sandbox on a third server (``runserver``, its own
SQLite file) reached as ``localhost`` so that its cookies and the hosts' stay
apart; its request log is how the test counts what the hosts asked it.

Runs in the PostgreSQL + Redis runs of ``make test`` (marker ``hosts``);
elsewhere it is skipped unless ``FTAUTH_REQUIRE_HOSTS`` is set.
"""

from __future__ import annotations

import os
import secrets
import uuid
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from cryptography.fernet import Fernet

from ftauth.sandbox.scripted import forms_of, parse_html_forms
from tests.servers import demo_env, free_port, gunicorn, manage, runserver

pytestmark = [pytest.mark.hosts, pytest.mark.timeout(300)]

DATABASE_URL = os.environ.get("DATABASE_URL", "")
CACHE_URL = os.environ.get("CACHE_URL", "")
PERSONA = "sandbox-individu-camille"
OTHER_PERSONA = "sandbox-individu-karim"

if not (DATABASE_URL.startswith("postgres") and CACHE_URL.startswith("rediscache")):
    if os.environ.get("FTAUTH_REQUIRE_HOSTS"):
        raise RuntimeError("the multi-host test needs DATABASE_URL=postgres://, CACHE_URL=redis")
    pytest.skip(
        "needs DATABASE_URL=postgres://... and CACHE_URL=rediscache://...", allow_module_level=True
    )


@pytest.fixture(scope="module")
def shared_database():
    """A database of its own next to the run's (``<name>_hosts``), dropped afterwards."""
    import psycopg

    parts = urlsplit(DATABASE_URL)
    name = f"{parts.path.lstrip('/') or 'ftauth'}_hosts"
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    yield parts._replace(path=f"/{name}").geturl()
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def hosts(shared_database, tmp_path_factory):
    """(identity server, host A, host B, Redis key prefix); every process stopped after."""
    tmp = tmp_path_factory.mktemp("hosts")
    idp_env = demo_env(
        DATABASE_URL=f"sqlite:///{tmp / 'idp.sqlite3'}",
        CACHE_URL="locmemcache://idp",
        FTAUTH_SANDBOX="true",
        DEBUG="true",
        FTAUTH_LOG_LEVEL="WARNING",
    )
    manage(idp_env, "migrate", "--noinput", "-v", "0")
    started = []
    prefix = f"ftauth-hosts-{uuid.uuid4().hex[:12]}"
    try:
        # The sandbox's own address is in its settings: pick the port first.
        port = free_port()
        idp_env["FT_SANDBOX_URL"] = f"http://localhost:{port}"
        idp = runserver(idp_env, tmp / "idp.log", host="localhost", port=port)
        started.append(idp)
        sandbox = f"{idp.url}/sandbox"
        host_env = demo_env(
            DATABASE_URL=shared_database,
            CACHE_URL=f"{CACHE_URL}?key_prefix={prefix}",
            DEBUG="false",
            SECRET_KEY=secrets.token_urlsafe(32),
            ALLOWED_HOSTS="127.0.0.1",
            FTAUTH_SANDBOX="false",
            FT_CLIENT_ID="ftauth-demo",
            FT_CLIENT_SECRET="sandbox-secret-local-only",
            FT_INDIVIDU_URL=f"{sandbox}/authentification-candidat",
            FT_ENTREPRISE_URL=f"{sandbox}/entreprise",
            FT_API_URL=f"{sandbox}/api",
            FTAUTH_TOKEN_KEYS=Fernet.generate_key().decode(),
            # Every request checks its grant: a withdrawal (which France Travail does
            # not announce) is noticed at once rather than one interval later.
            FTAUTH_CONSENT_CHECK_INTERVAL="0",
        )
        manage(host_env, "migrate", "--noinput", "-v", "0")
        host_a = gunicorn(host_env, tmp / "a.log")
        started.append(host_a)
        host_b = gunicorn(host_env, tmp / "b.log")
        started.append(host_b)
        yield idp, host_a, host_b, prefix
    finally:
        for server in reversed(started):
            server.stop()
        _forget(prefix)


def _redis():
    import redis

    return redis.Redis.from_url(CACHE_URL.replace("rediscache://", "redis://", 1))


def _forget(prefix: str) -> None:
    client = _redis()
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()


class Browser:
    """A browser behind a load balancer: the public address is host A's, and each
    request goes to the host the test names (``via``)."""

    def __init__(self, public, hosts_by_name):
        self.public = public
        self.hosts = hosts_by_name
        self.http = requests.Session()
        self.http.trust_env = False

    def _route(self, url, via):
        target = self.hosts[via]
        parts = urlsplit(url)
        if parts.netloc == urlsplit(self.public).netloc:
            return parts._replace(netloc=urlsplit(target).netloc).geturl(), {
                "Host": urlsplit(self.public).netloc
            }
        return url, {}

    def get(self, url, *, via="a", **kwargs):
        url, headers = self._route(urljoin(self.public + "/", url), via)
        return self.http.get(url, headers=headers, allow_redirects=False, timeout=15, **kwargs)

    def post(self, url, data, *, via="a", referer=None):
        url, headers = self._route(url, via)
        if referer:
            headers["Referer"] = referer
        return self.http.post(url, data=data, headers=headers, allow_redirects=False, timeout=15)


def sign_in(browser: Browser, persona: str, *, start: str, finish: str) -> requests.Response:
    """Start at host ``start``, pick ``persona`` on the sandbox, land the callback on
    ``finish``; the callback's answer."""
    response = browser.get("/ftauth/login/individu/?next=/profile/", via=start)
    assert response.status_code == 302, response.text[:500]
    for _ in range(10):
        location = (
            urljoin(response.url, response.headers["Location"]) if response.is_redirect else None
        )
        if location is not None:
            if "/ftauth/callback/" in location:
                return browser.get(location, via=finish)  # the callback's answer
            response = browser.get(location, via=start)
            continue
        forms = {f.id: f for f in parse_html_forms(response.text)}
        if "ftauth-sandbox-login" in forms:
            form = forms["ftauth-sandbox-login"]
            response = browser.post(
                urljoin(response.url, form.action or response.url),
                {**form.fields, "persona": persona},
            )
        elif "ftauth-sandbox-consent" in forms:
            form = forms["ftauth-sandbox-consent"]
            response = browser.post(
                urljoin(response.url, form.action or response.url),
                {**form.fields, "decision": "accept"},
            )
        else:
            return response
    raise AssertionError(f"sign-in did not finish (last: {response.url})")


def withdraw_on_the_sandbox(idp, persona: str) -> None:
    """The user opens « Mes consentements » on the identity server and withdraws."""
    user = requests.Session()
    user.trust_env = False
    page_url = f"{idp.url}/sandbox/authentification-candidat/compte/consentements"
    page = user.get(page_url, timeout=15)
    login = next(f for f in forms_of(page) if any(b[0] == "persona" for b in f.buttons))
    page = user.post(page_url, data={**login.fields, "persona": persona}, timeout=15)
    form = next(f for f in forms_of(page) if ("client_id", "ftauth-demo") in f.buttons)
    data = {**form.fields, "client_id": "ftauth-demo"}
    done = user.post(page_url, data=data, headers={"Referer": page_url}, timeout=15)
    assert done.status_code == 200 and "retire=1" in done.url


def test_sign_in_across_hosts_shared_caches_and_withdrawal(hosts):
    idp, host_a, host_b, prefix = hosts
    routes = {"a": host_a.url, "b": host_b.url}

    # A sign-in started on host A and finished on host B: the pending login
    # (state, nonce, PKCE verifier) is in the shared database session.
    laptop = Browser(host_a.url, routes)
    landed = sign_in(laptop, PERSONA, start="a", finish="b")
    assert landed.status_code == 302 and landed.headers["Location"] == "/profile/"
    for via in ("a", "b", "a", "b"):
        profile = laptop.get("/profile/", via=via)
        assert profile.status_code == 200 and PERSONA in profile.text

    # A second user signs in on host B only, then a third sign-in on A: three
    # sign-ins over four worker processes, one JWKS and one discovery fetch.
    phone = Browser(host_a.url, routes)
    assert sign_in(phone, OTHER_PERSONA, start="b", finish="b").status_code == 302
    tablet = Browser(host_a.url, routes)
    assert sign_in(tablet, PERSONA, start="a", finish="a").status_code == 302
    assert idp.requests_to("/authentification-candidat/connexion/oauth2/connect/jwk_uri") == 1
    assert idp.requests_to("/authentification-candidat/connexion/oauth2/realms/") == 1

    # Application tokens: one for both hosts, however many workers call the API.
    for via in ("a", "b") * 3:
        offers = laptop.get("/offres/?motsCles=python", via=via)
        assert offers.status_code == 200 and "offre" in offers.text.lower()
    assert idp.requests_to("/sandbox/entreprise/connexion/oauth2/access_token") == 1
    assert idp.requests_to("/sandbox/api/partenaire/offresdemploi/v2/offres/search") == 6
    # The quota's schedule lives in the shared Redis: six calls from two hosts
    # took six distinct windows of one shared timeline.
    windows = {
        int(value)
        for key in _redis().scan_iter(f"{prefix}:*ftauth:quota:*:offresdemploi:tick:*")
        if (value := _redis().get(key)) is not None and value.isdigit()
    }
    assert len(windows) >= 6, windows

    # Withdrawal on the identity server: the sessions opened through either host end,
    # and host B is the one that tells the laptop (signed in through A): its check
    # finds the laptop's grant refused, probes the tablet's (refused too), withdraws.
    withdraw_on_the_sandbox(idp, PERSONA)
    for browser in (laptop, tablet):
        response = browser.get("/profile/", via="b")
        assert response.status_code == 302
        assert response.headers["Location"] == "/ftauth/consent-withdrawn/"
        follow = browser.get(response.headers["Location"], via="b")
        assert follow.status_code in {200, 302}
        assert browser.get("/profile/", via="a").status_code == 302
    # The other user's consent is untouched, on both hosts.
    for via in ("a", "b"):
        assert phone.get("/profile/", via=via).status_code == 200
