"""A stateful France Travail stand-in on a loopback port, for the consent-lifecycle tests.

Real HTTP, real RS256 tokens, France Travail's paths: token endpoint
(authorization_code and refresh_token grants, refresh token rotation),
JWKS, discovery, userinfo on the API host. It keeps grants per persona, so a
test can withdraw consent (the persona's tokens then get 401 and
``invalid_grant``), count refresh requests, or make the next answers fail
(5xx, 429, slow). It also signs back-channel logout tokens.
The full-featured peer is the sandbox (``ftauth.sandbox``); this one gives
the tests exact control and exact counts.
"""

from __future__ import annotations

import copy
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import cache
from joserfc import jwt
from joserfc.jwk import RSAKey

from ftauth.core.logout_token import BACKCHANNEL_LOGOUT_EVENT

CLIENT_ID = "ftauth-tests"
CLIENT_SECRET = "tests-client-secret"
_KEY = RSAKey.generate_key(2048, parameters={"kid": "fakeop-1"}, private=True)
# A failure status that answers nothing whole: headers, half the body, connection closed.
DROP = -1


# Answers that never end in time: one byte a second for a minute (after whole headers),
# or bytes as fast as the socket takes them, forever.
TRICKLE = -2
ENDLESS = -3


class Raw(str):
    """A JSON literal written as is (``1e999``, ``NaN``, ``10**20`` digits), which
    ``json.dumps`` would otherwise quote or refuse."""


