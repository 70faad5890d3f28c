"""Application tokens (client credentials on ``/partenaire``), shared by every process.

An application token is the same for every user and lives about 25 minutes,
so it is kept in Django's cache (``FTAUTH['CACHE_ALIAS']``) where every
process finds it, encrypted with ``FTAUTH['TOKEN_KEYS']`` like tokens at rest
(a cache is often less guarded than a database). One entry per scope set.

Renewal starts ``REFRESH_MARGIN`` seconds before expiry and is done by one
caller across all processes: the one that wins a lock taken with
``cache.add`` (atomic on Redis). While it renews, the others keep using the
old token, which is still valid; when there is no token at all they wait for
the renewal, for a bounded time, then read it from the cache. A failed
renewal that asking again cannot cure (wrong client secret or scopes, the
token endpoint's own quota) is remembered for a few seconds, so that it does
not turn every page view into a request to the identity server.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ftauth import crypto
from ftauth.core import tokens as token_endpoint
from ftauth.core.errors import (
    ConfigurationError,
    InvalidClient,
    InvalidScope,
    QuotaExceeded,
    TransportError,
)
from ftauth.core.http import HttpClient
from ftauth.core.realms import ACCESS_TOKEN_LIFETIME, Realm

from .quota import FallbackCache

logger = logging.getLogger("ftauth.api")

# A cached token is dropped this long before it expires: a call made with it
# must still reach the API in time.
EXPIRY_SAFETY = 5
# How long a failed renewal answers for the identity server.
FAILURE_MEMORY = 2
POLL_INTERVAL = 0.05


class ApplicationTokenTimeout(TransportError):
    """Another process took the renewal lock and no token appeared in time."""


@dataclass(frozen=True)
class CachedToken:
    access_token: str = field(repr=False)
    expires_at: float
    renew_at: float


def scope_set(scopes: Iterable[str]) -> tuple[str, ...]:
    """Scopes as a canonical key: order and repetition do not make another token."""
    return tuple(sorted({s for s in scopes if s}))


class ApplicationTokens:
    """Client-credentials tokens of one application, cached for all processes."""

    def __init__(
        self,
        *,
        cache: Any,
        http: HttpClient,
        realm: Realm,
        client_id: str,
        client_secret: str,
        refresh_margin: float,
        lock_timeout: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        # A failing shared cache: this process keeps its own token meanwhile.
        self.cache = cache if isinstance(cache, FallbackCache) else FallbackCache(cache)
        self.http = http
        self.realm = realm
        self.client_id = client_id
        self._client_secret = client_secret
        self.refresh_margin = refresh_margin
        self.lock_timeout = lock_timeout
        self.clock = clock
        self.sleep = sleep

    def __repr__(self) -> str:
        return f"<ApplicationTokens {self.realm.name} client {self.client_id!r}>"

    def _key(self, scopes: tuple[str, ...]) -> str:
        # The token URL is part of the key: a sandbox token is never sent to production.
        material = "\n".join([self.client_id, self.realm.token_url, " ".join(scopes)])
        return f"ftauth:apptoken:{hashlib.sha256(material.encode()).hexdigest()[:32]}"

    def get(self, scopes: Iterable[str]) -> str:
        """A valid application token for ``scopes``, renewed once for everyone."""
        wanted = scope_set(scopes)
        key = self._key(wanted)
        waited_polls = 0
        max_polls = max(1, math.ceil(self.lock_timeout / POLL_INTERVAL))
        while True:
            cached = self._read(key)
            now = self.clock()
            if cached is not None and now < cached.renew_at:
                return cached.access_token
            usable = cached if cached is not None and now < cached.expires_at else None
            failure = self.cache.get(f"{key}:failed")
            if failure is not None:
                if usable is not None:
                    return usable.access_token
                raise self._failure_error(failure, wanted)
            owner = secrets.token_hex(8)
            if self.cache.add(f"{key}:lock", owner, self._lock_ttl()):
                try:
                    return self._renew(key, wanted)
                finally:
                    self._release(f"{key}:lock", owner)
            if usable is not None:
                return usable.access_token  # another process renews; this one is still good
            if waited_polls >= max_polls:
                raise ApplicationTokenTimeout(
                    "no application token: another process is renewing it and did not "
                    f"finish within {self.lock_timeout:g} s"
                )
            self.sleep(POLL_INTERVAL)
            waited_polls += 1

    def discard(self, scopes: Iterable[str], rejected_token: str) -> None:
        """Forget the cached token if it is ``rejected_token`` (an API answered 401)."""
        key = self._key(scope_set(scopes))
        cached = self._read(key)
        if cached is not None and hmac.compare_digest(
            cached.access_token.encode(), rejected_token.encode()
        ):
            self.cache.delete(key)

    def _renew(self, key: str, scopes: tuple[str, ...]) -> str:
        # Another process may have finished a renewal between our read and the lock.
        cached = self._read(key)
        if cached is not None and self.clock() < cached.renew_at:
            return cached.access_token
        asked_at = self.clock()
        try:
            response = token_endpoint.client_credentials(
                self.http,
                self.realm,
                self.client_id,
                self._client_secret,
                scopes=list(scopes),
            )
        except (InvalidClient, InvalidScope) as exc:
            self._remember_failure(key, exc)
            raise self._configuration_error(exc.error, scopes) from exc
        except QuotaExceeded as exc:
            self._remember_failure(key, exc)
            raise
        lifetime = response.expires_in if response.expires_in is not None else ACCESS_TOKEN_LIFETIME
        # The clock started before the request: the token expires no later than this.
        expires_at = asked_at + lifetime - EXPIRY_SAFETY
        renew_at = expires_at - min(self.refresh_margin, lifetime / 2)
        token = CachedToken(response.access_token, expires_at=expires_at, renew_at=renew_at)
        self._write(key, token)
        logger.info(
            "application token obtained for scopes %s (valid %d s)", " ".join(scopes), lifetime
        )
        return token.access_token

    def _read(self, key: str) -> CachedToken | None:
        sealed = self.cache.get(key)
        if not isinstance(sealed, str):
            return None
        try:
            data = json.loads(crypto.decrypt(sealed))
            return CachedToken(
                access_token=str(data["access_token"]),
                expires_at=float(data["expires_at"]),
                renew_at=float(data["renew_at"]),
            )
        except crypto.TokenDecryptionError:
            # Encrypted with a key since removed from TOKEN_KEYS: get a new one.
            return None
        except (ValueError, KeyError, TypeError):
            logger.warning("malformed application token entry in the cache; renewing it")
            return None

    def _write(self, key: str, token: CachedToken) -> None:
        sealed = crypto.encrypt(
            json.dumps(
                {
                    "access_token": token.access_token,
                    "expires_at": token.expires_at,
                    "renew_at": token.renew_at,
                }
            )
        )
        ttl = max(1, math.floor(token.expires_at - self.clock()))
        self.cache.set(key, sealed, ttl)

    def _lock_ttl(self) -> int:
        return max(1, math.ceil(self.lock_timeout))

    def _release(self, lock_key: str, owner: str) -> None:
        # Only our own lock: if it expired and another caller holds it now,
        # deleting it would let a third renew at the same time.
        if self.cache.get(lock_key) == owner:
            self.cache.delete(lock_key)

    def _remember_failure(
        self, key: str, exc: InvalidClient | InvalidScope | QuotaExceeded
    ) -> None:
        """Failures that asking again at once cannot cure. (A timeout or a 5xx is
        not remembered: the next caller tries again, one at a time.)"""
        if isinstance(exc, QuotaExceeded):
            failure: dict[str, Any] = {"kind": "quota", "retry_after": exc.retry_after}
            memory = min(max(exc.retry_after or 1.0, 1.0), 30.0)
        else:
            failure = {"kind": exc.error}
            memory = FAILURE_MEMORY
        self.cache.set(f"{key}:failed", failure, math.ceil(memory))

    def _failure_error(self, failure: Any, scopes: tuple[str, ...]) -> Exception:
        kind = failure.get("kind") if isinstance(failure, dict) else None
        if kind in {"invalid_client", "invalid_scope"}:
            return self._configuration_error(kind, scopes)
        return QuotaExceeded(
            "the token endpoint's quota is exceeded", retry_after=failure.get("retry_after")
        )

    def _configuration_error(self, error: str, scopes: tuple[str, ...]) -> ConfigurationError:
        if error == "invalid_client":
            return ConfigurationError(
                f"France Travail refused this application's credentials on the "
                f"/{self.realm.name} realm (invalid_client): check FTAUTH['CLIENT_ID'] and "
                "FTAUTH['CLIENT_SECRET'] (the secret is never shown here)."
            )
        return ConfigurationError(
            f"France Travail refused the scopes {' '.join(scopes)!r} for this application "
            "(invalid_scope): set FTAUTH['APPLICATION_SCOPES'] (or the scopes passed to "
            "ftauth.api.application()) to scopes the application is granted on francetravail.io."
        )
