"""Token endpoint calls: code exchange, refresh, client credentials.

France Travail authenticates clients with ``client_secret_post`` (id and
secret in the form body; its server misreads HTTP Basic) and wants the realm in
the token URL's query string (the realm's ``token_url`` already carries it).
A realm may use ``client_secret_basic`` instead, for other servers.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

from .errors import InvalidResponse, oauth_error
from .http import HttpClient, raise_for_transient
from .numbers import MAX_LIFETIME, bounded
from .realms import CLIENT_SECRET_BASIC, Realm


@dataclass(frozen=True)
class TokenResponse:
    """A successful token endpoint answer. Secrets are hidden from ``repr``."""

    access_token: str = field(repr=False)
    token_type: str
    expires_in: int | None
    scope: tuple[str, ...]
    refresh_token: str | None = field(default=None, repr=False)
    id_token: str | None = field(default=None, repr=False)
    # France Travail also returns the nonce in the token response; compared when present.
    nonce: str | None = field(default=None, repr=False)
    obtained_at: float = field(default_factory=time.time)

    @property
    def expires_at(self) -> float | None:
        return None if self.expires_in is None else self.obtained_at + self.expires_in

    @classmethod
    def from_json(cls, data: Any, *, obtained_at: float | None = None) -> TokenResponse:
        if not isinstance(data, dict):
            raise InvalidResponse("token response is not a JSON object")
        access_token = data.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise InvalidResponse("token response has no access_token")
        token_type = str(data.get("token_type") or "")
        if token_type.lower() != "bearer":
            raise InvalidResponse(f"unexpected token_type {token_type!r}")
        expires_in = data.get("expires_in")
        if expires_in is not None:
            # NaN, 1e999 or 10**20 would pass for a lifetime and overflow the
            # first datetime they meet: refused as the malformed answer they are.
            lifetime = bounded(expires_in, minimum=0, maximum=MAX_LIFETIME)
            if lifetime is None:
                raise InvalidResponse("token response has a malformed expires_in")
            expires_in = int(lifetime)
        scope = data.get("scope") or ""
        if isinstance(scope, list):
            scope = " ".join(str(s) for s in scope)
        for name in ("refresh_token", "id_token", "nonce"):
            value = data.get(name)
            if value is not None and not isinstance(value, str):
                raise InvalidResponse(f"token response has a malformed {name}")
        return cls(
            access_token=access_token,
            token_type="Bearer",
            expires_in=expires_in,
            scope=tuple(str(scope).split()),
            refresh_token=data.get("refresh_token") or None,
            id_token=data.get("id_token") or None,
            nonce=data.get("nonce") or None,
            obtained_at=time.time() if obtained_at is None else obtained_at,
        )


def basic_authorization(client_id: str, client_secret: str) -> str:
    """The ``Authorization`` header of ``client_secret_basic``.

    RFC 6749 2.3.1: id and secret are form-urlencoded *before* base64, so a
    secret with ``:`` or ``%`` survives.
    """
    pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode("ascii")


def request_token(
    http: HttpClient, realm: Realm, client_id: str, client_secret: str, form: dict[str, str]
) -> TokenResponse:
    """POST ``form`` to the realm's token endpoint and parse the answer.

    Raises :class:`QuotaExceeded` (429), :class:`TransportError` (no answer,
    5xx), an :class:`~ftauth.core.errors.OAuthError` subclass (4xx with an
    OAuth error) or :class:`InvalidResponse`.
    """
    headers = {"Accept": "application/json"}
    if realm.token_endpoint_auth_method == CLIENT_SECRET_BASIC:
        headers["Authorization"] = basic_authorization(client_id, client_secret)
        body = dict(form)
    else:
        body = {**form, "client_id": client_id, "client_secret": client_secret}
    response = http.post(realm.token_url, data=body, headers=headers, kind="token")
    raise_for_transient(response, "token endpoint")
    try:
        data = response.json()
    except (ValueError, RecursionError):
        raise InvalidResponse(
            f"token endpoint answered {response.status_code} without JSON"
        ) from None
    if response.status_code != 200:
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            raise oauth_error(
                data["error"],
                str(data.get("error_description") or ""),
                status=response.status_code,
            )
        raise InvalidResponse(f"token endpoint answered {response.status_code}")
    return TokenResponse.from_json(data)


def exchange_code(
    http: HttpClient,
    realm: Realm,
    client_id: str,
    client_secret: str,
    *,
    code: str,
    redirect_uri: str,
    code_verifier: str,
) -> TokenResponse:
    """Exchange an authorization code (it lives 60 seconds: call at once)."""
    return request_token(
        http,
        realm,
        client_id,
        client_secret,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        },
    )


def refresh(
    http: HttpClient, realm: Realm, client_id: str, client_secret: str, *, refresh_token: str
) -> TokenResponse:
    """Use a refresh token. ``InvalidGrant`` here means consent was withdrawn."""
    return request_token(
        http,
        realm,
        client_id,
        client_secret,
        {"grant_type": "refresh_token", "refresh_token": refresh_token},
    )


def client_credentials(
    http: HttpClient, realm: Realm, client_id: str, client_secret: str, *, scopes: list[str]
) -> TokenResponse:
    """An application token (no user), on the ``/partenaire`` realm."""
    return request_token(
        http,
        realm,
        client_id,
        client_secret,
        {"grant_type": "client_credentials", "scope": " ".join(scopes)},
    )
