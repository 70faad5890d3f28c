"""A scriptable identity server on a loopback port, for the sign-in unit tests.

It speaks real HTTP and signs real RS256 tokens with France Travail's paths,
and records every request, so tests can prove that a forged callback never
reaches the token endpoint. The tests decide what each endpoint answers.
The full-featured peer is the sandbox (``ftauth.sandbox``); this one exists
to script hostile answers the sandbox would not give.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import cache
from joserfc import jwt
from joserfc.jwk import RSAKey


class ScriptedIdP:
    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "idp-key-1"})
        self.requests: list[dict[str, Any]] = []
        self.iss_parameter_supported = True
        self.client_id = "ftauth-tests"
        self.sub = "sub-job-seeker-1"
        self.nonce: str | None = None  # set by the test from the pending request
        self.token_status = 200
        self.token_body: Any = None  # None: a valid token response is built
        self.token_headers: dict[str, str] = {}
        self.token_delay = 0.0
        self.claim_overrides: dict[str, Any] = {}
        self.userinfo: dict[str, Any] | None = None
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def issuer(self) -> str:
        return f"{self.base}/connexion/oauth2/realms/root/realms/individu"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def token_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if "/access_token" in r["path"]]

    def id_token(self) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": self.sub,
            "aud": self.client_id,
            "azp": self.client_id,
            "iat": now,
            "exp": now + 9000,
            "auth_time": now,
            "nonce": self.nonce,
            "sid": "op-session-1",
            "given_name": "Camille",
            "family_name": "Martin",
        }
        claims.update(self.claim_overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode({"alg": "RS256", "kid": self.key.kid}, claims, self.key)

    def _answer(self, path: str, query: dict[str, list[str]], form: dict[str, list[str]]):
        if path.endswith("/.well-known/openid-configuration"):
            return (
                200,
                {},
                {
                    "issuer": self.issuer,
                    "jwks_uri": f"{self.base}/connexion/oauth2/connect/jwk_uri?realm=/individu",
                    "authorization_response_iss_parameter_supported": self.iss_parameter_supported,
                },
            )
        if path.endswith("/jwk_uri"):
            return 200, {}, {"keys": [self.key.as_dict(private=False)]}
        if path.endswith("/access_token"):
            if self.token_delay:
                time.sleep(self.token_delay)
            if self.token_body is not None:
                return self.token_status, self.token_headers, self.token_body
            return (
                200,
                {},
                {
                    "access_token": "at-" + "x" * 20,
                    "token_type": "Bearer",
                    "expires_in": 1499,
                    "scope": "openid profile email api_peconnect-individuv1",
                    "refresh_token": "rt-" + "y" * 20,
                    "id_token": self.id_token(),
                    "nonce": self.nonce,
                },
            )
        if "userinfo" in path:
            return 200, {}, self.userinfo or {"sub": self.sub, "email": "camille@example.org"}
        return 404, {}, {"error": "not_found"}

    def _handler(self):
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _respond(self, form: dict[str, list[str]]) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                idp.requests.append(
                    {
                        "method": self.command,
                        "path": parts.path,
                        "query": query,
                        "form": form,
                        "headers": dict(self.headers),
                    }
                )
                status, headers, body = idp._answer(parts.path, query, form)
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                self._respond({})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._respond(parse_qs(self.rfile.read(length).decode()))

        return Handler


# --- fixtures and helpers for the sign-in tests (a pytest plugin: see conftest) -----------


@pytest.fixture
def idp(settings):
    server = ScriptedIdP()
    conf = dict(settings.FTAUTH)
    conf["API_URL"] = server.base
    conf["REALMS"] = {"individu": {"server": server.base}, "employeur": {"server": server.base}}
    conf["HTTP_READ_TIMEOUT"] = 1.0
    conf["HTTP_RETRIES"] = 0
    settings.FTAUTH = conf
    cache.clear()
    yield server
    server.close()
    cache.clear()


def start(client, realm="individu", next_url=None):
    url = f"/ftauth/login/{realm}/" + (f"?next={next_url}" if next_url else "")
    response = client.get(url)
    assert response.status_code == 302
    params = {k: v[0] for k, v in parse_qs(urlsplit(response["Location"]).query).items()}
    return params


def pending_for(state):
    from ftauth.models import PendingAuthorization

    return PendingAuthorization.objects.get(state_hash=hashlib.sha256(state.encode()).hexdigest())


def callback(client, idp, params, **extra):
    query = {
        "code": "the-code",
        "state": params["state"],
        "iss": idp.issuer,
        "client_id": idp.client_id,
    }
    query.update(extra)
    query = {k: v for k, v in query.items() if v is not None}
    return client.get("/ftauth/callback/individu/", query)


def sign_in(client, idp, next_url=None):
    params = start(client, next_url=next_url)
    idp.nonce = pending_for(params["state"]).nonce
    return params, callback(client, idp, params)
