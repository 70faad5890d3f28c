"""Discovery documents and JWKS, cached.

The cache is anything with Django's ``get``/``set``/``add`` (this module does
not import Django). A realm's discovery document gives its ``issuer``, its
``jwks_uri`` and whether it promises an ``iss`` on every authorization response
(RFC 9207). The last document discovery gave is kept, so that while the server
cannot be asked the realm keeps its issuer and its RFC 9207 promise; only a
realm never discovered falls back to its known defaults. Either way a failed
discovery is asked again soon (``FALLBACK_TTL``).

The JWKS is cached too; a JWKS with no usable key only for ``FALLBACK_TTL``, so a
bad answer heals by itself. On an unknown ``kid`` it is refetched: always for
tokens from the token endpoint (TLS vouches for them, and the exchange happens
once per sign-in), at most once per ``refetch_interval`` for tokens anyone can
post (logout tokens), so a flood of forged ``kid`` values can neither turn into
a flood of requests to France Travail nor keep a real new key out.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol
from urllib.parse import urlsplit

from .errors import FTAuthError, InvalidResponse, TransportError
from .http import HttpClient
from .jwt import is_usable_jwks
from .realms import Realm

logger = logging.getLogger("ftauth.discovery")

FALLBACK_TTL = 60
# How long the last discovery document is kept to fall back on during an outage.
KNOWN_TTL = 30 * 24 * 3600


class Cache(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...
    def set(self, key: str, value: Any, timeout: float | None = None) -> None: ...
    def add(self, key: str, value: Any, timeout: float | None = None) -> bool: ...


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    jwks_uri: str
    # RFC 9207: the server promises an ``iss`` parameter on every authorization response.
    iss_parameter_supported: bool = False
    from_discovery: bool = False
    # Endpoints the document names (empty when it names none); used only by a realm
    # whose data says its endpoints are discovered (``Realm.discovered_endpoints``).
    authorization_endpoint: str = ""
    token_endpoint: str = ""
    userinfo_endpoint: str = ""
    end_session_endpoint: str = ""

    def endpoints_of(self, realm: Realm) -> Realm:
        """``realm`` with the endpoints this document names in place of its defaults."""
        found = {
            "authorize_url": self.authorization_endpoint,
            "token_url": self.token_endpoint,
            "userinfo_url": self.userinfo_endpoint,
            "end_session_url": self.end_session_endpoint,
        }
        return replace(realm, **{key: url for key, url in found.items() if url})


def _key(kind: str, url: str) -> str:
    return f"ftauth:{kind}:{hashlib.sha256(url.encode()).hexdigest()[:32]}"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, (parts.hostname or ""), parts.port or default


def _fetch_json(http: HttpClient, url: str, kind: str) -> dict[str, Any]:
    response = http.get(url, headers={"Accept": "application/json"}, kind=kind)
    if response.status_code != 200:
        raise TransportError(f"{url} answered {response.status_code}", status=response.status_code)
    try:
        data = response.json()
    except (ValueError, RecursionError):
        raise InvalidResponse(f"{url} did not answer JSON") from None
    if not isinstance(data, dict):
        raise InvalidResponse(f"{url} did not answer a JSON object")
    return data


def _parse_discovery(realm: Realm, data: dict[str, Any], explicit_issuer: bool) -> ProviderMetadata:
    issuer = data.get("issuer")
    jwks_uri = data.get("jwks_uri")
    if not isinstance(issuer, str) or not isinstance(jwks_uri, str):
        raise InvalidResponse("discovery document lacks issuer or jwks_uri")
    # A discovery document may only speak for its own server (OIDC Discovery 4.3,
    # relaxed: France Travail's issuer adds an explicit :443 to the host).
    if _origin(issuer) != _origin(realm.discovery_url):
        raise InvalidResponse("discovery document names an issuer on another server")
    endpoints = {}
    if realm.discovered_endpoints:
        for key in (
            "authorization_endpoint",
            "token_endpoint",
            "userinfo_endpoint",
            "end_session_endpoint",
        ):
            url = data.get(key)
            if url is None:
                continue
            # Tokens and secrets go to these: only to the server that answered.
            if not isinstance(url, str) or _origin(url) != _origin(realm.discovery_url):
                raise InvalidResponse(f"discovery document names a {key} on another server")
            endpoints[key] = url
    return ProviderMetadata(
        issuer=realm.issuer if explicit_issuer else issuer,
        jwks_uri=jwks_uri,
        iss_parameter_supported=data.get("authorization_response_iss_parameter_supported") is True,
        from_discovery=True,
        **endpoints,
    )


def _known(entry: Any) -> tuple[ProviderMetadata, float] | None:
    """A cached discovery entry (metadata, time to ask again), or None if unreadable."""
    if not isinstance(entry, dict) or not isinstance(entry.get("metadata"), dict):
        return None
    try:
        return ProviderMetadata(**entry["metadata"]), float(entry["refresh_at"])
    except (TypeError, ValueError, KeyError):
        return None  # written by another version of ftauth


def get_metadata(
    realm: Realm,
    http: HttpClient,
    cache: Cache,
    *,
    ttl: int,
    explicit_issuer: bool = False,
    now: float | None = None,
) -> ProviderMetadata:
    """The realm's metadata: cached, discovered, last discovered, or the known defaults."""
    now = time.time() if now is None else now
    key = _key("discovery", realm.discovery_url)
    known = _known(cache.get(key))
    if known is not None and known[1] > now:
        return known[0]
    try:
        metadata = _parse_discovery(
            realm, _fetch_json(http, realm.discovery_url, "discovery"), explicit_issuer
        )
        refresh_in = ttl
    except FTAuthError as exc:
        if known is not None and known[0].from_discovery:
            metadata = known[0]
            logger.warning(
                "discovery for realm %s unavailable (%s); keeping its last document",
                realm.name,
                exc,
            )
        else:
            metadata = ProviderMetadata(issuer=realm.issuer, jwks_uri=realm.jwks_url)
            logger.warning(
                "discovery for realm %s unavailable (%s); using defaults", realm.name, exc
            )
        refresh_in = FALLBACK_TTL
    cache.set(key, {"metadata": asdict(metadata), "refresh_at": now + refresh_in}, KNOWN_TTL)
    return metadata


def get_jwks(
    jwks_uri: str,
    http: HttpClient,
    cache: Cache,
    *,
    ttl: int,
    refetch_interval: int,
    refresh: bool = False,
    rate_limited: bool = True,
) -> dict[str, Any]:
    """The JWKS, cached; ``refresh`` refetches it, unless ``rate_limited`` and one
    was done less than ``refetch_interval`` ago (the cached copy comes back)."""
    key = _key("jwks", jwks_uri)
    budget = _key("jwks-refetch", jwks_uri)
    cached = cache.get(key)
    if isinstance(cached, dict) and not refresh:
        return cached
    if isinstance(cached, dict) and rate_limited and not cache.add(budget, 1, refetch_interval):
        return cached  # refetched moments ago: a new unknown kid is not worth another request
    data = _fetch_json(http, jwks_uri, "jwks")
    if not isinstance(data.get("keys"), list):
        raise InvalidResponse("JWKS has no keys list")
    if is_usable_jwks(data):
        cache.set(key, data, ttl)
    else:
        logger.warning("JWKS at %s has no usable key; asking again in %d s", jwks_uri, FALLBACK_TTL)
        cache.set(key, data, FALLBACK_TTL)
    # Every fetch spends the budget, forced ones too: logout tokens wait their turn.
    cache.set(budget, 1, refetch_interval)
    return data
