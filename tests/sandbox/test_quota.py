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
