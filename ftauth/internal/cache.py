"""Django's cache as the sign-in path uses it: a cache that fails is an empty cache.

What ftauth keeps there for sign-in (discovery documents, JWKS) is a copy of what
France Travail serves, so an unreachable cache (Redis stopped, a network split) must
not fail a sign-in: the copy is fetched again instead. The first failure of a
:class:`GuardedCache` is logged as one line with the backend's own message, and the
cache is not asked again for the rest of its life (one request), so a dead Redis
costs one connection attempt and one log line per request, not a traceback per call.

Only the errors a cache backend raises when its server cannot be used are caught
(:func:`cache_errors`): a programming error (a wrong argument, an unpicklable
value) still surfaces as itself.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT, InvalidCacheBackendError
from django.db import DatabaseError
from django.utils.module_loading import import_string

logger = logging.getLogger("ftauth.cache")

# Cache backends whose entries live in one process: ftauth's shared state (JWKS and
# discovery, application tokens, the quota's schedule) would be kept once per worker,
# and workers together would exceed France Travail's quota. The system check
# (ftauth.W040) and ftauth_doctor both ask :func:`is_per_process`.
PER_PROCESS_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


def is_per_process(backend: str | type) -> bool:
    """Whether a cache backend, named as in ``CACHES`` or given as its class, keeps its
    entries in one process (a subclass of one of :data:`PER_PROCESS_CACHES` does too).

    A path that cannot be imported is not judged here: Django reports it.
    """
    if isinstance(backend, str):
        try:
            backend = import_string(backend)
        except ImportError:
            return False
    if not isinstance(backend, type):
        return False
    return issubclass(backend, tuple(import_string(path) for path in PER_PROCESS_CACHES))


# Client libraries whose errors a cache backend raises: (module, attribute of its base).
_CLIENT_ERRORS = (
    ("redis.exceptions", "RedisError"),
    ("pymemcache.exceptions", "MemcacheError"),
    ("pylibmc", "Error"),
)
_BASE_ERRORS: tuple[type[BaseException], ...] = (OSError, DatabaseError, InvalidCacheBackendError)


def cache_errors() -> tuple[type[BaseException], ...]:
    """What a cache backend raises when its server cannot be used.

    OSError: sockets and the file cache; DatabaseError: the database cache; a
    CACHE_ALIAS missing from CACHES (check ftauth.E011) is no cache either; the
    client libraries of Redis and memcached have their own bases. Those are looked
    up among the modules already imported, never imported here: a backend imports
    its client before it can raise, and importing redis on a site that does not
    use it cost every worker 6 MiB and a quarter of a second at start.
    """
    errors = _BASE_ERRORS
    for module_name, attribute in _CLIENT_ERRORS:
        module = sys.modules.get(module_name)
        error = getattr(module, attribute, None) if module is not None else None
        if isinstance(error, type) and issubclass(error, BaseException):
            errors = (*errors, error)
    return errors


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
        except cache_errors() as exc:
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
