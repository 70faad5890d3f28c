"""Code run in child processes (``multiprocessing`` spawn): each is a separate Django
process, as a production web worker would be, sharing only the Redis cache with
the others and reaching the sandbox over HTTP."""

from __future__ import annotations

import os
import time
from typing import Any

SEARCH = "offresdemploi/v2/offres/search"


def setup_django(sandbox_url: str, redis_url: str, key_prefix: str, client_id: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django

    django.setup()
    from django.test.utils import override_settings

    from tests.conftest import sandbox_ftauth_settings

    # override_settings, not an assignment: it says so (setting_changed), and ftauth's
    # settings read at start-up (the app's checks) are read again.
    override_settings(
        CACHES={
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": redis_url,
                "KEY_PREFIX": key_prefix,
            }
        },
        # Four workers of one host that may all wait for their turn.
        FTAUTH=sandbox_ftauth_settings(sandbox_url, CLIENT_ID=client_id, API_MAX_WAITING=4),
    ).enable()

    from django.core.cache import caches

    assert caches["default"].key_prefix == key_prefix, "the shared cache is not the test's"


def call_offers(
    sandbox_url: str,
    redis_url: str,
    key_prefix: str,
    client_id: str,
    calls: int,
    barrier: Any,
    results: Any,
) -> None:
    """Make ``calls`` searches as fast as ftauth lets this process; report what happened."""
    setup_django(sandbox_url, redis_url, key_prefix, client_id)
    from ftauth import api
    from ftauth.core.errors import FTAuthError, QuotaExceeded

    outcome: dict[str, Any] = {"pid": os.getpid(), "ok": 0, "quota_exceeded": 0, "errors": []}
    barrier.wait(timeout=60)
    started = time.time()
    for _ in range(calls):
        try:
            api.application().get(SEARCH, params={"range": "0-1"})
            outcome["ok"] += 1
        except QuotaExceeded:
            outcome["quota_exceeded"] += 1
        except FTAuthError as exc:
            outcome["errors"].append(f"{type(exc).__name__}: {exc}")
    outcome["elapsed"] = time.time() - started
    results.put(outcome)
