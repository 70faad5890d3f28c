"""A scripted France Travail on a real socket: token endpoint and one API.

The sandbox (``ftauth.sandbox``) is the faithful one; this stand-in exists for
what a test must control exactly and count: how many tokens were issued, a
token revoked early, a 429 with a given ``Retry-After``, a slow token endpoint.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable

from .stub import Received, Reply, StubServer, json_reply

TOKEN_PATH = "/connexion/oauth2/access_token"
SEARCH_PATH = "/partenaire/offresdemploi/v2/offres/search"


class FakeFranceTravail(StubServer):
    def __init__(self, *, client_id: str = "app", client_secret: str = "app-secret") -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_requests: list[Received] = []
        self.api_requests: list[Received] = []
        self.issued: list[str] = []
        self.valid: set[str] = set()
        self.expires_in = 1499
        self.token_delay = 0.0
        self.granted_scopes = {"api_offresdemploiv2", "o2dsoffre", "api_other"}
        # Scripted API answers, consumed first; then a normal answer.
        self.api_script: list[Reply] = []
        self.api_handler: Callable[[Received], Reply] | None = None
        # Users' refresh tokens still honoured (refresh_token grant, any realm).
        self.refresh_tokens: set[str] = set()
        self._token_lock = threading.Lock()
        super().__init__(self._respond)

    def _respond(self, request: Received) -> Reply:
        if request.path == TOKEN_PATH:
            return self._token(request)
        return self._api(request)

    def _token(self, request: Received) -> Reply:
        with self._token_lock:
            self.token_requests.append(request)
        form = {k: v[0] for k, v in request.form().items()}
        if self.token_delay:
            time.sleep(self.token_delay)
        if (form.get("client_id"), form.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            return json_reply({"error": "invalid_client", "error_description": "bad"}, 401)
        if form.get("grant_type") == "refresh_token":
            return self._refresh(form.get("refresh_token", ""))
        if request.query.get("realm") != ["/partenaire"]:
            return json_reply({"error": "invalid_request"}, 400)
        scopes = set(form.get("scope", "").split())
        if not scopes or not scopes <= self.granted_scopes:
            return json_reply({"error": "invalid_scope"}, 400)
        token = secrets.token_urlsafe(16)
        with self._token_lock:
            self.issued.append(token)
            self.valid.add(token)
        return json_reply(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": self.expires_in,
                "scope": " ".join(sorted(scopes)),
            }
        )

    def _refresh(self, refresh_token: str) -> Reply:
        with self._token_lock:
            if refresh_token not in self.refresh_tokens:
                return json_reply({"error": "invalid_grant"}, 400)
            self.refresh_tokens.discard(refresh_token)  # rotated, as ForgeRock does
            access, refresh = self.user_tokens()
        return json_reply(
            {
                "access_token": access,
                "refresh_token": refresh,
                "token_type": "Bearer",
                "expires_in": self.expires_in,
            }
        )

    def user_tokens(self) -> tuple[str, str]:
        """A user's access and refresh tokens, as a sign-in would have given them."""
        access, refresh = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        self.issued.append(access)
        self.valid.add(access)
        self.refresh_tokens.add(refresh)
        return access, refresh

    def _api(self, request: Received) -> Reply:
        with self._token_lock:
            self.api_requests.append(request)
            scripted = self.api_script.pop(0) if self.api_script else None
        if scripted is not None:
            return scripted
        authorization = request.headers.get("authorization", "")
        token = authorization.removeprefix("Bearer ")
        if not authorization.startswith("Bearer ") or token not in self.valid:
            return json_reply({"message": "invalid token"}, 401)
        if self.api_handler is not None:
            return self.api_handler(request)
        return json_reply({"resultats": [{"id": "1"}], "path": request.path}, 200)

    def revoke(self, token: str) -> None:
        with self._token_lock:
            self.valid.discard(token)
