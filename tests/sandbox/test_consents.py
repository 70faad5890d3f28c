"""« Mes consentements »: withdrawal revokes at once and notifies the client."""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from ftauth.sandbox.consents import withdraw_consent

from .conftest import CLIENT_ID, CLIENT_SECRET, issuer, jwks_url, server, token_url
from .scripting import CONSENT_FORM, LOGIN_FORM, parse_forms, submit

USERINFO = "sandbox/api/partenaire/peconnect-individu/v1/userinfo"


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        self.server.received.append((self.path, self.headers.get("Content-Type"), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    """A relying party's back-channel logout endpoint on a loopback port."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    httpd.received = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _origin(httpd) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}"


def _userinfo(live: str, token: str) -> requests.Response:
    return requests.get(
        f"{live}/{USERINFO}", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )


def _refresh(live: str, refresh_token: str) -> requests.Response:
    return requests.post(
        token_url(live, "individu"),
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
        timeout=10,
    )


def test_withdrawal_on_the_page_revokes_tokens_and_sends_nothing(flow, sandbox, receiver):
    f = flow("individu", redirect_uri=f"{_origin(receiver)}/ftauth/callback/individu/")
    tokens = f.tokens()
    assert _userinfo(sandbox, tokens["access_token"]).status_code == 200

    # The persona is signed in on the sandbox (same browser): the page lists the app.
    page_url = f"{server(sandbox, 'individu')}/compte/consentements"
    page = f.session.get(page_url, timeout=5)
    assert page.status_code == 200
    assert "SANDBOX" in page.text
    forms = parse_forms(page.text)
    withdraw = next(form for form in forms.values() if ("client_id", CLIENT_ID) in form.buttons)
    done = submit(f.session, page, withdraw, client_id=CLIENT_ID)
    assert done.status_code == 302
    after = f.session.get(page_url, timeout=5)
    assert 'id="ftauth-sandbox-no-consent"' in after.text

    # Revoked at once: 401 on the API, invalid_grant on refresh.
    denied = _userinfo(sandbox, tokens["access_token"])
    assert denied.status_code == 401
    assert 'error="invalid_token"' in denied.headers["WWW-Authenticate"]
    assert _refresh(sandbox, tokens["refresh_token"]).json()["error"] == "invalid_grant"

    # As France Travail documents: nothing is pushed to the application.
    assert receiver.received == []


def test_end_session_sends_a_back_channel_logout_token_when_asked(
    flow, sandbox, receiver, settings
):
    settings.FTAUTH_SANDBOX = {"BACKCHANNEL_ON_END_SESSION": True}
    f = flow("individu", redirect_uri=f"{_origin(receiver)}/ftauth/callback/individu/")
    tokens = f.tokens()
    keys = KeySet.import_key_set(requests.get(jwks_url(sandbox, "individu"), timeout=5).json())
    sid = jwt.decode(tokens["id_token"], keys).claims["sid"]
    f.session.get(
        f"{server(sandbox, 'individu')}/compte/deconnexion",
        params={"id_token_hint": tokens["id_token"]},
        timeout=10,
    )
    # The back-channel logout token (OpenID Connect Back-Channel Logout 1.0, 2.4).
    assert len(receiver.received) == 1
    path, content_type, body = receiver.received[0]
    assert path == "/ftauth/backchannel-logout/individu/"
    assert content_type == "application/x-www-form-urlencoded"
    logout_token = parse_qs(body)["logout_token"][0]
    decoded = jwt.decode(logout_token, keys, algorithms=["RS256"])
    claims = decoded.claims
    assert decoded.header["kid"]
    assert decoded.header["typ"] == "logout+jwt"
    assert claims["iss"] == issuer(sandbox, "individu")
    assert claims["aud"] == CLIENT_ID
    assert claims["sub"] == "sandbox-individu-camille"
    assert claims["sid"] == sid
    assert claims["events"] == {"http://schemas.openid.net/event/backchannel-logout": {}}
    assert claims["jti"]
    assert claims["iat"] <= claims["exp"]
    assert "nonce" not in claims
    # Without END_SESSION_REVOKES_GRANT the tokens go on working.
    assert _userinfo(sandbox, tokens["access_token"]).status_code == 200


def test_end_session_revokes_only_that_sessions_grant_when_asked(flow, sandbox, settings):
    settings.FTAUTH_SANDBOX = {"END_SESSION_REVOKES_GRANT": True}
    laptop, phone = flow("individu"), flow("individu")  # two browsers, two login sessions
    laptop_tokens, phone_tokens = laptop.tokens(), phone.tokens()
    laptop.session.get(
        f"{server(sandbox, 'individu')}/compte/deconnexion",
        params={"id_token_hint": laptop_tokens["id_token"]},
        timeout=10,
    )
    assert _userinfo(sandbox, laptop_tokens["access_token"]).status_code == 401
    assert _refresh(sandbox, laptop_tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert _userinfo(sandbox, phone_tokens["access_token"]).status_code == 200
    assert "access_token" in _refresh(sandbox, phone_tokens["refresh_token"]).json()


def test_end_session_leaves_the_grant_alone_by_default(flow, sandbox):
    f = flow("individu")
    tokens = f.tokens()
    f.session.get(
        f"{server(sandbox, 'individu')}/compte/deconnexion",
        params={"id_token_hint": tokens["id_token"]},
        timeout=10,
    )
    assert _userinfo(sandbox, tokens["access_token"]).status_code == 200


def test_withdrawn_consent_is_asked_again(flow, sandbox):
    f = flow("individu")
    f.sign_in()
    withdraw_consent("sandbox-individu-camille", CLIENT_ID)
    page = f.session.get(f.again().authorize_url(), timeout=5)
    assert CONSENT_FORM in parse_forms(page.text)


def test_withdrawal_spoils_codes_not_yet_exchanged(flow):
    f = flow("individu")
    code = f.sign_in()["code"]
    withdraw_consent("sandbox-individu-camille", CLIENT_ID)
    assert f.exchange(code).json()["error"] == "invalid_grant"


def test_withdrawal_leaves_other_personas_and_clients_alone(flow, sandbox, settings):
    settings.FTAUTH_SANDBOX = {
        "CLIENTS": [
            {
                "client_id": "autre",
                "client_secret": "s2",
                "redirect_uris": ["https://a.example/cb"],
            }
        ]
    }
    camille = flow("individu").tokens()
    karim = flow("individu").tokens("sandbox-individu-karim")
    other_app = flow("individu", client_id="autre", redirect_uri="https://a.example/cb")
    params = other_app.sign_in()
    other = other_app.exchange(params["code"], client_secret="s2").json()

    result = withdraw_consent("sandbox-individu-camille", CLIENT_ID)
    assert result.withdrawn and result.revoked_tokens == 1
    assert _userinfo(sandbox, camille["access_token"]).status_code == 401
    assert _userinfo(sandbox, karim["access_token"]).status_code == 200
    assert _userinfo(sandbox, other["access_token"]).status_code == 200


def test_configured_client_back_channel_uri_gets_one_token_per_ended_session(
    flow, sandbox, settings, receiver
):
    uri = f"{_origin(receiver)}/rp/backchannel"
    settings.FTAUTH_SANDBOX = {
        "BACKCHANNEL_ON_END_SESSION": True,
        "CLIENTS": [
            {
                "client_id": "autre",
                "client_secret": "s2",
                "redirect_uris": ["https://a.example/cb"],
                "backchannel_logout_uri": uri,
            }
        ],
    }
    sids = set()
    for _ in range(2):  # two browsers, two sandbox sessions, each signing out
        f = flow("individu", client_id="autre", redirect_uri="https://a.example/cb")
        tokens = f.exchange(f.sign_in()["code"], client_secret="s2").json()
        sids.add(f.session.cookies.get("ftauth_sandbox_authentification_candidat"))
        f.session.get(
            f"{server(sandbox, 'individu')}/compte/deconnexion",
            params={"id_token_hint": tokens["id_token"]},
            timeout=10,
        )
    assert len(sids) == 2
    assert len(receiver.received) == 2
    assert {r[0] for r in receiver.received} == {"/rp/backchannel"}


def test_back_channel_failure_is_logged_not_raised(flow, sandbox, caplog, settings):
    settings.FTAUTH_SANDBOX = {"BACKCHANNEL_ON_END_SESSION": True}
    f = flow("individu", redirect_uri="http://127.0.0.1:9/ftauth/callback/individu/")
    tokens = f.tokens()
    with caplog.at_level(logging.WARNING, logger="ftauth.sandbox"):
        f.session.get(
            f"{server(sandbox, 'individu')}/compte/deconnexion",
            params={"id_token_hint": tokens["id_token"]},
            timeout=10,
        )
    assert "back-channel logout" in caplog.text
    assert tokens["access_token"] not in caplog.text
    assert tokens["id_token"] not in caplog.text


def test_consents_page_signs_a_persona_in_and_out(sandbox):
    session = requests.Session()
    url = f"{sandbox}/sandbox/entreprise/compte/consentements"
    page = session.get(url, timeout=5)
    form = parse_forms(page.text)[LOGIN_FORM]
    personas = {v for n, v in form.buttons if n == "persona"}
    assert personas == {
        "sandbox-employeur-sophie",
        "sandbox-employeur-thomas",
        "sandbox-partenaire-nadia",
    }
    listed = submit(session, page, form, persona="sandbox-partenaire-nadia")
    assert listed.status_code == 302
    page = session.get(url, timeout=5)
    assert "Nadia Petit" in page.text
    logout = submit(session, page, parse_forms(page.text)["ftauth-sandbox-logout"], logout="1")
    assert logout.status_code == 302
    assert LOGIN_FORM in parse_forms(session.get(url, timeout=5).text)


def test_consents_page_refuses_a_persona_of_another_host(sandbox):
    session = requests.Session()
    url = f"{sandbox}/sandbox/entreprise/compte/consentements"
    page = session.get(url, timeout=5)
    response = submit(
        session, page, parse_forms(page.text)[LOGIN_FORM], persona="sandbox-individu-camille"
    )
    assert response.status_code == 400
