"""The demo site as ``make demo`` serves it: a real ``runserver`` process, its own
SQLite file, its environment (DESIGN.md's outside contract), driven from outside."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from ftauth.sandbox.scripted import ScriptedUser

ROOT = Path(__file__).resolve().parent.parent
PERSONAS = {
    "individu": "sandbox-individu-camille",
    "employeur": "sandbox-employeur-sophie",
    "partenaire": "sandbox-partenaire-nadia",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DemoServer:
    def __init__(self, tmp: Path, host: str = "127.0.0.1", **env: str) -> None:
        self.port = free_port()
        self.log: str | None = None
        self.url = f"http://{host}:{self.port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("FT_", "FTAUTH_"))},
            "DJANGO_SETTINGS_MODULE": "demo_site.settings",
            "DATABASE_URL": f"sqlite:///{tmp / f'demo-{self.port}.sqlite3'}",
            "CACHE_URL": "locmemcache://",
            "DEBUG": "true",
            **env,
        }
        manage = [sys.executable, "manage.py"]
        subprocess.run(
            [*manage, "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=self.env, check=True
        )
        self.process = subprocess.Popen(
            [*manage, "runserver", "--noreload", f"127.0.0.1:{self.port}"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(self.url + "/", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.2)
        self.stop()
        raise AssertionError("the demo server did not start")

    def stop(self) -> str:
        """Stop the server (once) and return its log (stderr)."""
        if self.log is None:
            self.process.terminate()
            try:
                _out, err = self.process.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                _out, err = self.process.communicate()
            self.log = (err or b"").decode(errors="replace")
        return self.log


@pytest.fixture
def demo(tmp_path):
    server = DemoServer(tmp_path)
    yield server
    server.stop()


def test_home_has_one_button_per_realm(demo):
    page = requests.get(demo.url + "/", timeout=5)
    assert page.status_code == 200
    for realm in PERSONAS:
        assert f"/ftauth/login/{realm}/" in page.text


def test_profile_redirects_to_home_when_signed_out(demo):
    page = requests.get(demo.url + "/profile/", allow_redirects=False, timeout=5)
    assert page.status_code == 302 and page.headers["Location"] == "/"


@pytest.mark.parametrize("realm", sorted(PERSONAS))
def test_scripted_client_signs_in_on_each_realm(demo, realm):
    user = ScriptedUser(demo.url)
    page = user.sign_in(realm, persona=PERSONAS[realm], next_url="/profile/")
    assert page.status_code == 200 and page.url == demo.url + "/profile/"
    assert realm in page.text and PERSONAS[realm] in page.text


def test_signs_in_through_another_identity_server_on_loopback(tmp_path, demo):
    """FT_INDIVIDU_URL pointing at another server (here: another demo's sandbox).

    The site is reached as ``localhost``, the identity server as ``127.0.0.1``:
    cookies ignore ports, and two hosts keep the two session cookies apart.
    """
    other = DemoServer(
        tmp_path,
        host="localhost",
        FT_INDIVIDU_URL=f"{demo.url}/sandbox/authentification-candidat",
        FT_API_URL=f"{demo.url}/sandbox/api",  # userinfo is an API of the same provider
    )
    try:
        user = ScriptedUser(other.url)
        page = user.sign_in("individu", persona=PERSONAS["individu"], next_url="/profile/")
        assert page.status_code == 200 and page.url == other.url + "/profile/"
        assert PERSONAS["individu"] in page.text
        # The persona was chosen on the first server's login page, not the second's.
        assert any(demo.url in r.url for r in page.history)
    finally:
        other.stop()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_sandbox_follows_the_address_the_demo_is_served_on(demo, host):
    """No FT_SANDBOX_URL: on a random port, under either name, the button leads there."""
    origin = f"http://{host}:{demo.port}"
    start = requests.get(f"{origin}/ftauth/login/individu/", allow_redirects=False, timeout=5)
    assert start.status_code == 302
    assert start.headers["Location"].startswith(f"{origin}/sandbox/authentification-candidat/")
    user = ScriptedUser(origin)
    page = user.sign_in("individu", persona=PERSONAS["individu"], next_url="/profile/")
    assert page.url == f"{origin}/profile/" and PERSONAS["individu"] in page.text


def test_request_log_of_a_sign_in_and_sign_out_holds_no_code_state_or_id_token(demo):
    user = ScriptedUser(demo.url)
    page = user.sign_in("individu", persona=PERSONAS["individu"], next_url="/profile/")
    callback = next(r for r in page.history if "/ftauth/callback/" in r.url)
    query = parse_qs(urlsplit(callback.url).query)
    code, state = query["code"][0], query["state"][0]
    logout = user.http.post(
        demo.url + "/ftauth/logout/",
        data={"csrfmiddlewaretoken": user.http.cookies["csrftoken"]},
        headers={"Referer": demo.url + "/profile/"},
        allow_redirects=False,
        timeout=5,
    )
    end_session = logout.headers["Location"]
    hint = parse_qs(urlsplit(end_session).query)["id_token_hint"][0]
    user.get(end_session)
    log = demo.stop()
    assert "/ftauth/callback/individu/?" in log  # the lines are there...
    assert "/compte/deconnexion?" in log
    for secret in (code, state, hint):
        assert secret not in log  # ...without their secrets
    assert "code=[redacted]" in log and "id_token_hint=[redacted]" in log
