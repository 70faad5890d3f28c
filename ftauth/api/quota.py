"""Staying under France Travail's per-application quota, across every process.

France Travail allows each application a number of calls per second per API
(4/s for Offres d'emploi) and answers 429 with ``Retry-After`` past it; it asks
clients to honour that header and to sequence their calls. Several web
processes share one quota, so the pacing lives in Django's cache (Redis in
production): it must be shared, and atomic where it counts.

Pacing: every call reserves a window of one interval on a shared timeline,
then sleeps until its window starts. Windows never overlap, so calls are
spaced by at least one interval whatever the quota algorithm on the other
side: a token bucket, or a sliding or fixed one-second window (France Travail
documents none). The interval is ``1 / rate`` plus ``PACING_MARGIN``: under a
window limiter, N + 1 calls must span more than a second *as the server sees
them*, and calls reach it a few milliseconds apart from when they left; the
margin absorbs up to 3 % of a second of that jitter for 3 % of the throughput. The
timeline is cut into ticks of a quarter interval, one cache key per tick, and a
window is its four ticks, each taken with ``cache.add`` (``SET NX`` on Redis:
exactly one process wins a tick); a caller that finds a tick taken gives back
the ones it got and tries after the window in its way. Quarter ticks keep an
idle caller's wait under a quarter interval, and only ticks that start now or
later are taken, so a window never starts in the past. A shared hint (the
last window reserved) lets a caller skip the windows already taken; it is only
a hint and correctness never depends on it. A caller that would wait longer
than ``API_MAX_WAIT`` gives up with :class:`QuotaExceeded` before reserving
anything, so it takes nothing from the others.

A 429 pauses the shared schedule until ``Retry-After`` has passed (plus
jitter), so the other processes back off too, not just the caller that got it.

All times are wall-clock seconds (``time.time``) because they are compared
between processes; servers sharing a cache must keep their clocks in sync
(NTP). ``clock`` and ``sleep`` are injected so tests can run on a fake clock.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ftauth.core.errors import QuotaExceeded
from ftauth.internal.cache import cache_errors

logger = logging.getLogger("ftauth.api")

# Ticks per interval: an idle caller waits at most one tick.
TICKS = 4
# A tick's key lives this long after the tick started: long enough that no
# caller still tries it (callers only try ticks starting now or later), with
# room for clocks a little out of step between servers.
TICK_GRACE = 5
# Attempts between two readings of the shared hint.
ATTEMPTS_PER_HINT = 8
# Share of an interval added to it (see the module's docstring).
PACING_MARGIN = 0.03
# After the shared cache failed, how long each process paces on its own before
# trying the shared cache again.
FALLBACK_SECONDS = 5.0
# Quota headers count calls per second: a value beyond this is noise, ignored.
QUOTA_HEADER_MAX = 1_000_000

# (namespace, api) pairs already warned about, so the warning is logged once.
_warned_rates: set[tuple[str, str]] = set()


class FallbackCache:
    """The shared cache, or this process's memory while the shared cache fails.

    Without the shared cache there is no shared quota and no shared application
    token; answering 500 would be worse than pacing alone and asking for a
    token alone, so each process does that for ``FALLBACK_SECONDS``, then tries
    the shared cache again. One warning line per outage and process.
    """

    # Per shared cache (its backend, location and key prefix), for the whole process:
    # when the shared cache failed, and the local stand-in used meanwhile.
    _failed_at: dict[tuple, float] = {}
    _locals: dict[tuple, Any] = {}

    def __init__(self, shared: Any, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.shared = shared
        self.clock = clock
        self._id = (
            type(shared).__qualname__,
            repr(getattr(shared, "_servers", None)),
            getattr(shared, "key_prefix", ""),
        )

    def _local(self) -> Any:
        local = self._locals.get(self._id)
        if local is None:
            from django.core.cache.backends.locmem import LocMemCache

            name = f"ftauth-fallback-{hashlib.sha256(repr(self._id).encode()).hexdigest()[:12]}"
            local = self._locals.setdefault(self._id, LocMemCache(name, {}))
        return local

    def _call(self, name: str, *args: Any) -> Any:
        failed_at = self._failed_at.get(self._id)
        if failed_at is not None and self.clock() - failed_at < FALLBACK_SECONDS:
            return getattr(self._local(), name)(*args)
        try:
            result = getattr(self.shared, name)(*args)
        except cache_errors() as exc:
            if failed_at is None:
                logger.warning(
                    "the cache shared by ftauth's processes failed (%s: %s): pacing API calls "
                    "and keeping application tokens in this process only until it answers",
                    type(exc).__name__,
                    exc,
                )
            self._failed_at[self._id] = self.clock()
            return getattr(self._local(), name)(*args)
        if failed_at is not None:
            del self._failed_at[self._id]
            logger.warning("the cache shared by ftauth's processes answers again")
        return result

    def get(self, key: str, default: Any = None) -> Any:
        return self._call("get", key, default)

    def add(self, key: str, value: Any, timeout: float | None = None) -> bool:
        return self._call("add", key, value, timeout)

    def set(self, key: str, value: Any, timeout: float | None = None) -> None:
        self._call("set", key, value, timeout)

    def delete(self, key: str) -> Any:
        return self._call("delete", key)


def namespace_for(client_id: str) -> str:
    """Cache key prefix of one application: the quota is per application (client id)."""
    digest = hashlib.sha256(client_id.encode()).hexdigest()[:16]
    return f"ftauth:quota:{digest}"


@dataclass(frozen=True)
class RateLimitHeaders:
    """What France Travail's ``X-Ratelimit-*`` headers say about the quota.

    France Travail's gateway suffixes the names with the limiter's name, e.g.
    ``X-Ratelimit-Remaining-Clientidlimiter``; when several limiters answer,
    the tightest one is kept.
    """

    remaining: int | None = None
    burst_capacity: int | None = None
    replenish_rate: float | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimitHeaders | None:
        remaining: list[int] = []
        burst: list[int] = []
        replenish: list[float] = []
        for name, value in headers.items():
            lowered = name.lower()
            if not lowered.startswith("x-ratelimit-"):
                continue
            number = _number(value)
            if number is None:
                continue
            if lowered.startswith("x-ratelimit-remaining"):
                remaining.append(int(number))
            elif lowered.startswith("x-ratelimit-burst-capacity"):
                burst.append(int(number))
            elif lowered.startswith("x-ratelimit-replenish-rate"):
                replenish.append(number)
        if not (remaining or burst or replenish):
            return None
        return cls(
            remaining=min(remaining) if remaining else None,
            burst_capacity=min(burst) if burst else None,
            replenish_rate=min(replenish) if replenish else None,
        )


def _number(value: str) -> float | None:
    try:
        number = float(value.strip())
    except ValueError:
        return None
    # A quota is counted in calls per second: a header beyond a million is noise.
    return number if math.isfinite(number) and 0 <= number <= QUOTA_HEADER_MAX else None


class RateLimiter:
    """Spaces the calls of every process of one application, per API."""

    def __init__(
        self,
        cache: Any,
        *,
        namespace: str,
        rates: Mapping[str, float],
        default_rate: float,
        max_wait: float,
        margin: float = PACING_MARGIN,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cache = cache if isinstance(cache, FallbackCache) else FallbackCache(cache)
        self.namespace = namespace
        self.rates = rates
        self.default_rate = default_rate
        self.max_wait = max_wait
        self.margin = margin
        self.clock = clock
        self.sleep = sleep

    def rate(self, api: str) -> float:
        return float(self.rates.get(api, self.default_rate))

    def interval(self, api: str) -> float:
        """Seconds between two calls to ``api`` (margin included); 0 when not limited."""
        rate = self.rate(api)
        return (1.0 + self.margin) / rate if rate > 0 else 0.0

    def _key(self, api: str, name: str) -> str:
        return f"{self.namespace}:{api}:{name}"

    def acquire(self, api: str, *, max_wait: float | None = None) -> float:
        """Wait for this process's turn to call ``api``; return the seconds waited.

        Raises :class:`QuotaExceeded` when the turn is more than ``max_wait``
        (at most the limiter's own) away, without taking it.
        """
        max_wait = self.max_wait if max_wait is None else min(max_wait, self.max_wait)
        interval = self.interval(api)
        started = self.clock()
        deadline = started + max_wait
        if interval <= 0:
            return self._wait_out_pause(api, started, deadline)
        tick = interval / TICKS
        while True:
            window = self._reserve(api, tick, deadline)
            if window is None:
                raise QuotaExceeded(
                    f"no call to {api} possible within {max_wait:g} s",
                    retry_after=max_wait,
                )
            delay = window * tick - self.clock()
            if delay > 0:
                self.sleep(delay)
            # A 429 seen by another process while this one slept pauses everyone:
            # a window inside the pause is given up, a later one looked for.
            paused_until = self._paused_until(api)
            if paused_until is None or paused_until <= self.clock():
                return self.clock() - started

    def _wait_out_pause(self, api: str, started: float, deadline: float) -> float:
        """An API without pacing still honours a 429 another process received."""
        paused_until = self._paused_until(api)
        if paused_until is None or paused_until <= started:
            return 0.0
        if paused_until > deadline:
            raise QuotaExceeded(
                f"calls to {api} are paused for longer than {deadline - started:g} s",
                retry_after=paused_until - started,
            )
        self.sleep(paused_until - started)
        return self.clock() - started

    def _reserve(self, api: str, tick: float, deadline: float) -> int | None:
        """Take the first free window of TICKS ticks starting now or later; its first tick."""
        now = self.clock()
        start = math.ceil(now / tick)
        paused_until = self._paused_until(api)
        if paused_until is not None:
            start = max(start, math.ceil(paused_until / tick))
        last_start = math.floor(deadline / tick)
        hint_key = self._key(api, "last")
        attempts = 0
        while start <= last_start:
            if attempts % ATTEMPTS_PER_HINT == 0:
                hint = self.cache.get(hint_key)
                if isinstance(hint, int) and hint + TICKS > start:
                    start = hint + TICKS
                    if start > last_start:
                        break
            attempts += 1
            taken: list[int] = []
            blocker: int | None = None
            for index in range(start, start + TICKS):
                # The value is the window's first tick: whoever finds the tick
                # taken knows where that window ends.
                ttl = math.ceil(index * tick - now) + TICK_GRACE
                if self.cache.add(self._tick_key(api, index), start, ttl):
                    taken.append(index)
                    continue
                owner = self.cache.get(self._tick_key(api, index))
                blocker = owner if isinstance(owner, int) else index - TICKS + 1
                break
            if blocker is None:
                self.cache.set(hint_key, start, math.ceil(start * tick - now) + TICK_GRACE)
                return start
            for index in taken:
                self.cache.delete(self._tick_key(api, index))
            # Every window starting before the blocking one ends overlaps it.
            start = max(start + 1, blocker + TICKS)
        return None

    def _tick_key(self, api: str, index: int) -> str:
        return self._key(api, f"tick:{index}")

    def _paused_until(self, api: str) -> float | None:
        value = self.cache.get(self._key(api, "pause"))
        return float(value) if isinstance(value, int | float) else None

    def pause(self, api: str, seconds: float) -> float:
        """No call to ``api`` from any process before ``seconds`` from now.

        The pause only ever grows: a shorter one does not cut a longer one
        short. (Read then write is not atomic; two pauses set at once keep one
        of the two, and the 429 handling of the next call covers the rest.)
        """
        until = self.clock() + max(0.0, seconds)
        key = self._key(api, "pause")
        current = self._paused_until(api)
        if current is None or current < until:
            self.cache.set(key, until, math.ceil(seconds) + TICK_GRACE)
        return until

    def note_headers(self, api: str, rate_limit: RateLimitHeaders | None) -> None:
        """Act on the ``X-Ratelimit-*`` headers of an answer.

        ``Remaining: 0`` is not acted on: under a window limiter it is what every
        call says once the quota is used at its rate, and holding the next call
        then cost a third of the throughput. The schedule already spaces calls;
        a 429, if one comes, pauses everyone.
        """
        if rate_limit is None:
            return
        lower = rate_limit.replenish_rate and rate_limit.replenish_rate < self.rate(api)
        if lower and (self.namespace, api) not in _warned_rates:
            _warned_rates.add((self.namespace, api))
            logger.warning(
                "France Travail allows %g calls/s to %s, fewer than the %g configured: "
                "lower FTAUTH['API_RATE_LIMITS'][%r]",
                rate_limit.replenish_rate,
                api,
                self.rate(api),
                api,
            )
