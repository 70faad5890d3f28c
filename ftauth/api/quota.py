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
a hint and correctness never depends on it.

Honest refusals (issue 18): a caller whose turn, as the hint says, is further
away than its budget allows is refused before it reserves or waits anything,
with :class:`QuotaExceeded` whose ``retry_after`` is that wait, so it takes
nothing from the others. And at most ``API_MAX_WAITING`` callers of one host
wait at once (:class:`WaitingRoom`): the others are answered at once, so a
saturated quota never holds every worker and the pages that call nothing are
served. Checks ftauth makes of its own accord (``may_wait=False``) take only
the next turn, when nobody is queued for it: pages and sign-ins go first.

A 429 pauses the shared schedule until ``Retry-After`` has passed (plus
jitter), so the other processes back off too, not just the caller that got it.

All times are wall-clock seconds (``time.time``) because they are compared
between processes; servers sharing a cache must keep their clocks in sync
(NTP). ``clock`` and ``sleep`` are injected so tests can run on a fake clock.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import secrets
import socket
import time
from collections.abc import Callable, Iterator, Mapping
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


def _refused(api: str, reason: str, wait: float, budget: float) -> QuotaExceeded:
    why = {
        "turn": f"no turn within {budget:g} s",
        "waiting": "this host's waiting room for the quota is full",
        "background": "a check of ftauth's own takes only the next turn, when free",
    }[reason]
    return QuotaExceeded(f"no call to {api} now: {why}", retry_after=max(0.0, wait), reason=reason)


