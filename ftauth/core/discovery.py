"""Discovery documents and JWKS, cached.

The cache is anything with Django's ``get``/``set``/``add`` (this module does
not import Django). A realm's discovery document gives its ``issuer`` and
``jwks_uri``; when it cannot be had, the realm's known defaults serve, cached
briefly so that a flapping server is asked again soon. The JWKS is cached too
and refetched at most once per ``refetch_interval`` when a token names an
unknown ``kid`` (key rotation), so a flood of forged ``kid`` values cannot
turn into a flood of requests to France Travail.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from .errors import FTAuthError, InvalidResponse, TransportError
from .http import HttpClient
from .realms import Realm

logger = logging.getLogger("ftauth.discovery")

FALLBACK_TTL = 60


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


def _key(kind: str, url: str) -> str:
    return f"ftauth:{kind}:{hashlib.sha256(url.encode()).hexdigest()[:32]}"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, (parts.hostname or ""), parts.port or default


def _fetch_json(http: HttpClient, url: str) -> dict[str, Any]:
    response = http.get(url, headers={"Accept": "application/json"})
    if response.status_code != 200:
        raise TransportError(f"{url} answered {response.status_code}", status=response.status_code)
    try:
        data = response.json()
    except ValueError:
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
    return ProviderMetadata(
        issuer=realm.issuer if explicit_issuer else issuer,
        jwks_uri=jwks_uri,
        iss_parameter_supported=data.get("authorization_response_iss_parameter_supported") is True,
        from_discovery=True,
    )


def get_metadata(
    realm: Realm, http: HttpClient, cache: Cache, *, ttl: int, explicit_issuer: bool = False
) -> ProviderMetadata:
    """The realm's metadata, from cache, discovery, or the realm's known defaults."""
    key = _key("discovery", realm.discovery_url)
    cached = cache.get(key)
    if isinstance(cached, dict):
        return ProviderMetadata(**cached)
    try:
        metadata = _parse_discovery(realm, _fetch_json(http, realm.discovery_url), explicit_issuer)
        timeout = ttl
    except FTAuthError as exc:
        logger.warning("discovery for realm %s unavailable (%s); using defaults", realm.name, exc)
        metadata = ProviderMetadata(issuer=realm.issuer, jwks_uri=realm.jwks_url)
        timeout = FALLBACK_TTL
    cache.set(key, asdict(metadata), timeout)
    return metadata


def get_jwks(
    jwks_uri: str,
    http: HttpClient,
    cache: Cache,
    *,
    ttl: int,
    refetch_interval: int,
    refresh: bool = False,
) -> dict[str, Any]:
    """The JWKS, cached; ``refresh`` refetches unless one was done recently."""
    key = _key("jwks", jwks_uri)
    cached = cache.get(key)
    if isinstance(cached, dict) and not refresh:
        return cached
    if cached is not None and not cache.add(_key("jwks-refetch", jwks_uri), 1, refetch_interval):
        return cached  # refetched moments ago: a new unknown kid is not worth another request
    data = _fetch_json(http, jwks_uri)
    if not isinstance(data.get("keys"), list):
        raise InvalidResponse("JWKS has no keys list")
    cache.set(key, data, ttl)
    cache.add(_key("jwks-refetch", jwks_uri), 1, refetch_interval)
    return data
