"""France Travail's per-application quota: N calls per second per API.

France Travail's gateway names its headers after Spring Cloud Gateway's
token-bucket limiter (``X-Ratelimit-Burst-Capacity-Clientidlimiter``,
``X-Ratelimit-Remaining-Clientidlimiter``): this is a token bucket whose
burst capacity equals the rate. The sandbox runs in one (threaded) process,
so the buckets live in memory behind a lock.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass


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
    """One token bucket per (application, API); ``take`` is exact under threads."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (tokens, last refill time)
        self._buckets: dict[tuple[str, str, float], tuple[float, float]] = {}

    def take(self, client_id: str, api: str, rate: float) -> QuotaDecision:
        capacity = max(1, int(rate))
        key = (client_id, api, rate)
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.get(key, (float(capacity), now))
            tokens = min(float(capacity), tokens + (now - last) * rate)
            # The epsilon forgives float rounding, not a real early call.
            if tokens >= 1.0 - 1e-9:
                tokens = max(0.0, tokens - 1.0)
                self._buckets[key] = (tokens, now)
                return QuotaDecision(True, capacity, int(tokens + 1e-9))
            self._buckets[key] = (tokens, now)
            wait = (1.0 - tokens) / rate
        # Retry-After is whole seconds; 0 would invite an immediate retry.
        return QuotaDecision(False, capacity, 0, max(1, math.ceil(wait)))

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()


buckets = QuotaBuckets()