class WaitingRoom:
    """At most ``places`` callers of one host wait for the quota at once (a bulkhead).

    A caller that must wait for its turn (or for a 429's ``Retry-After``) takes
    a seat for the length of its wait; when every seat is taken it is answered
    at once instead (:class:`QuotaExceeded`, with its wait), so the host's
    other workers stay free for pages that do not call France Travail. Seats
    are keys of the shared cache, one per place, per host (its name): the
    processes of one host share them, whatever their server (sync workers,
    threads). Each is taken with ``cache.add`` (``SET NX``), held at most the
    wait it was taken for (a killed worker's seat frees itself) and given back
    after it. While the shared cache fails, each process has its own seats
    (``FallbackCache``).
    """

    def __init__(self, cache: Any, *, namespace: str, places: int, host: str) -> None:
        self.cache = cache
        self.places = max(0, places)
        digest = hashlib.sha256(host.encode()).hexdigest()[:12]
        self.prefix = f"{namespace}:waiting:{digest}"

    @contextlib.contextmanager
    def seat(self, seconds: float) -> Iterator[bool]:
        """Yields True with a seat held for the block, False when there is none."""
        holder = secrets.token_hex(8)
        ttl = math.ceil(max(0.0, seconds)) + TICK_GRACE
        for place in range(self.places):
            key = f"{self.prefix}:{place}"
            if self.cache.add(key, holder, ttl):
                try:
                    yield True
                finally:
                    # Only our own seat: past its time another caller may hold it.
                    if self.cache.get(key) == holder:
                        self.cache.delete(key)
                return
        yield False

    def taken(self) -> int:
        """Seats taken now (for tests and the doctor)."""
        return sum(self.cache.get(f"{self.prefix}:{p}") is not None for p in range(self.places))


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
        max_waiting: int = 2,
        host: str | None = None,
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
        self.waiting = WaitingRoom(
            self.cache, namespace=namespace, places=max_waiting, host=host or socket.gethostname()
        )

    def rate(self, api: str) -> float:
        return float(self.rates.get(api, self.default_rate))

    def interval(self, api: str) -> float:
        """Seconds between two calls to ``api`` (margin included); 0 when not limited."""
        rate = self.rate(api)
        return (1.0 + self.margin) / rate if rate > 0 else 0.0

    def _key(self, api: str, name: str) -> str:
        return f"{self.namespace}:{api}:{name}"

    def acquire(self, api: str, *, max_wait: float | None = None, may_wait: bool = True) -> float:
        """Wait for this process's turn to call ``api``; return the seconds waited.

        Raises :class:`QuotaExceeded`, before taking a turn or waiting at all,
        when the turn the schedule implies is more than ``max_wait`` (at most the
        limiter's own) away (``reason="turn"``), or when it would have to wait
        while every seat of this host's waiting room is taken (``"waiting"``).
        Its ``retry_after`` is the wait the schedule implies. Without
        ``may_wait`` (a check ftauth makes of its own accord), the call takes the
        next turn only if nobody is queued before it: it waits one interval at
        most, without a seat, and is refused otherwise (``"background"``), so it
        never delays a page or a sign-in.
        """
        max_wait = self.max_wait if max_wait is None else min(max_wait, self.max_wait)
        interval = self.interval(api)
        if not may_wait:
            max_wait = min(max_wait, interval)
        started = self.clock()
        if interval <= 0:
            return self._wait_out_pause(api, started, started + max(0.0, max_wait), may_wait)
        tick = interval / TICKS
        # The next tick of an idle schedule is always within reach, even for a
        # call whose budget is spent: that wait is alignment, not queueing.
        max_wait = max(max_wait, tick)
        deadline = started + max_wait
        late = "turn" if may_wait else "background"
        with contextlib.ExitStack() as seats:
            seated = False

            def may_sleep(seconds: float) -> bool:
                # An idle caller's wait for the next tick is alignment, not waiting;
                # a background caller waits one interval at most (see above).
                nonlocal seated
                if seconds <= tick or seated or not may_wait:
                    return True
                seated = seats.enter_context(self.waiting.seat(deadline - self.clock()))
                return seated

            # Where the schedule stands (the shared hint, nothing reserved yet): a
            # call that cannot be served in time is refused before it takes anything.
            start = self._first_free(api, tick)
            expected = start * tick - started
            if expected > max_wait:
                raise _refused(api, late, expected, max_wait)
            if not may_sleep(expected):
                raise _refused(api, "waiting", expected, max_wait)
            while True:
                window = self._reserve(api, tick, deadline, start)
                if window is None:
                    later = max(self._first_free(api, tick) * tick, deadline) - started
                    raise _refused(api, late, later, max_wait)
                delay = window * tick - self.clock()
                if not may_sleep(delay):
                    self._give_back(api, window)
                    raise _refused(api, "waiting", delay, max_wait)
                hint_ttl = math.ceil(window * tick - self.clock()) + TICK_GRACE
                self.cache.set(self._key(api, "last"), window, hint_ttl)
                if delay > 0:
                    self.sleep(delay)
                # A 429 seen by another process while this one slept pauses everyone:
                # a window inside the pause is given up, a later one looked for.
                paused_until = self._paused_until(api)
                if paused_until is None or paused_until <= self.clock():
                    return self.clock() - started
                start = math.ceil(paused_until / tick)

    def seat(self, seconds: float) -> contextlib.AbstractContextManager[bool]:
        """A seat in this host's waiting room for ``seconds`` (a 429's Retry-After)."""
        return self.waiting.seat(seconds)

    def _wait_out_pause(self, api: str, started: float, deadline: float, may_wait: bool) -> float:
        """An API without pacing still honours a 429 another process received."""
        paused_until = self._paused_until(api)
        if paused_until is None or paused_until <= started:
            return 0.0
        wait = paused_until - started
        if paused_until > deadline:
            raise _refused(api, "turn" if may_wait else "background", wait, deadline - started)
        with self.waiting.seat(wait) as seated:
            if not seated:
                raise _refused(api, "waiting", wait, deadline - started)
            self.sleep(wait)
        return self.clock() - started

    def _first_free(self, api: str, tick: float) -> int:
        """The first tick a new window could start at, as far as the shared hint knows."""
        start = math.ceil(self.clock() / tick)
        paused_until = self._paused_until(api)
        if paused_until is not None:
            start = max(start, math.ceil(paused_until / tick))
        hint = self.cache.get(self._key(api, "last"))
        if isinstance(hint, int) and hint + TICKS > start:
            start = hint + TICKS
        return start

    def _reserve(self, api: str, tick: float, deadline: float, start: int) -> int | None:
        """Take the first free window of TICKS ticks from tick ``start`` on; its first tick.

        The caller publishes it as the shared hint once it keeps it.
        """
        now = self.clock()
        start = max(start, math.ceil(now / tick))
        last_start = math.floor(deadline / tick)
        hint_key = self._key(api, "last")
        # The caller has just read the hint.
        attempts = 1
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
                return start
            for index in taken:
                self.cache.delete(self._tick_key(api, index))
            # Every window starting before the blocking one ends overlaps it.
            start = max(start + 1, blocker + TICKS)
        return None

    def _give_back(self, api: str, window: int) -> None:
        for index in range(window, window + TICKS):
            self.cache.delete(self._tick_key(api, index))

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
