"""The quota's token bucket, exact under threads, on a fake clock (no sleeps)."""

from __future__ import annotations

import threading

from ftauth.sandbox.quota import QuotaBuckets


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_equals_the_rate_then_one_call_per_interval():
    clock = FakeClock()
    buckets = QuotaBuckets(clock)
    answers = [buckets.take("app", "offresdemploi", 4) for _ in range(5)]
    assert [a.allowed for a in answers] == [True, True, True, True, False]
    assert [a.remaining for a in answers[:4]] == [3, 2, 1, 0]
    assert answers[4].retry_after == 1
    assert answers[4].headers()["Retry-After"] == "1"
    clock.now += 0.25
    assert buckets.take("app", "offresdemploi", 4).allowed
    assert not buckets.take("app", "offresdemploi", 4).allowed


def test_never_more_than_the_rate_per_second_when_steady():
    clock = FakeClock()
    buckets = QuotaBuckets(clock)
    for _ in range(4):
        buckets.take("app", "api", 4)  # drain the burst
    allowed = 0
    for _ in range(1000):  # 10 seconds, a call attempt every 10 ms
        clock.now += 0.01
        allowed += buckets.take("app", "api", 4).allowed
    assert allowed == 40


def test_retry_after_is_whole_seconds_and_at_least_one():
    clock = FakeClock()
    buckets = QuotaBuckets(clock)
    assert buckets.take("app", "api", 0.05).allowed
    refused = buckets.take("app", "api", 0.05)
    assert not refused.allowed
    assert refused.retry_after == 20
    assert refused.capacity == 1


def test_buckets_are_per_application_and_per_api():
    buckets = QuotaBuckets(FakeClock())
    assert buckets.take("a", "x", 1).allowed
    assert not buckets.take("a", "x", 1).allowed
    assert buckets.take("b", "x", 1).allowed
    assert buckets.take("a", "y", 1).allowed


def test_exact_under_concurrency():
    buckets = QuotaBuckets(FakeClock())  # frozen clock: exactly the burst passes
    results = []
    lock = threading.Lock()

    def worker():
        for _ in range(50):
            decision = buckets.take("app", "api", 4)
            with lock:
                results.append(decision.allowed)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 4
    assert len(results) == 400


def steady(buckets, clock, algorithm, *, step, seconds, rate=4):
    """Call every ``step`` seconds for ``seconds``; the times of the calls allowed."""
    allowed = []
    for _ in range(round(seconds / step)):
        if buckets.take("app", "api", rate, algorithm).allowed:
            allowed.append(clock.now)
        clock.now += step
    return allowed


def test_sliding_window_allows_no_more_than_the_rate_in_any_second():
    clock = FakeClock()
    buckets = QuotaBuckets(clock)
    allowed = steady(buckets, clock, "sliding_window", step=0.01, seconds=10)
    assert len(allowed) == 40
    # Any span shorter than a second holds at most 4 allowed calls...
    assert all(b - a >= 1.0 - 1e-9 for a, b in zip(allowed, allowed[4:], strict=False))


def test_a_burst_then_a_refill_passes_a_token_bucket_not_a_sliding_window():
    def burst_then_one(algorithm):
        clock = FakeClock()
        buckets = QuotaBuckets(clock)
        answers = [buckets.take("app", "api", 4, algorithm).allowed for _ in range(4)]
        clock.now += 0.25
        return [*answers, buckets.take("app", "api", 4, algorithm).allowed]

    assert burst_then_one("token_bucket") == [True] * 5  # 5 calls within 0.25 s
    assert burst_then_one("sliding_window") == [True] * 4 + [False]


def test_sliding_window_retry_after_counts_from_the_oldest_call():
    clock = FakeClock()
    buckets = QuotaBuckets(clock)
    for _ in range(4):
        assert buckets.take("app", "api", 4, "sliding_window").allowed
        clock.now += 0.1
    refused = buckets.take("app", "api", 4, "sliding_window")
    assert (refused.allowed, refused.retry_after) == (False, 1)
    clock.now = 1000.0 + 1.0  # the first call leaves the window
    assert buckets.take("app", "api", 4, "sliding_window").allowed
    assert not buckets.take("app", "api", 4, "sliding_window").allowed


def test_fixed_window_counts_per_clock_second():
    clock = FakeClock()
    clock.now = 1000.5
    buckets = QuotaBuckets(clock)
    answers = [buckets.take("app", "api", 4, "fixed_window") for _ in range(5)]
    assert [a.allowed for a in answers] == [True, True, True, True, False]
    assert [a.remaining for a in answers[:4]] == [3, 2, 1, 0]
    clock.now = 1001.0  # a new second: a new count, even 0.5 s after the burst
    assert [buckets.take("app", "api", 4, "fixed_window").allowed for _ in range(5)] == [
        True,
        True,
        True,
        True,
        False,
    ]


def test_unknown_algorithm_is_refused(settings):
    import pytest
    from django.core.exceptions import ImproperlyConfigured

    from ftauth.sandbox.conf import get_sandbox_settings

    settings.FTAUTH_SANDBOX = {"QUOTA_ALGORITHM": "leaky"}
    with pytest.raises(ImproperlyConfigured, match="sliding_window"):
        get_sandbox_settings()
    settings.FTAUTH_SANDBOX = {"QUOTA_ALGORITHM": "fixed_window"}
    assert get_sandbox_settings().quota_algorithm == "fixed_window"
