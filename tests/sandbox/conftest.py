"""Helpers to drive the sandbox over real HTTP, as a client application would."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from ftauth.sandbox.quota import buckets

from .scripting import sign_in

CLIENT_ID = "ftauth-tests"
CLIENT_SECRET = "tests-client-secret"

HOSTS = {
    "individu": "authentification-candidat",
    "employeur": "entreprise",
    "partenaire": "entreprise",
}
SCOPES = {
    "individu": "api_peconnect-individuv1 openid profile email",
    "employeur": "api_peconnect-entreprisev1 openid profile email habilitation",
    "partenaire": "openid profile email",
}
PERSONAS = {
    "individu": "sandbox-individu-camille",
    "employeur": "sandbox-employeur-sophie",
    "partenaire": "sandbox-partenaire-nadia",
}


def server(live: str, realm: str) -> str:
    return f"{live}/sandbox/{HOSTS[realm]}"


def issuer(live: str, realm: str) -> str:
    return f"{server(live, realm)}/connexion/oauth2/realms/root/realms/{realm}"


def token_url(live: str, realm: str) -> str:
    return f"{server(live, realm)}/connexion/oauth2/access_token?realm=%2F{realm}"


def jwks_url(live: str, realm: str) -> str:
    return f"{server(live, realm)}/connexion/oauth2/connect/jwk_uri?realm=%2F{realm}"


def verify(live: str, realm: str, token: str) -> dict:
    """The claims of ``token`` after checking its signature against the realm's JWKS."""
    keys = KeySet.import_key_set(requests.get(jwks_url(live, realm), timeout=5).json())
    return jwt.decode(token, keys, algorithms=["RS256"]).claims


@dataclass
class Flow:
    """One authorization request of a client, with its secrets."""

    live: str
    realm: str
    scope: str = ""
    redirect_uri: str = ""
    client_id: str = CLIENT_ID
    state: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.scope = self.scope or SCOPES[self.realm]
        self.redirect_uri = self.redirect_uri or f"{self.live}/ftauth/callback/{self.realm}/"

    def again(self, **changes) -> Flow:
        """A new authorization request (new state, nonce, verifier) in the same browser."""
        kept = {
            "scope": self.scope,
            "redirect_uri": self.redirect_uri,
            "client_id": self.client_id,
            "session": self.session,
        }
        kept.update(changes)
        return Flow(self.live, self.realm, **kept)

    @property
    def challenge(self) -> str:
        digest = hashlib.sha256(self.verifier.encode()).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def authorize_url(self, **overrides: str) -> str:
        params = {
            "realm": f"/{self.realm}",
            "response_type": "code",
            "client_id": self.client_id,
            "scope": self.scope,
            "redirect_uri": self.redirect_uri,
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
        }
        params.update(overrides)
        params = {k: v for k, v in params.items() if v is not None}
        return f"{server(self.live, self.realm)}/connexion/oauth2/authorize?{urlencode(params)}"

    def sign_in(self, persona: str | None = None, decision: str = "accept", **overrides):
        """Through the sandbox's pages; returns the callback's query parameters."""
        response = sign_in(
            self.session,
            self.authorize_url(**overrides),
            persona or PERSONAS[self.realm],
            decision=decision,
            follow_callback=False,
        )
        assert response.status_code == 302, response.text[:500]
        location = response.headers["Location"]
        assert location.startswith(self.redirect_uri)
        return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}

    def exchange(self, code: str, **overrides: str) -> requests.Response:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "client_id": self.client_id,
            "client_secret": CLIENT_SECRET,
            "code_verifier": self.verifier,
        }
        data.update(overrides)
        return requests.post(token_url(self.live, self.realm), data=data, timeout=10)

    def tokens(self, persona: str | None = None) -> dict:
        params = self.sign_in(persona)
        response = self.exchange(params["code"])
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(autouse=True)
def _fresh_quota():
    """The quota buckets live in the (shared) server process: start each test afresh."""
    buckets.reset()
    yield
    buckets.reset()


@pytest.fixture
def flow(sandbox):
    made: list[Flow] = []

    def make(realm: str = "individu", **kwargs) -> Flow:
        made.append(Flow(sandbox, realm, **kwargs))
        return made[-1]

    yield make
    # Close keep-alive connections before the live server stops.
    for f in made:
        f.session.close()
