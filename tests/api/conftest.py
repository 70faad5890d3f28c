"""Fixtures of the API tests: a fake clock, and the caches processes share."""

from __future__ import annotations

import os
import threading
import uuid

import pytest
from django.core.cache.backends.locmem import LocMemCache


def _redis_url() -> str:
    """The run's Redis database when the run uses Redis (CACHE_URL), else database 3.

    Redis tests run even when the default cache is local memory; every test
    uses its own key prefix, so runs sharing a database do not meet.
    """
    cache_url = os.environ.get("CACHE_URL", "")
    if cache_url.startswith("rediscache://"):
        return "redis://" + cache_url.removeprefix("rediscache://").split("?", 1)[0]
    return os.environ.get("FTAUTH_TEST_REDIS_URL", "redis://127.0.0.1:6379/3")


REDIS_URL = _redis_url()


class FakeClock:
    """Wall-clock seconds that only move when someone sleeps (or a test says so)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def redis_available() -> str | None:
    """Why Redis cannot be used, or None when it can."""
    try:
        import redis
    except ImportError:
        return "the redis package is not installed"
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        return (
            f"Redis is not running at {REDIS_URL} ({type(exc).__name__}); make services starts it"
        )
    return None


def make_redis_cache(prefix: str):
    from django.core.cache.backends.redis import RedisCache

    return RedisCache(REDIS_URL, {"KEY_PREFIX": prefix})


@pytest.fixture
def locmem_cache():
    cache = LocMemCache(f"ftauth-api-{uuid.uuid4().hex}", {})
    yield cache
    cache.clear()


@pytest.fixture
def redis_cache():
    reason = redis_available()
    if reason:
        pytest.skip(reason)
    cache = make_redis_cache(f"ftauth-test-{uuid.uuid4().hex}")
    yield cache
    client = cache._cache.get_client(write=True)
    for key in client.scan_iter(f"{cache.key_prefix}:*"):
        client.delete(key)
    cache.close()


@pytest.fixture(params=["locmem", pytest.param("redis", marks=pytest.mark.redis)])
def shared_cache(request):
    """Each test runs on the development cache and on the production one."""
    return request.getfixturevalue(f"{request.param}_cache")


@pytest.fixture
def fake_ft():
    from .fake_ft import FakeFranceTravail

    with FakeFranceTravail() as server:
        yield server


def fake_ft_settings(fake, **overrides):
    from django.conf import settings

    from ftauth.conf import load_settings

    raw = {
        "CLIENT_ID": fake.client_id,
        "CLIENT_SECRET": fake.client_secret,
        "API_URL": fake.url,
        "REALMS": {"partenaire": {"server": fake.url}},
        "TOKEN_KEYS": settings.FTAUTH["TOKEN_KEYS"],
        **overrides,
    }
    return load_settings(raw)


def make_tokens(fake, cache, clock, *, sleep=None, lock_timeout=5.0, client_secret=None):
    from ftauth.api.app_tokens import ApplicationTokens
    from ftauth.core.http import HttpClient, HttpConfig

    conf = fake_ft_settings(fake)
    return ApplicationTokens(
        cache=cache,
        http=HttpClient(HttpConfig(retries=0)),
        realm=conf.realm("partenaire"),
        client_id=conf.client_id,
        client_secret=client_secret or conf.client_secret,
        refresh_margin=conf.refresh_margin,
        lock_timeout=lock_timeout,
        clock=clock,
        sleep=sleep or clock.sleep,
    )


def make_app_client(
    fake, cache, clock, *, tokens=None, scopes=("api_offresdemploiv2",), background=False, **conf
):
    from ftauth.api.client import ApiClient
    from ftauth.api.credentials import ApplicationCredentials
    from ftauth.api.quota import RateLimiter, namespace_for
    from ftauth.core.http import HttpClient, HttpConfig

    settings = fake_ft_settings(fake, **conf)
    tokens = tokens or make_tokens(fake, cache, clock)
    limiter = RateLimiter(
        cache,
        namespace=namespace_for(settings.client_id),
        rates=settings.api_rate_limits,
        default_rate=settings.api_default_rate,
        max_wait=settings.api_max_wait,
        max_waiting=settings.api_max_waiting,
        clock=clock,
        sleep=clock.sleep,
    )
    return ApiClient(
        ApplicationCredentials(tokens, scopes),
        api_url=settings.api_url,
        http=HttpClient(HttpConfig(retries=0)),
        limiter=limiter,
        max_retries=settings.api_max_retries,
        retry_after_cap=settings.api_retry_after_cap,
        time_budget=settings.api_time_budget,
        background=background,
        sleep=clock.sleep,
        clock=clock,
        jitter=lambda wait: 0.1,
    )
