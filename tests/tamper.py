"""Tamper modes: the sandbox misbehaving one way, through its test hook.

Each mode breaks exactly one thing a client must check (the callback's ``iss``
and ``client_id``, one rule of OpenID Connect Core 3.1.3.7 for the ID token,
userinfo's ``sub``, the token endpoint's availability) and leaves everything
else valid, so that a test proves that one check over real HTTP. The shipped
sandbox knows nothing of them: :class:`Tamper` is a ``SandboxHooks``, and the
``tamper`` fixture puts it in ``FTAUTH_SANDBOX["HOOKS"]``.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from ftauth.sandbox.clients import SandboxClient
from ftauth.sandbox.hooks import SandboxHooks
from ftauth.sandbox.keys import KEY_SIZE, current_signing_key
from ftauth.sandbox.models import IssuedToken
from ftauth.sandbox.site import RealmSite, issuer_for
from ftauth.sandbox.views.common import oauth_error

OTHER_CLIENT = "sandbox-other-client"
WRONG_SUB = "sandbox-tampered-sub"

MODES = frozenset(
    {
        "iss_param_wrong",
        "iss_param_missing",
        "client_id_param_wrong",
        "id_token_wrong_iss",
        "id_token_wrong_aud",
        "id_token_multi_aud_no_azp",
        "id_token_untrusted_extra_aud",
        "id_token_wrong_azp",
        "id_token_expired",
        "id_token_iat_future",
        "id_token_too_old",
        "id_token_wrong_nonce",
        "token_response_wrong_nonce",
        "id_token_no_sub",
        "id_token_bad_signature",
        "id_token_alg_none",
        "id_token_hs256",
        "id_token_unknown_kid",
        "userinfo_wrong_sub",
        "token_endpoint_500",
        "token_endpoint_429",
        "token_endpoint_slow",
        "token_endpoint_not_json",
    }
)


def wrong_nonce() -> str:
    return f"tampered-{secrets.token_urlsafe(8)}"


def sign_with_unpublished_key(claims: dict[str, Any], realm: str, *, real_kid: bool) -> str:
    """RS256 by a key the JWKS does not publish.

    Under the realm's real ``kid`` the signature is bad; otherwise the ``kid`` is unknown.
    """
    if real_kid:
        kid = current_signing_key(realm).kid
    else:
        kid = f"sandbox-unknown-{secrets.token_urlsafe(6)}"
    key = RSAKey.generate_key(KEY_SIZE, private=True)
    return jwt.encode({"alg": "RS256", "kid": kid, "typ": "JWT"}, claims, key)


class Tamper(SandboxHooks):
    """The sandbox with ``modes`` switched on.

    ``token_endpoint_slow`` holds the token request until :meth:`release` (the test
    has its answer) or ``slow_seconds`` at most: a timeout is tested against a server
    that waits for an event, never in a race with a short delay (a busy machine).
    """

    def __init__(self, *modes: str, slow_seconds: float = 30.0) -> None:
        unknown = set(modes) - MODES
        if unknown:
            raise ValueError(
                f"unknown tamper modes: {', '.join(sorted(unknown))}; "
                f"known modes: {', '.join(sorted(MODES))}"
            )
        self.modes = frozenset(modes)
        self.slow_seconds = slow_seconds
        self.released = threading.Event()

    def release(self) -> None:
        """Let a held token request go on (its client has given up by now)."""
        self.released.set()

    def authorization_params(
        self, params: list[tuple[str, str]], *, site: RealmSite, client: SandboxClient
    ) -> list[tuple[str, str]]:
        values = dict(params)
        if "iss_param_wrong" in self.modes:
            # A real issuer, of another realm: a mix-up (RFC 9207), not garbage.
            other = "employeur" if site.realm == "individu" else "individu"
            values["iss"] = issuer_for(site.base, other)
        elif "iss_param_missing" in self.modes:
            del values["iss"]
        if "client_id_param_wrong" in self.modes:
            values["client_id"] = OTHER_CLIENT
        return list(values.items())

    def id_token_claims(self, claims: dict[str, Any], *, client: SandboxClient) -> dict[str, Any]:
        modes = self.modes
        claims = dict(claims)
        now = int(time.time())
        lifetime = claims["exp"] - claims["iat"]
        if "id_token_expired" in modes:
            claims["iat"], claims["exp"] = now - 900, now - 600
        elif "id_token_iat_future" in modes:
            claims["iat"], claims["exp"] = now + 600, now + 600 + lifetime
        elif "id_token_too_old" in modes:
            # Issued 3 h ago (older than the 2 h 30 lifetime) yet not expired.
            claims["iat"], claims["exp"] = now - 3 * 3600, now + 600
        if "id_token_wrong_iss" in modes:
            claims["iss"] += "/"
        if "id_token_wrong_aud" in modes:
            claims["aud"] = OTHER_CLIENT
            del claims["azp"]
        elif "id_token_multi_aud_no_azp" in modes:
            claims["aud"] = [client.client_id, OTHER_CLIENT]
            del claims["azp"]
        elif "id_token_untrusted_extra_aud" in modes:
            claims["aud"] = [client.client_id, OTHER_CLIENT]
            claims["azp"] = client.client_id
        elif "id_token_wrong_azp" in modes:
            claims["aud"] = [client.client_id, OTHER_CLIENT]
            claims["azp"] = OTHER_CLIENT
        if "id_token_wrong_nonce" in modes and claims.get("nonce"):
            claims["nonce"] = wrong_nonce()
        if "id_token_no_sub" in modes:
            claims.pop("sub", None)
        return claims

    def sign_id_token(
        self, claims: dict[str, Any], *, realm: str, client: SandboxClient
    ) -> str | None:
        if "id_token_alg_none" in self.modes:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return jwt.encode({"alg": "none"}, claims, None, algorithms=["none"])
        if "id_token_hs256" in self.modes:
            # What a server might do when misconfigured: HMAC keyed by the client secret.
            key = OctKey.import_key(client.client_secret)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return jwt.encode({"alg": "HS256"}, claims, key, algorithms=["HS256"])
        if "id_token_bad_signature" in self.modes:
            return sign_with_unpublished_key(claims, realm, real_kid=True)
        if "id_token_unknown_kid" in self.modes:
            return sign_with_unpublished_key(claims, realm, real_kid=False)
        return None

    def token_endpoint(
        self, request: HttpRequest, answer: Callable[[], HttpResponse]
    ) -> HttpResponse:
        modes = self.modes
        if "token_endpoint_500" in modes:
            return HttpResponse(
                "<h1>Server Error (500)</h1>", status=500, content_type="text/html; charset=utf-8"
            )
        if "token_endpoint_429" in modes:
            return oauth_error("too_many_requests", "Quota exceeded", 429, {"Retry-After": "7"})
        if "token_endpoint_not_json" in modes:
            return HttpResponse(
                "<html><body>Maintenance en cours</body></html>",
                content_type="text/html; charset=utf-8",
            )
        if "token_endpoint_slow" in modes and self.released.wait(self.slow_seconds):
            # Its client gave up long ago, and the test is ending: touch nothing
            # (the test database is being flushed).
            return HttpResponse(status=503)
        response = answer()
        if "token_response_wrong_nonce" in modes and response.status_code == 200:
            # The nonce France Travail repeats at the top of the code exchange's answer.
            body = json.loads(response.content)
            if body.get("nonce"):
                body["nonce"] = wrong_nonce()
                response.content = json.dumps(body)
        return response

    def userinfo_claims(self, claims: dict[str, str], *, token: IssuedToken) -> dict[str, str]:
        if "userinfo_wrong_sub" in self.modes:
            return {**claims, "sub": WRONG_SUB}
        return claims


@pytest.fixture
def tamper(settings):
    """``tamper("id_token_wrong_aud")`` makes the sandbox misbehave so until the test ends.

    The other ``FTAUTH_SANDBOX`` options of the test are kept.
    """

    made: list[Tamper] = []

    def switch(*modes: str, slow_seconds: float = 30.0) -> Tamper:
        current = getattr(settings, "FTAUTH_SANDBOX", None)
        options = dict(current) if isinstance(current, Mapping) else {}
        hooks = Tamper(*modes, slow_seconds=slow_seconds)
        made.append(hooks)
        settings.FTAUTH_SANDBOX = {**options, "HOOKS": hooks}
        return hooks

    yield switch
    for hooks in made:  # no server thread outlives its test
        hooks.release()
