"""The cache guard's list of backend errors (ftauth.cache)."""

import subprocess
import sys

import pytest

from ftauth.internal.cache import cache_errors


def test_importing_the_cache_guard_imports_no_cache_client():
    code = "import ftauth.internal.cache, sys; print('redis' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cache_errors_include_redis_once_its_client_is_loaded():
    redis_exceptions = pytest.importorskip("redis.exceptions")
    assert redis_exceptions.RedisError in cache_errors()
    assert OSError in cache_errors()
