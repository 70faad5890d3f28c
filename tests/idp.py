"""Helpers for the sign-in tests, on the fake France Travail of ``tests/fakeop.py``.

The fake speaks real HTTP and signs real RS256 tokens with France Travail's
paths, records every request (so tests can prove that a forged callback never
reaches the token endpoint) and can be told to answer with hostile responses
the sandbox would not give.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest

SUB = "sub-job-seeker-1"


@pytest.fixture
def idp(fakeop, settings):
    """The fake France Travail with a short read timeout (timeout tests)."""
    settings.FTAUTH = {**settings.FTAUTH, "HTTP_READ_TIMEOUT": 1.0}
    return fakeop


def start(client, realm="individu", next_url=None):
    """GET the login view; the authorization request's parameters."""
    url = f"/ftauth/login/{realm}/" + (f"?next={next_url}" if next_url else "")
    response = client.get(url)
    assert response.status_code == 302
    return {k: v[0] for k, v in parse_qs(urlsplit(response["Location"]).query).items()}


def pending_for(state):
    """The nonce and PKCE verifier of the request whose state is ``state``: derived
    from it by ftauth (keyed hash), stored nowhere."""
    from ftauth.internal.signin import derive_secret

    return SimpleNamespace(
        nonce=derive_secret(state, "nonce"), code_verifier=derive_secret(state, "pkce")
    )


def pending_cookie(client) -> list:
    """The browser's pending sign-in requests, as ftauth signed them in its cookie."""
    from django.core import signing

    from ftauth.internal.signin import PENDING_COOKIE, PENDING_SALT

    return signing.loads(client.cookies[PENDING_COOKIE].value, salt=PENDING_SALT)


def aged(value: str) -> str:
    """A pending cookie's value with every request expired (time passed)."""
    from django.core import signing

    from ftauth.internal.signin import PENDING_SALT

    pending = signing.loads(value, salt=PENDING_SALT)
    for entry in pending:
        entry[2] = time.time() - 1
    return signing.dumps(pending, salt=PENDING_SALT, compress=True)


def expire_pending(client) -> None:
    from ftauth.internal.signin import PENDING_COOKIE

    client.cookies[PENDING_COOKIE] = aged(client.cookies[PENDING_COOKIE].value)


def authorize(op, params, sub=SUB):
    """The user signs in at France Travail and consents: a code for this request."""
    return op.authorize(sub, nonce=pending_for(params["state"]).nonce)


def callback(client, op, params, **extra):
    """GET the callback as France Travail would redirect to it (``extra`` overrides)."""
    query = {
        "code": "code-never-issued",
        "state": params["state"],
        "iss": op.issuer(),
        "client_id": "ftauth-tests",
    }
    query.update(extra)
    return client.get(
        "/ftauth/callback/individu/", {k: v for k, v in query.items() if v is not None}
    )


def sign_in(client, op, next_url=None, sub=SUB):
    """The whole flow; returns the authorization parameters and the callback's response."""
    params = start(client, next_url=next_url)
    return params, callback(client, op, params, code=authorize(op, params, sub))