def _dumps(body: Any) -> bytes:
    raws: list[str] = []

    def mark(value: Any) -> Any:
        if isinstance(value, Raw):
            raws.append(str(value))
            return f"@@raw{len(raws) - 1}@@"
        if isinstance(value, dict):
            return {k: mark(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mark(v) for v in value]
        return value

    text = json.dumps(mark(body))
    for index, raw in enumerate(raws):
        text = text.replace(f'"@@raw{index}@@"', raw)
    return text.encode()


@dataclass
class Grant:
    sub: str
    realm: str
    sid: str
    nonce: str | None = None
    withdrawn: bool = False
    code: str = ""
    refresh_token: str = ""
    access_tokens: set[str] = field(default_factory=set)
    id_tokens: set[str] = field(default_factory=set)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (timeout tests) is not a failure of the server


class FakeOP:
    def __init__(self) -> None:
        self.key = _KEY
        self.published = [_KEY]
        self.lock = threading.Lock()
        self.grants: list[Grant] = []
        self.requests: list[dict[str, Any]] = []
        # Every token handed out, to search logs and pages for them.
        self.issued: list[str] = []
        # [(kind, status, headers, body)]: the next answers of an endpoint kind
        # ("token", "userinfo", "jwks", "discovery"), consumed in order.
        self.failures: list[tuple[str, int, dict[str, str], Any]] = []
        self.token_delay = 0.0
        self.userinfo_delay = 0.0
        # Bumped by reset(): a request still sleeping in a delay when its test ended
        # must not consume the next test's scripted failures.
        self.generation = 0
        self.refreshed_claims: dict[str, Any] = {}
        # Test-only misbehaviour: refreshed ID tokens signed with this key (under the
        # published key's kid), i.e. a bad signature.
        self.refreshed_signing_key: RSAKey | None = None
        self._scripts_init()
        self.server = _QuietServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    # --- addresses ---------------------------------------------------------------------------

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def server_url(self) -> str:
        return f"{self.base}/ft"

    @property
    def api_url(self) -> str:
        return f"{self.base}/api"

    def issuer(self, realm: str = "individu") -> str:
        return f"{self.server_url}/connexion/oauth2/realms/root/realms/{realm}"

    def ftauth_settings(self, base: dict[str, Any]) -> dict[str, Any]:
        conf = copy.deepcopy(base)
        conf["API_URL"] = self.api_url
        conf["REALMS"] = {
            "individu": {"server": self.server_url},
            "employeur": {"server": self.server_url},
            "partenaire": {"server": self.server_url},
        }
        conf["HTTP_READ_TIMEOUT"] = 2.0
        conf["HTTP_RETRIES"] = 0
        return conf

    def reset(self) -> None:
        with self.lock:
            self.grants.clear()
            self.requests.clear()
            self.issued.clear()
            self.failures.clear()
            self.generation += 1
            self.token_delay = 0.0
            self.userinfo_delay = 0.0
            self.refreshed_claims = {}
            self.refreshed_signing_key = None
            self.key = _KEY
            self.published = [_KEY]
            self._scripts_init()

    def _scripts_init(self) -> None:
        # Hostile answers for the sign-in tests, until the next reset: claims
        # changed in the ID token of a code exchange, a whole token answer
        # (status, headers, body), a userinfo body, RFC 9207 in discovery.
        self.claim_overrides: dict[str, Any] = {}
        self.token_script: tuple[int, dict[str, str], Any] | None = None
        self.userinfo_body: dict[str, Any] | None = None
        self.iss_parameter_supported = True
        # Fields added to (or replacing those of) a code exchange's token answer.
        self.token_fields: dict[str, Any] = {}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- what tests do -----------------------------------------------------------------------

    def issue(self, sub: str, realm: str = "individu", *, nonce: str | None = None) -> dict:
        """A token response for a new grant (as if the user had just consented)."""
        grant = Grant(sub=sub, realm=realm, sid=f"op-sid-{uuid.uuid4().hex[:8]}", nonce=nonce)
        with self.lock:
            self.grants.append(grant)
            return self._token_response(grant, nonce=nonce)

    def authorize(self, sub: str, realm: str = "individu", *, nonce: str) -> str:
        """The persona signs in and consents: an authorization code for the callback."""
        grant = Grant(
            sub=sub,
            realm=realm,
            sid=f"op-sid-{uuid.uuid4().hex[:8]}",
            nonce=nonce,
            code="code-" + secrets.token_urlsafe(12),
        )
        with self.lock:
            self.grants.append(grant)
        return grant.code

    def grant_of(self, sub: str) -> Grant:
        return next(g for g in reversed(self.grants) if g.sub == sub)

    def withdraw(self, sub: str) -> None:
        """The persona withdraws consent: every token of theirs stops working at once."""
        with self.lock:
            for grant in self.grants:
                if grant.sub == sub:
                    grant.withdrawn = True

    def revoke(self, grant: Grant) -> None:
        """One grant stops working, the persona's others do not (what a server that
        revokes the grant of an ended session does, or a refresh token lost in transit)."""
        with self.lock:
            grant.withdrawn = True

    def grant_with_token(self, token: str) -> Grant:
        """The grant an access, refresh or ID token belongs to."""
        with self.lock:
            return next(
                g
                for g in self.grants
                if token in g.access_tokens or token == g.refresh_token or token in g.id_tokens
            )

    def fail_next(
        self, kind: str, status: int, headers: dict[str, str] | None = None, body: Any = None
    ) -> None:
        """The next answer of ``kind``: ``status`` (or :data:`DROP`) with ``body``."""
        with self.lock:
            self.failures.append((kind, status, headers or {}, body))

    def rotate_key(self) -> None:
        """France Travail publishes a new signing key and signs with it from now on."""
        new = RSAKey.generate_key(
            2048, parameters={"kid": f"fakeop-{uuid.uuid4().hex[:6]}"}, private=True
        )
        with self.lock:
            self.published = [new, *self.published]
            self.key = new

    def requests_to(self, kind: str) -> list[dict[str, Any]]:
        marker = {
            "token": "/access_token",
            "userinfo": "/userinfo",
            "jwks": "/jwk_uri",
            "discovery": "/openid-configuration",
        }[kind]
        return [r for r in self.requests if marker in r["path"]]

    def token_requests(self) -> list[dict[str, Any]]:
        return self.requests_to("token")

    def refresh_requests(self) -> list[dict[str, Any]]:
        return [
            r for r in self.requests_to("token") if r["form"].get("grant_type") == ["refresh_token"]
        ]

    def id_token(
        self, grant: Grant | None = None, *, signing_key: RSAKey | None = None, **overrides: Any
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer(grant.realm if grant else "individu"),
            "sub": grant.sub if grant else "sub-1",
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 9000,
            "sid": grant.sid if grant else "op-sid",
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return self.sign(claims, key=signing_key)

    def sign(
        self,
        claims: dict[str, Any],
        header: dict[str, Any] | None = None,
        *,
        key: RSAKey | None = None,
    ) -> str:
        """Signed with the current key; with ``key``, by that one under the current kid."""
        header = header or {"alg": "RS256", "kid": self.key.kid}
        return jwt.encode(header, claims, key or self.key)

    def logout_claims(self, **overrides: Any) -> dict[str, Any]:
        claims = {
            "iss": self.issuer(),
            "aud": CLIENT_ID,
            "iat": int(time.time()),
            "exp": int(time.time()) + 120,
            "jti": secrets.token_urlsafe(12),
            "sub": "sub-1",
            "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def logout_token(self, **overrides: Any) -> str:
        return self.sign(self.logout_claims(**overrides))

    # --- the server --------------------------------------------------------------------------

    def _token_response(self, grant: Grant, *, nonce: str | None = None) -> dict:
        access = "AT-" + secrets.token_urlsafe(16)
        grant.access_tokens.add(access)
        grant.refresh_token = "RT-" + secrets.token_urlsafe(16)
        body = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": 1499,
            "scope": "api_peconnect-individuv1 openid profile email",
            "refresh_token": grant.refresh_token,
            "id_token": self.id_token(
                grant,
                signing_key=None if nonce else self.refreshed_signing_key,
                **{"nonce": nonce, **(self.claim_overrides if nonce else self.refreshed_claims)},
            ),
        }
        if nonce:
            body["nonce"] = nonce
            body.update(self.token_fields)
        grant.id_tokens.add(body["id_token"])
        self.issued += [body["access_token"], body["refresh_token"], body["id_token"]]
        return body

    def _failure(self, kind: str) -> tuple[int, dict[str, str], Any] | None:
        for index, (k, status, headers, body) in enumerate(self.failures):
            if k == kind:
                del self.failures[index]
                return status, headers, {"error": "server_error"} if body is None else body
        return None

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        generation = self.generation
        if self.token_delay:
            time.sleep(self.token_delay)
        with self.lock:
            if generation != self.generation:
                return 503, {}, {"error": "server_error"}  # a straggler of an ended test
            failure = self._failure("token") or self.token_script
            if failure:
                return failure
            if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
                return 401, {}, {"error": "invalid_client"}
            grant_type = form.get("grant_type")
            if grant_type == "authorization_code":
                grant = next(
                    (g for g in self.grants if g.code and g.code == form.get("code")), None
                )
                if grant is None:
                    return 400, {}, {"error": "invalid_grant"}
                grant.code = ""  # single use
                return 200, {}, self._token_response(grant, nonce=grant.nonce)
            if grant_type == "refresh_token":
                grant = next(
                    (g for g in self.grants if g.refresh_token == form.get("refresh_token")), None
                )
                if grant is None or grant.withdrawn:
                    return 400, {}, {"error": "invalid_grant", "error_description": "revoked"}
                # Rotation: the old access and refresh tokens stop working.
                grant.access_tokens.clear()
                return 200, {}, self._token_response(grant)
        return 400, {}, {"error": "unsupported_grant_type"}

    def _userinfo(self, authorization: str) -> tuple[int, dict[str, str], Any]:
        generation = self.generation
        if self.userinfo_delay:
            time.sleep(self.userinfo_delay)
        with self.lock:
            if generation != self.generation:
                return 503, {}, {"error": "server_error"}  # a straggler of an ended test
            failure = self._failure("userinfo")
            if failure:
                return failure
            token = authorization.removeprefix("Bearer ")
            grant = next((g for g in self.grants if token in g.access_tokens), None)
            if grant is None or grant.withdrawn:
                return 401, {}, {"message": "invalid token"}
            default = {"sub": grant.sub, "given_name": "Camille", "family_name": "Martin"}
            return 200, {}, self.userinfo_body or default

    def _answer(self, method: str, path: str, query, form, headers):
        if path.endswith(("/openid-configuration", "/jwk_uri")):
            with self.lock:
                failure = self._failure("jwks" if path.endswith("/jwk_uri") else "discovery")
            if failure:
                return failure
        if path.endswith("/.well-known/openid-configuration"):
            realm = path.split("/realms/")[-1].split("/")[0]
            jwks_path = f"/connexion/oauth2/connect/jwk_uri?realm=/{realm}"
            return (
                200,
                {},
                {
                    "issuer": self.issuer(realm),
                    "jwks_uri": f"{self.server_url}{jwks_path}",
                    "backchannel_logout_supported": True,
                    "authorization_response_iss_parameter_supported": (
                        self.iss_parameter_supported
                    ),
                },
            )
        if path.endswith("/jwk_uri"):
            return 200, {}, {"keys": [key.as_dict(private=False) for key in self.published]}
        if path.endswith("/access_token") and method == "POST":
            return self._token({k: v[0] for k, v in form.items()})
        if path.endswith("/userinfo"):
            return self._userinfo(headers.get("Authorization", ""))
        return 404, {}, {"error": "not_found"}

    def _handler(self):
        op = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _respond(self, form: dict[str, list[str]]) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                with op.lock:
                    op.requests.append(
                        {
                            "path": parts.path,
                            "query": query,
                            "form": form,
                            "headers": dict(self.headers),
                        }
                    )
                status, headers, body = op._answer(
                    self.command, parts.path, query, form, dict(self.headers)
                )
                raw = body if isinstance(body, bytes) else _dumps(body)
                if status in (TRICKLE, ENDLESS):
                    self._flood(trickle=status == TRICKLE)
                    return
                if status == DROP:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(raw) + 100))
                    self.end_headers()
                    self.wfile.write(raw[: len(raw) // 2])
                    self.close_connection = True
                    return
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _flood(self, *, trickle: bool) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if trickle:
                    self.send_header("Content-Length", "60")
                self.end_headers()
                self.close_connection = True
                started = time.monotonic()
                try:
                    self.wfile.write(b"{")
                    # The whole test run is the upper bound: the client leaving ends it.
                    while time.monotonic() - started < 60:
                        if trickle:
                            time.sleep(1)
                            self.wfile.write(b" ")
                        else:
                            self.wfile.write(b" " * 65536)
                        self.wfile.flush()
                except OSError:
                    pass  # the client closed the connection: what the test wants

            def do_GET(self) -> None:
                self._respond({})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._respond(parse_qs(self.rfile.read(length).decode()))

        return Handler


# --- fixtures (a pytest plugin: see tests/conftest.py) -------------------------------------


@pytest.fixture(scope="session")
def fakeop_server():
    server = FakeOP()
    yield server
    server.close()


@pytest.fixture
def fakeop(fakeop_server, settings):
    """The fake France Travail, reset, with FTAUTH pointing every realm at it."""
    fakeop_server.reset()
    settings.FTAUTH = fakeop_server.ftauth_settings(settings.FTAUTH)
    cache.clear()
    yield fakeop_server
    cache.clear()
