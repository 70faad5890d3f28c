"""A look-alike France Travail identity server for the sign-in benchmark.

Both sites of ``bench.signin`` (ftauth's demo and the mozilla-django-oidc
project) sign in against this one server, so neither is measured against its
own sandbox. It is small on purpose: a threaded stdlib HTTP server (keep-alive
on, as France Travail's is), realm ``/individu`` under France Travail's paths
(``/authentification-candidat/connexion/oauth2/...``, userinfo under
``/api/partenaire/peconnect-individu/v1/userinfo``), RS256 ID tokens signed
with a key made at start, PKCE S256 checked when a challenge was sent, codes
usable once. The authorize endpoint answers at once with a redirect carrying
the code (no login page); the subject is the ``login_hint`` the client sends.

Every answer waits ``latency`` seconds first (set through ``/_bench/latency``),
to stand for the network and the server's own work. ``/_bench/stats`` counts
answers per endpoint, whatever their status (``token`` counts refusals too), and
``token_ok`` the token answers that gave tokens (200): codes exchanged;
``/_bench/reset`` zeroes the counts.

Run: ``python -m bench.idp --port 0`` prints ``listening on <port>``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import secrets
import socket
import sys
import threading
import time
from collections import Counter, OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

from .idp_names import CLIENT_ID, CLIENT_SECRET, HOST, OAUTH, REALM_PATH, USERINFO

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "HOST", "OAUTH", "REALM_PATH", "USERINFO"]

CODE_LIFETIME = 60
KEPT = 20_000  # codes and access tokens remembered at most (oldest forgotten first)


class IdentityServer:
    """The server's state: key, codes, access tokens, counters, latency."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.issuer = f"{base_url}{REALM_PATH}"
        self.key = RSAKey.generate_key(
            2048, parameters={"kid": "bench-1", "use": "sig", "alg": "RS256"}
        )
        self.jwks = {"keys": [self.key.as_dict(private=False)]}
        self.lock = threading.Lock()
        self.codes: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.access_tokens: OrderedDict[str, str] = OrderedDict()
        self.counts: Counter[str] = Counter()
        self.latency = 0.0

    def discovery(self) -> dict[str, Any]:
        b = self.base_url
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{b}{OAUTH}/authorize",
            "token_endpoint": f"{b}{OAUTH}/access_token?realm=%2Findividu",
            "jwks_uri": f"{b}{OAUTH}/connect/jwk_uri?realm=/individu",
            "userinfo_endpoint": f"{b}{USERINFO}?schema=openid",
            "end_session_endpoint": f"{b}{HOST}/compte/deconnexion",
            "response_types_supported": ["code"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
            "authorization_response_iss_parameter_supported": True,
        }

    def _remember(self, table: OrderedDict, key: str, value: Any) -> None:
        with self.lock:
            table[key] = value
            while len(table) > KEPT:
                table.popitem(last=False)

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != CLIENT_ID or not redirect_uri.startswith("http://127.0.0.1"):
            return 400, {}, {"error": "invalid_request"}
        code = secrets.token_urlsafe(24)
        self._remember(
            self.codes,
            code,
            {
                "redirect_uri": redirect_uri,
                "nonce": query.get("nonce"),
                "challenge": query.get("code_challenge"),
                "sub": query.get("login_hint") or "bench-user",
                "scope": query.get("scope", ""),
                "expires": time.time() + CODE_LIFETIME,
            },
        )
        answer = {"code": code, "iss": self.issuer, "client_id": CLIENT_ID}
        if "state" in query:
            answer["state"] = query["state"]
        sep = "&" if "?" in redirect_uri else "?"
        return 302, {"Location": f"{redirect_uri}{sep}{urlencode(answer)}"}, None

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return 401, {}, {"error": "invalid_client"}
        if form.get("grant_type") != "authorization_code":
            return 400, {}, {"error": "unsupported_grant_type"}
        with self.lock:
            grant = self.codes.pop(form.get("code", ""), None)
        if grant is None or grant["expires"] < time.time():
            return 400, {}, {"error": "invalid_grant"}
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return 400, {}, {"error": "invalid_grant"}
        if grant["challenge"]:
            verifier = form.get("code_verifier", "").encode()
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
            if digest.decode() != grant["challenge"]:
                return 400, {}, {"error": "invalid_grant"}
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": grant["sub"],
            "aud": CLIENT_ID,
            "azp": CLIENT_ID,
            "iat": now,
            "auth_time": now,
            "exp": now + 150 * 60,
        }
        if grant["nonce"]:
            claims["nonce"] = grant["nonce"]
        id_token = jwt.encode({"alg": "RS256", "kid": "bench-1"}, claims, self.key)
        access_token = secrets.token_urlsafe(32)
        self._remember(self.access_tokens, access_token, grant["sub"])
        body = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 1499,
            "scope": grant["scope"],
            "id_token": id_token,
            "refresh_token": secrets.token_urlsafe(32),
        }
        if grant["nonce"]:
            body["nonce"] = grant["nonce"]
        return 200, {"Cache-Control": "no-store"}, body

    def userinfo(self, authorization: str) -> tuple[int, dict[str, str], Any]:
        token = authorization[7:] if authorization.startswith("Bearer ") else ""
        with self.lock:
            sub = self.access_tokens.get(token)
        if sub is None:
            return 401, {}, {"error": "invalid_token"}
        return (
            200,
            {},
            {
                "sub": sub,
                "given_name": "Camille",
                "family_name": sub.title(),
                "gender": "female",
                "email": f"{sub}@bench.example",
            },
        )


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real server
    server: BenchHTTPServer

    def setup(self) -> None:
        super().setup()
        # As production servers do (nginx's tcp_nodelay): an answer written in two
        # pieces on a kept-alive connection must not wait for the client's delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _answer(self, status: int, headers: dict[str, str], body: Any) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        # Headers and body in one write.
        self._headers_buffer.append(b"\r\n" + payload)
        self.flush_headers()

    def _route(self, method: str) -> tuple[str, tuple[int, dict[str, str], Any]]:
        idp = self.server.idp
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        path = parts.path
        if method == "GET" and path == f"{REALM_PATH}/.well-known/openid-configuration":
            return "discovery", (200, {}, idp.discovery())
        if method == "GET" and path == f"{OAUTH}/connect/jwk_uri":
            return "jwks", (200, {}, idp.jwks)
        if method == "GET" and path == f"{OAUTH}/authorize":
            return "authorize", idp.authorize(query)
        if method == "POST" and path == f"{OAUTH}/access_token":
            if query.get("realm") != "/individu":
                return "token", (400, {}, {"error": "invalid_request"})
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            form = {k: v[0] for k, v in parse_qs(raw).items()}
            return "token", idp.token(form)
        if method == "GET" and path == USERINFO:
            return "userinfo", idp.userinfo(self.headers.get("Authorization", ""))
        return "unknown", (404, {}, {"error": "not_found"})

    def _control(self) -> bool:
        idp = self.server.idp
        parts = urlsplit(self.path)
        if not parts.path.startswith("/_bench/"):
            return False
        if parts.path == "/_bench/stats":
            with idp.lock:
                self._answer(200, {}, dict(idp.counts))
        elif parts.path == "/_bench/reset":
            with idp.lock:
                idp.counts.clear()
            self._answer(200, {}, {})
        elif parts.path == "/_bench/latency":
            idp.latency = float(parse_qs(parts.query).get("seconds", ["0"])[0])
            self._answer(200, {}, {"latency": idp.latency})
        else:
            self._answer(404, {}, {})
        return True

    def _handle(self, method: str) -> None:
        if self._control():
            return
        kind, answer = self._route(method)
        with self.server.idp.lock:
            self.server.idp.counts[kind] += 1
            if kind == "token" and answer[0] == 200:
                self.server.idp.counts["token_ok"] += 1
        if self.server.idp.latency:
            time.sleep(self.server.idp.latency)
        self._answer(*answer)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")


class BenchHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.idp = IdentityServer(f"http://127.0.0.1:{self.server_address[1]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.idp", description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = BenchHTTPServer(args.port)
    print(f"listening on {server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
