"""Django's cache as the sign-in path uses it: a cache that fails is an empty cache.

What ftauth keeps there for sign-in (discovery documents, JWKS) is a copy of what
France Travail serves, so an unreachable cache (Redis stopped, a network split) must
not fail a sign-in: the copy is fetched again instead. The first failure of a
:class:`GuardedCache` is logged as one line with the backend's own message, and the
cache is not asked again for the rest of its life (one request), so a dead Redis
costs one connection attempt and one log line per request, not a traceback per call.

Only the errors a cache backend raises when its server cannot be used are caught
(:data:`CACHE_ERRORS`): a programming error (a wrong argument, an unpicklable
value) still surfaces as itself.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT, InvalidCacheBackendError
from django.db import DatabaseError

logger = logging.getLogger("ftauth.cache")


def _backend_errors() -> tuple[type[BaseException], ...]:
    # OSError: sockets and the file cache; DatabaseError: the database cache; the
    # client libraries of Redis and memcached have their own bases, when installed.
    # A CACHE_ALIAS missing from CACHES (check ftauth.E011) is no cache either.
    errors: list[type[BaseException]] = [OSError, DatabaseError, InvalidCacheBackendError]
    try:
        from redis.exceptions import RedisError

        errors.append(RedisError)
    except ImportError:  # pragma: no cover - redis is optional
        pass
    try:
        from pymemcache.exceptions import MemcacheError

        errors.append(MemcacheError)
    except ImportError:
        pass
    try:
        import pylibmc

        errors.append(pylibmc.Error)
    except ImportError:
        pass
    return tuple(errors)


CACHE_ERRORS: tuple[type[BaseException], ...] = _backend_errors()


class GuardedCache:
    """``get``/``set``/``add`` of one Django cache; after a backend failure, a cache
    that holds nothing and remembers nothing."""

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self.failed = False

    def _call(self, operation: str, *args: Any, otherwise: Any) -> Any:
        if self.failed:
            return otherwise
        try:
            return getattr(caches[self.alias], operation)(*args)
        except CACHE_ERRORS as exc:
            self.failed = True
            logger.warning(
                "cache %r unavailable (%s: %s); going on without it for this request",
                self.alias,
                type(exc).__name__,
                exc,
            )
            return otherwise

    def get(self, key: str, default: Any = None) -> Any:
        return self._call("get", key, default, otherwise=default)

    def set(self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT) -> None:
        self._call("set", key, value, timeout, otherwise=None)

    def add(self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT) -> bool:
        # Without a cache nothing is shared to rate-limit against: the caller goes on.
        return self._call("add", key, value, timeout, otherwise=True)


_missing_aliases: set[str] = set()


def shared(alias: str) -> Any:
    """``caches[alias]``; for an alias missing from ``CACHES`` (check ftauth.E011),
    this process's own memory, so a typo in settings is no 500 (one warning)."""
    try:
        return caches[alias]
    except InvalidCacheBackendError:
        if alias not in _missing_aliases:
            _missing_aliases.add(alias)
            logger.warning(
                "cache %r is not in CACHES (manage.py check): using process memory", alias
            )
        from django.core.cache.backends.locmem import LocMemCache

        return LocMemCache(f"ftauth-missing-{alias}", {})
