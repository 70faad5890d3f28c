"""The quota's schedule on the test's terms (a pytest plugin: see tests/conftest.py).

Quota tests judge counts the server saw, never wall-clock spacing: ``pacing``
puts every rate limiter ftauth builds on a clock of the test's, frozen unless
the test moves it, and holds every caller that waits for its turn until the
test lets go. A caller's wait for the next tick (an idle schedule's
alignment) is not held.
"""

from __future__ import annotations

import functools
import threading
import time

import pytest

from tests.api.conftest import FakeClock

# Longer than a tick at 4 calls/s (an idle caller's alignment), shorter than a turn.
ALIGNMENT = 0.1


class Pacing:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.release = threading.Event()
        self._held = threading.Semaphore(0)
        self._lock = threading.Lock()
        self.sleepers = 0

    def sleep(self, seconds: float) -> None:
        if seconds <= ALIGNMENT:
            return
        with self._lock:
            self.sleepers += 1
        self._held.release()
        assert self.release.wait(60), "the test never let the waiting callers go"

    def wait_for(self, count: int) -> None:
        """Until ``count`` (more) callers wait for their turn."""
        for _ in range(count):
            assert self._held.acquire(timeout=60), "a caller never started to wait"

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from django.core.cache import caches

        from ftauth.api import clients
        from ftauth.api.quota import RateLimiter

        # The schedule so far was on the real clock: start it afresh on the test's.
        for cache in caches.all():
            cache.clear()

        monkeypatch.setattr(
            clients,
            "RateLimiter",
            functools.partial(RateLimiter, clock=self.clock, sleep=self.sleep),
        )


@pytest.fixture
def pacing(monkeypatch):
    """Call ``pacing.install()`` when the schedule should become the test's."""
    installed = Pacing()
    installed.install = functools.partial(installed.install, monkeypatch)  # type: ignore[method-assign]
    yield installed
    installed.release.set()


def settle(condition, seconds: float = 60.0) -> None:
    """Until ``condition()`` holds (other threads finishing): a bound, not a timing."""
    for _ in range(int(seconds * 100)):
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError("the condition never held")


def in_threads(calls) -> tuple[list[threading.Thread], list]:
    """Run each of ``calls`` in a thread of its own; their results, as they come."""
    results: list = []
    lock = threading.Lock()

    def run(call) -> None:
        result = call()
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run, args=(call,), daemon=True) for call in calls]
    for thread in threads:
        thread.start()
    return threads, results
