"""A ProConnect stand-in on a loopback port, for the professional sign-in tests.

Real HTTP, ProConnect's paths under ``/api/v2`` found by discovery, ID tokens and
userinfo answers signed ES256 (the server's default algorithm), userinfo as
``application/jwt``, ``acr``/``amr`` claims, a refresh token on every answer.
Personas are the four of issue 17: a France Travail advisor with an agency, a
public agent, a prescriber with a SIRET, and a person whose identity provider
cannot do MFA. Test-only misbehaviour (a forged userinfo, another ``sub``, plain
JSON) is switched on per test; the sandbox never does it.
"""

from __future__ import annotations

import copy
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import cache
from joserfc import jws, jwt
from joserfc.jwk import ECKey, OctKey

CLIENT_ID = "proconnect-tests"
CLIENT_SECRET = "proconnect-tests-secret"
FT_IDP = "france-travail-idp"
_KEY = ECKey.generate_key("P-256", parameters={"kid": "pc-1"}, private=True)
_FORGER = ECKey.generate_key("P-256", parameters={"kid": "pc-1"}, private=True)

PERSONAS: dict[str, dict[str, Any]] = {
    "advisor": {
        "sub": "pc-sub-advisor",
        "given_name": "Aline",
        "usual_name": "Conseil",
        "email": "aline.conseil@francetravail.fr",
        "idp_id": FT_IDP,
        "siret": "13000548100010",
        "custom": {"structureTravail": "75011"},
        "mfa": True,
    },
    "agent": {
        "sub": "pc-sub-agent",
        "given_name": "Paul",
        "usual_name": "Public",
        "email": "paul.public@interieur.gouv.fr",
        "idp_id": "agentconnect-interieur",
        "roles": ["agent_public", "agent_public_etat"],
        "mfa": True,
    },
    "prescriber": {
        "sub": "pc-sub-prescriber",
        "given_name": "Prune",
        "usual_name": "Scriptrice",
        "email": "prune@association.example",
        "idp_id": "proconnect-identite",
        "siret": "44306184100047",
        "roles": [],
        "mfa": True,
    },
    # An identity provider that cannot do MFA: eidas1 at most.
    "no_mfa": {
        "sub": "pc-sub-nomfa",
        "given_name": "Nora",
        "usual_name": "Sansmfa",
        "email": "nora@petite-mairie.example",
        "idp_id": "idp-without-mfa",
        "roles": ["agent_public_territorial"],
        "mfa": False,
    },
}


