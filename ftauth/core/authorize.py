"""Building the authorization request (OAuth 2.0 RFC 6749 4.1.1, OIDC Core 3.1.2.1).

``state`` and ``nonce`` carry 256 bits of randomness (the issue asks for 128 at
least); PKCE is always S256 (RFC 7636 4.2): ``plain`` would hand the verifier
to anyone who sees the authorization request.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from .realms import Realm

# token_urlsafe(32) = 32 random bytes = 256 bits, 43 characters.
RANDOM_BYTES = 32


def random_token() -> str:
    return secrets.token_urlsafe(RANDOM_BYTES)


def state_hash(state: str) -> str:
    """What we store and look up: the ``state`` itself never reaches the database."""
    return hashlib.sha256(state.encode()).hexdigest()


def s256_code_challenge(code_verifier: str) -> str:
    """RFC 7636 4.2: BASE64URL(SHA256(ASCII(code_verifier))), without padding.

    Written here rather than imported from authlib: its ``oauth2`` package costs
    every worker 3 MiB and 60 ms at start for this one line.
    """
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class AuthorizationRequest:
    """One pending authorization request; only :attr:`url` leaves the server."""

    realm: str
    url: str
    redirect_uri: str
    state: str = field(repr=False)
    nonce: str = field(repr=False)
    code_verifier: str = field(repr=False)


def claims_request(realm: Realm) -> str:
    """OIDC Core 5.5 ``claims``: the ``acr`` levels the realm accepts, and ``amr``.

    Not ``essential`` unless the site says so: ProConnect then brings the person
    back without a code when their identity provider cannot reach the level
    (les-emplois), where a plain request lets ftauth check the ``acr`` itself and
    say why it refuses.
    """
    id_token: dict[str, object] = {}
    if realm.acr_values:
        acr: dict[str, object] = {"values": list(realm.acr_values)}
        if realm.acr_essential:
            acr["essential"] = True
        id_token["acr"] = acr
    if realm.request_amr:
        id_token["amr"] = {"essential": True}
    return json.dumps({"id_token": id_token}, separators=(",", ":")) if id_token else ""


def provider_params(realm: Realm) -> dict[str, str]:
    """The authorize parameters that depend on the provider, from its data only.

    France Travail wants the realm as a query parameter; ProConnect refuses any
    parameter it does not know (``Realm.allowed_authorize_params``, enforced when
    the realm is built), so only what the realm's data asks for is added.
    """
    params = {}
    if realm.realm_parameter:
        params["realm"] = realm.path
    claims = claims_request(realm)
    if claims:
        params["claims"] = claims
    if realm.idp_hint:
        params["idp_hint"] = realm.idp_hint
    params.update(realm.extra_authorize_params)
    return params


def build_authorization_request(
    realm: Realm,
    *,
    client_id: str,
    redirect_uri: str,
    scopes: tuple[str, ...] | None = None,
    state: str | None = None,
    derive: Callable[[str, str], str] | None = None,
) -> AuthorizationRequest:
    """``derive(state, purpose)``, when given, makes the nonce and the PKCE verifier
    from the state (a keyed hash): nothing secret then needs storing until the
    callback, which derives them again."""
    state = state or random_token()
    if derive is not None:
        nonce = derive(state, "nonce")
        code_verifier = derive(state, "pkce")
    else:
        nonce = random_token()
        # RFC 7636 4.1: 43 to 128 characters from the unreserved set.
        code_verifier = secrets.token_urlsafe(64)
    params = {
        "response_type": "code",
        "client_id": client_id,
        "scope": " ".join(scopes if scopes is not None else realm.scopes_for(client_id)),
        "redirect_uri": redirect_uri,
        "state": state,
        "nonce": nonce,
        "code_challenge": s256_code_challenge(code_verifier),
        "code_challenge_method": "S256",
        **provider_params(realm),
    }
    separator = "&" if "?" in realm.authorize_url else "?"
    return AuthorizationRequest(
        realm=realm.name,
        url=f"{realm.authorize_url}{separator}{urlencode(params)}",
        redirect_uri=redirect_uri,
        state=state,
        nonce=nonce,
        code_verifier=code_verifier,
    )
