"""France Travail's per-application quota: N calls per second per API.

France Travail's gateway names its headers after Spring Cloud Gateway's
token-bucket limiter (``X-Ratelimit-Burst-Capacity-Clientidlimiter``,
``X-Ratelimit-Remaining-Clientidlimiter``), but nothing documents the
algorithm, so the sandbox offers three (``FTAUTH_SANDBOX["QUOTA_ALGORITHM"]``)
and ftauth must stay under each:

- ``token_bucket`` (default): a bucket of N tokens refilled at N per second;
- ``sliding_window``: at most N calls in any 1-second span (the strictest);
- ``fixed_window``: at most N calls per second of the clock (1000.0-1000.999...).

(Below one call per second, the window is N / rate seconds long.) Refused
calls are not counted. The sandbox runs in one (threaded) process, so the
state lives in memory behind a lock.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass

ALGORITHMS = frozenset({"token_bucket", "sliding_window", "fixed_window"})


@dataclass(frozen=True)
class QuotaDecision:
    allowed: bool
    capacity: int
    remaining: int
    retry_after: int = 0

    def headers(self) -> dict[str, str]:
        headers = {
            "X-Ratelimit-Burst-Capacity-Clientidlimiter": str(self.capacity),
            "X-Ratelimit-Replenish-Rate-Clientidlimiter": str(self.capacity),
            "X-Ratelimit-Remaining-Clientidlimiter": str(self.remaining),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class QuotaBuckets:
    """One limiter per (application, API, rate, algorithm); ``take`` is exact under threads."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        # token bucket: key -> (tokens, last refill time)
        self._buckets: dict[tuple, tuple[float, float]] = {}
        # sliding window: key -> times of the calls allowed in the last window
        self._calls: dict[tuple, deque[float]] = {}
        # fixed window: key -> (window number, calls allowed in it)
        self._windows: dict[tuple, tuple[int, int]] = {}

    def take(
        self, client_id: str, api: str, rate: float, algorithm: str = "token_bucket"
    ) -> QuotaDecision:
        capacity = max(1, int(rate))
        key = (client_id, api, rate)
        with self._lock:
            now = self._clock()
            if algorithm == "sliding_window":
                allowed, remaining, wait = self._sliding(key, now, capacity, capacity / rate)
            elif algorithm == "fixed_window":
                allowed, remaining, wait = self._fixed(key, now, capacity, capacity / rate)
            else:
                allowed, remaining, wait = self._bucket(key, now, capacity, rate)
        if allowed:
            return QuotaDecision(True, capacity, remaining)
        # Retry-After is whole seconds; 0 would invite an immediate retry.
        return QuotaDecision(False, capacity, 0, max(1, math.ceil(wait)))

    def _bucket(self, key, now, capacity, rate) -> tuple[bool, int, float]:
        tokens, last = self._buckets.get(key, (float(capacity), now))
        tokens = min(float(capacity), tokens + (now - last) * rate)
        # The epsilon forgives float rounding, not a real early call.
        if tokens >= 1.0 - 1e-9:
            tokens = max(0.0, tokens - 1.0)
            self._buckets[key] = (tokens, now)
            return True, int(tokens + 1e-9), 0.0
        self._buckets[key] = (tokens, now)
        return False, 0, (1.0 - tokens) / rate

    def _sliding(self, key, now, capacity, window) -> tuple[bool, int, float]:
        calls = self._calls.setdefault(key, deque())
        while calls and calls[0] <= now - window:
            calls.popleft()
        if len(calls) < capacity:
            calls.append(now)
            return True, capacity - len(calls), 0.0
        return False, 0, calls[0] + window - now

    def _fixed(self, key, now, capacity, window) -> tuple[bool, int, float]:
        number = math.floor(now / window)
        current, used = self._windows.get(key, (number, 0))
        if current != number:
            used = 0
        if used < capacity:
            self._windows[key] = (number, used + 1)
            return True, capacity - used - 1, 0.0
        return False, 0, (number + 1) * window - now

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
            self._calls.clear()
            self._windows.clear()


buckets = QuotaBuckets()