@dataclass
class Grant:
    persona: str
    nonce: str
    acr: str | None
    amr: Any
    code: str = ""
    refresh_token: str = ""
    access_tokens: set[str] = field(default_factory=set)
    sid: str = field(default_factory=lambda: "pc-sid-" + secrets.token_hex(4))
    auth_time: int = field(default_factory=lambda: int(time.time()))


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class ProConnectOP:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.grants: list[Grant] = []
        self.requests: list[dict[str, Any]] = []
        # Test-only misbehaviour of the userinfo endpoint: "forged", "other_sub",
        # "json", "no_aud", "other_iss", "nan", "nul", "deep" (none: ProConnect's answer).
        self.userinfo_mode = ""
        # The algorithm chosen at registration: ES256 (ProConnect's default) or HS256.
        self.alg = "ES256"
        self.server = _QuietServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def server_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def issuer(self) -> str:
        return f"{self.server_url}/api/v2"

    def ftauth_settings(self, base: dict[str, Any], **realm: Any) -> dict[str, Any]:
        conf = copy.deepcopy(base)
        conf["REALMS"] = {
            **conf["REALMS"],
            "proconnect": {
                "server": self.server_url,
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                **realm,
            },
        }
        conf["HTTP_RETRIES"] = 0
        return conf

    def reset(self) -> None:
        with self.lock:
            self.grants.clear()
            self.requests.clear()
            self.userinfo_mode = ""
            self.alg = "ES256"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["kind"] == kind]

    # --- what the person does at ProConnect ---------------------------------------------------

    def authorize(self, persona: str, *, nonce: str, acr_asked: list[str] | None = None) -> str:
        """The persona signs in; a code, with the best level their provider reaches
        among those asked (``eidas1`` without MFA)."""
        mfa = PERSONAS[persona]["mfa"]
        acr = "eidas1-mfa" if mfa and (not acr_asked or "eidas1-mfa" in acr_asked) else "eidas1"
        amr = ["pwd", "otp", "mfa"] if acr.endswith("-mfa") else None
        grant = Grant(persona, nonce, acr, amr, code="pc-code-" + secrets.token_urlsafe(8))
        with self.lock:
            self.grants.append(grant)
        return grant.code

    # --- tokens -------------------------------------------------------------------------------

    def sign(self, claims: dict[str, Any], key: ECKey = _KEY) -> str:
        if self.alg == "HS256":  # keyed by the client secret (les-emplois' choice)
            return jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(CLIENT_SECRET))
        return jwt.encode({"alg": "ES256", "kid": "pc-1"}, claims, key)

    def _id_token(self, grant: Grant, *, nonce: bool) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": PERSONAS[grant.persona]["sub"],
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 60,
            "auth_time": grant.auth_time,
            "sid": grant.sid,
            "acr": grant.acr,
            "amr": grant.amr,
            "idp_id": PERSONAS[grant.persona]["idp_id"],
        }
        if nonce:
            claims["nonce"] = grant.nonce
        return self.sign(claims)

    def _token_response(self, grant: Grant, *, nonce: bool) -> dict[str, Any]:
        access = "pc-at-" + secrets.token_urlsafe(12)
        grant.access_tokens.add(access)
        # ProConnect always issues a refresh token (and rotates it).
        grant.refresh_token = "pc-rt-" + secrets.token_urlsafe(12)
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": 3600,
            "id_token": self._id_token(grant, nonce=nonce),
            "refresh_token": grant.refresh_token,
            "scope": "openid email given_name usual_name siret idp_id custom",
        }

    def _token(self, form: dict[str, str]) -> tuple[int, str, Any]:
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return 401, "application/json", {"error": "invalid_client"}
        with self.lock:
            if form.get("grant_type") == "authorization_code":
                grant = next(
                    (g for g in self.grants if g.code and g.code == form.get("code")), None
                )
                if grant is None or not form.get("code_verifier"):
                    return 400, "application/json", {"error": "invalid_grant"}
                grant.code = ""
                return 200, "application/json", self._token_response(grant, nonce=True)
            if form.get("grant_type") == "refresh_token":
                grant = next(
                    (g for g in self.grants if g.refresh_token == form.get("refresh_token")), None
                )
                if grant is None:
                    return 400, "application/json", {"error": "invalid_grant"}
                return 200, "application/json", self._token_response(grant, nonce=False)
        return 400, "application/json", {"error": "unsupported_grant_type"}

    def _userinfo(self, authorization: str) -> tuple[int, str, Any]:
        token = authorization.removeprefix("Bearer ")
        grant = next((g for g in self.grants if token in g.access_tokens), None)
        if grant is None:
            return 401, "application/json", {}
        persona = {k: v for k, v in PERSONAS[grant.persona].items() if k != "mfa"}
        claims = {"iss": self.issuer, "aud": CLIENT_ID, **persona}
        mode = self.userinfo_mode
        if mode == "json":
            return 200, "application/json", claims
        if mode == "other_sub":
            claims["sub"] = "pc-sub-someone-else"
        if mode == "no_aud":
            claims["aud"] = "another-site"
        if mode == "other_iss":
            claims["iss"] = "https://elsewhere.example/api/v2"
        if mode == "nan":  # numbers JSON cannot store: NaN, 1e999
            claims["custom"] = {"score": float("nan"), "rank": float("inf")}
        if mode == "nul":  # text PostgreSQL's jsonb refuses
            claims["given_name"] = "Pa\x00ul"
        if mode == "deep":  # nested deeper than Python's JSON reader can recurse
            payload = b'{"sub": "x", "a": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"
            header = {"alg": "ES256", "kid": "pc-1"}
            return 200, "application/jwt", jws.serialize_compact(header, payload, _KEY)
        key = _FORGER if mode == "forged" else _KEY
        return 200, "application/jwt", self.sign(claims, key)

    def _answer(self, method: str, path: str, form: dict[str, str], headers: Any):
        if path == "/api/v2/.well-known/openid-configuration":
            base = self.issuer
            return (
                200,
                "application/json",
                {
                    "issuer": base,
                    "authorization_endpoint": f"{base}/authorize",
                    "token_endpoint": f"{base}/token",
                    "userinfo_endpoint": f"{base}/userinfo",
                    "end_session_endpoint": f"{base}/session/end",
                    "jwks_uri": f"{base}/jwks",
                    "id_token_signing_alg_values_supported": ["ES256", "RS256", "HS256"],
                    "userinfo_signing_alg_values_supported": ["ES256", "RS256", "HS256"],
                    "acr_values_supported": ["eidas1", "eidas1-mfa", "eidas2", "eidas3"],
                },
            )
        if path == "/api/v2/jwks":
            return 200, "application/json", {"keys": [_KEY.as_dict(private=False)]}
        if path == "/api/v2/token" and method == "POST":
            return self._token(form)
        if path == "/api/v2/userinfo":
            return self._userinfo(headers.get("Authorization", ""))
        return 404, "application/json", {"error": "not_found"}

    def _handler(self):
        op = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _respond(self, form: dict[str, str]) -> None:
                path = urlsplit(self.path).path
                kind = path.rsplit("/", 1)[-1]
                with op.lock:
                    op.requests.append({"kind": kind, "path": self.path, "form": form})
                status, content_type, body = op._answer(self.command, path, form, self.headers)
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._respond({})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = parse_qs(self.rfile.read(length).decode())
                self._respond({k: v[0] for k, v in raw.items()})

        return Handler


@pytest.fixture(scope="session")
def proconnect_server():
    server = ProConnectOP()
    yield server
    server.close()


@pytest.fixture
def proconnect(proconnect_server, settings):
    """The ProConnect stand-in, reset, with a ``proconnect`` realm pointing at it."""
    proconnect_server.reset()
    settings.FTAUTH = proconnect_server.ftauth_settings(settings.FTAUTH)
    cache.clear()
    yield proconnect_server
    cache.clear()
