"""ftauth against an independent, OpenID-certified identity server (oidc-provider).

The server (``tests/interop/idp.mjs``, the npm package pinned in
``tests/interop/package.json``, installed by ``make test`` with ``npm ci``) is set
up like France Travail's /individu realm, with France Travail's paths mapped onto
its own (listed at the top of idp.mjs). These tests drive ftauth only through
its public URLs and the helpers below, so they hold whatever ftauth stores.

Skipped when node or the npm packages are missing, unless ``FTAUTH_REQUIRE_INTEROP``
is set (``make test`` sets it).
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from django.conf import settings as django_settings

from ftauth.sandbox.scripted import parse_html_forms
from tests.servers import free_port

HERE = Path(__file__).resolve().parent
CLIENT_ID = "ftauth-interop"
CLIENT_SECRET = "interop-secret-for-tests-only"
ACCOUNT = "/ftauth/account/"

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def _missing() -> str:
    if shutil.which("node") is None:
        return "node is not installed"
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        return "run `npm ci` in tests/interop (make test does)"
    return ""


if _missing():
    if os.environ.get("FTAUTH_REQUIRE_INTEROP"):
        raise RuntimeError(f"interoperability tests cannot run: {_missing()}")
    pytest.skip(_missing(), allow_module_level=True)


class IdentityServer:
    def __init__(
        self,
        rp_url: str,
        log: Path,
        *,
        script: str = "idp.mjs",
        issuer_path: str = "/connexion/oauth2/realms/root/realms/individu",
    ) -> None:
        self.port = free_port()
        self.url = f"http://localhost:{self.port}"
        self.issuer = f"{self.url}{issuer_path}"
        self.log = log
        env = {
            **os.environ,
            "PORT": str(self.port),
            "RP_URL": rp_url,
            "CLIENT_ID": CLIENT_ID,
            "CLIENT_SECRET": CLIENT_SECRET,
        }
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                ["node", str(HERE / script)], cwd=HERE, env=env, stdout=out, stderr=out
            )
        discovery = f"{self.issuer}/.well-known/openid-configuration"
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(discovery, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"oidc-provider did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)

    def requests_to(self, path: str) -> int:
        return sum(1 for line in self.log.read_text().splitlines() if line.endswith(f" {path}"))

    def backchannel_deliveries(self) -> int:
        return self.log.read_text().count("backchannel.success")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture
def idp(live_server, settings, tmp_path):
    from django.core.cache import caches

    server = IdentityServer(live_server.url, tmp_path / "oidc-provider.log")
    for cache in caches.all():
        cache.clear()  # no JWKS or discovery of another server
    conf = copy.deepcopy(django_settings.FTAUTH)
    conf.update(
        CLIENT_ID=CLIENT_ID,
        CLIENT_SECRET=CLIENT_SECRET,
        API_URL=server.url,  # its userinfo is mapped where France Travail's API has it
        REALMS={"individu": {"server": server.url}},
        SANDBOX=False,
    )
    settings.FTAUTH = conf
    yield server
    server.stop()


class Browser:
    """A browser without JavaScript: one cookie jar, redirects followed by hand."""

    def __init__(self, site: str, idp: IdentityServer) -> None:
        self.site = site
        self.idp = idp
        self.http = requests.Session()
        self.http.trust_env = False

    def get(self, url: str) -> requests.Response:
        return self.http.get(urljoin(self.site + "/", url), allow_redirects=False, timeout=15)

    def follow(self, response: requests.Response, *, stop_at: str = "") -> requests.Response:
        """Follow redirects and post oidc-provider's login/consent/logout forms."""
        for _ in range(20):
            if response.is_redirect:
                location = urljoin(response.url, response.headers["Location"])
                if stop_at and stop_at in location:
                    return response
                response = self.http.get(location, allow_redirects=False, timeout=15)
                continue
            on_idp = response.url.startswith(self.idp.url)
            forms = parse_html_forms(response.text) if on_idp and response.ok else []
            form = next((f for f in forms if f.method == "post"), None)
            if form is None:
                return response
            data = dict(form.fields)
            if "login" in data:  # the development login: any login, any password
                data.update(login="camille", password="interop")
            if form.action.endswith("/session/end/confirm"):
                # "Yes, sign me out" (a button outside the form, form= attribute):
                # the whole session ends, and every client hears it on the back channel.
                data["logout"] = "yes"
            response = self.http.post(
                urljoin(response.url, form.action), data=data, allow_redirects=False, timeout=15
            )
        raise AssertionError(f"too many steps (last: {response.url})")

    def sign_in(self) -> requests.Response:
        return self.follow(self.get(f"/ftauth/login/individu/?next={ACCOUNT}"))

    def signed_in(self) -> bool:
        return self.get(ACCOUNT).status_code == 200


# Where these tests look inside ftauth (everything else is public URLs): the linked
# account, and a user-token API call through ftauth.api.
def linked_account():
    from ftauth.models import LinkedAccount

    return LinkedAccount.objects.get(realm="individu")


def user_api_call(account):
    """Call the userinfo API with the user's consented token (ftauth.api.for_user)."""
    from ftauth import api

    return api.for_user(account.user, "individu").get("peconnect-individu/v1/userinfo")


def test_signs_in_with_pkce_client_secret_post_and_rs256(idp, live_server):
    browser = Browser(live_server.url, idp)
    page = browser.sign_in()
    assert page.status_code == 200 and page.url.endswith(ACCOUNT), page.text[:500]
    account = linked_account()
    assert account.sub == "camille"
    # The token endpoint through France Travail's path; the JWKS where discovery says.
    assert idp.requests_to("/connexion/oauth2/access_token") == 1
    assert idp.requests_to(f"{urlsplit(idp.issuer).path}/jwks") == 1
    assert idp.requests_to("/partenaire/peconnect-individu/v1/userinfo") == 1


def test_refreshes_the_access_token_with_the_refresh_token(idp, live_server, settings):
    browser = Browser(live_server.url, idp)
    assert browser.sign_in().url.endswith(ACCOUNT)
    account = linked_account()
    # REFRESH_MARGIN beyond the access token's lifetime: every use refreshes first.
    settings.FTAUTH = {**settings.FTAUTH, "REFRESH_MARGIN": 100_000}
    assert user_api_call(account)["sub"] == "camille"
    assert idp.requests_to("/connexion/oauth2/access_token") == 2  # code, then refresh
    assert user_api_call(account)["sub"] == "camille"  # the rotated refresh token works
    assert idp.requests_to("/connexion/oauth2/access_token") == 3


def test_signs_out_through_end_session_and_back(idp, live_server):
    browser = Browser(live_server.url, idp)
    page = browser.sign_in()
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
    assert location.startswith(f"{idp.url}/compte/deconnexion?")
    assert "id_token_hint" in parse_qs(urlsplit(location).query)
    back = browser.follow(response)
    assert back.status_code == 200 and back.url == f"{browser.site}/", back.url
    assert not browser.signed_in()


def test_back_channel_logout_from_the_identity_server_ends_the_session(idp, live_server):
    browser = Browser(live_server.url, idp)
    assert browser.sign_in().url.endswith(ACCOUNT)
    assert browser.signed_in()
    # The user signs out on the identity server itself (another tab): it sends
    # ftauth a logout token on the back channel.
    ended = browser.follow(browser.http.get(f"{idp.issuer}/session/end", timeout=15))
    assert ended.status_code == 200
    assert idp.backchannel_deliveries() == 1
    assert not browser.signed_in()
