"""Pacing calls under the per-application quota, shared through Django's cache."""

from __future__ import annotations

import itertools
import threading

import pytest

from ftauth.api.quota import PACING_MARGIN, RateLimiter, RateLimitHeaders, namespace_for
from ftauth.core.errors import QuotaExceeded
from tests.pacing import settle

from .conftest import FakeClock


def limiter(
    cache,
    clock,
    *,
    rate=4.0,
    max_wait=10.0,
    namespace=None,
    sleep=None,
    rates=None,
    margin=0.0,
    max_waiting=1000,
    host="host-a",
):
    """A limiter without the pacing margin (unless given): intervals of exactly 1 / rate;
    a waiting room large enough to stay out of the way (unless given)."""
    return RateLimiter(
        cache,
        namespace=namespace or namespace_for("client-a"),
        rates=rates or {},
        default_rate=rate,
        max_wait=max_wait,
        max_waiting=max_waiting,
        host=host,
        margin=margin,
        clock=clock,
        sleep=sleep or clock.sleep,
    )


def test_calls_are_spaced_by_one_interval(shared_cache, clock):
    clock.advance(0.1)  # not on a tick boundary
    pacer = limiter(shared_cache, clock, rate=4)
    times = []
    for _ in range(8):
        pacer.acquire("offresdemploi")
        times.append(clock())
    gaps = [round(b - a, 9) for a, b in itertools.pairwise(times)]
    assert gaps == [0.25] * 7
    # An idle caller waits for the next quarter interval at most.
    assert times[0] - 1_700_000_000.1 == pytest.approx(0.025, abs=1e-6)


def test_processes_sharing_the_cache_share_the_schedule(shared_cache, clock):
    """Two limiters (two processes) on one cache never get overlapping turns."""
    frozen = FakeClock(clock.now)
    waits: list[float] = []
    first = limiter(shared_cache, frozen, sleep=waits.append)
    second = limiter(shared_cache, frozen, sleep=waits.append)
    for _ in range(4):
        first.acquire("offresdemploi")
        second.acquire("offresdemploi")
    assert sorted(waits) == pytest.approx([0.25 * i for i in range(1, 8)])


def test_reservations_are_atomic_under_concurrency(shared_cache, clock):
    frozen = FakeClock(clock.now)
    waits: list[float] = []
    lock = threading.Lock()

    def record(seconds: float) -> None:
        with lock:
            waits.append(round(seconds, 6))

    def caller() -> None:
        limiter(shared_cache, frozen, rate=100, max_wait=10, sleep=record).acquire("api")

    threads = [threading.Thread(target=caller) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Forty callers, forty turns at least one interval apart (the first one is now).
    waits = sorted([0.0, *waits]) if len(waits) == 39 else sorted(waits)
    assert len(waits) == 40
    assert all(b - a >= 0.01 - 1e-9 for a, b in itertools.pairwise(waits))


def test_gives_up_after_max_wait_without_taking_a_turn(shared_cache, clock):
    frozen = FakeClock(clock.now)  # on a tick boundary: the first window starts now
    waits: list[float] = []
    busy = limiter(shared_cache, frozen, rate=4, max_wait=1.0, sleep=waits.append)
    for _ in range(5):  # windows at 0, 0.25, 0.5, 0.75 and 1.0 s from now
        busy.acquire("offresdemploi")
    with pytest.raises(QuotaExceeded) as caught:
        busy.acquire("offresdemploi")
    # Refused before waiting, with the wait the schedule implies (not the budget).
    assert caught.value.retry_after == pytest.approx(1.25)
    assert caught.value.reason == "turn"
    assert len(waits) == 4  # the refused call slept not at all
    # Nothing was reserved by the refused call: the next turn is still free.
    patient = limiter(shared_cache, frozen, rate=4, max_wait=2.0, sleep=waits.append)
    patient.acquire("offresdemploi")
    assert waits[-1] == pytest.approx(1.25)


def test_a_window_in_the_way_is_skipped_and_partial_claims_given_back(shared_cache, clock):
    frozen = FakeClock(clock.now)  # tick boundary: tick n starts now
    waits: list[float] = []
    pacer = limiter(shared_cache, frozen, rate=4, sleep=waits.append)
    tick = 0.25 / 4
    now_tick = round(frozen.now / tick)
    # Another process holds the window starting two ticks from now.
    blocking = now_tick + 2
    for index in range(blocking, blocking + 4):
        shared_cache.add(pacer._tick_key("offresdemploi", index), blocking, 60)
    pacer.acquire("offresdemploi")
    # Ticks n and n+1 were claimed, then given back; the turn came after the blocking window.
    assert waits == pytest.approx([6 * tick])
    assert shared_cache.get(pacer._tick_key("offresdemploi", now_tick)) is None
    assert shared_cache.get(pacer._tick_key("offresdemploi", now_tick + 1)) is None


def test_apis_have_their_own_quota(shared_cache, clock):
    frozen = FakeClock(clock.now)
    waits: list[float] = []
    pacer = limiter(shared_cache, frozen, rates={"fast": 100.0}, sleep=waits.append)
    pacer.acquire("offresdemploi")
    pacer.acquire("offresdemploi")
    assert waits == pytest.approx([0.25])
    pacer.acquire("peconnect-individu")  # its own schedule: no wait
    pacer.acquire("fast")
    pacer.acquire("fast")
    assert waits == pytest.approx([0.25, 0.01])


def test_applications_have_their_own_quota(shared_cache, clock):
    frozen = FakeClock(clock.now)
    waits: list[float] = []
    limiter(shared_cache, frozen, sleep=waits.append).acquire("offresdemploi")
    other = limiter(shared_cache, frozen, sleep=waits.append, namespace=namespace_for("client-b"))
    other.acquire("offresdemploi")
    assert waits == []
    other.acquire("offresdemploi")
    assert waits == pytest.approx([0.25])


def test_a_pause_holds_every_process(shared_cache, clock):
    first = limiter(shared_cache, clock)
    second = limiter(shared_cache, clock)
    start = clock()
    first.pause("offresdemploi", 2.0)
    second.acquire("offresdemploi")
    assert clock() - start == pytest.approx(2.0)


def test_a_pause_never_shortens_a_longer_one(shared_cache, clock):
    pacer = limiter(shared_cache, clock)
    start = clock()
    pacer.pause("offresdemploi", 3.0)
    pacer.pause("offresdemploi", 1.0)
    pacer.acquire("offresdemploi")
    assert clock() - start == pytest.approx(3.0)


def test_a_turn_inside_a_pause_decided_while_sleeping_is_given_up(shared_cache, clock):
    other_process = limiter(shared_cache, clock)
    paused = []

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if not paused:  # another process gets a 429 while this one waits for its turn
            paused.append(other_process.pause("offresdemploi", 1.0))

    clock.advance(0.1)  # between two ticks: the call has to sleep
    pacer = limiter(shared_cache, clock, sleep=sleep)
    pacer.acquire("offresdemploi")
    assert paused and clock() >= paused[0]


def test_no_calls_left_does_not_slow_the_schedule(shared_cache, clock):
    """A window limiter says Remaining: 0 after every call once its quota is in full
    use: holding the next call then would waste the quota."""
    clock.advance(0.1)
    pacer = limiter(shared_cache, clock)
    times = []
    for _ in range(6):
        pacer.acquire("offresdemploi")
        times.append(clock())
        pacer.note_headers("offresdemploi", RateLimitHeaders(remaining=0, burst_capacity=4))
    assert [round(b - a, 9) for a, b in itertools.pairwise(times)] == [0.25] * 5


def test_the_default_margin_keeps_any_second_under_the_quota(shared_cache, clock):
    """Calls as the server sees them arrive a little early or late; with the margin,
    five calls never fit in one second even when one is 25 ms late and the next
    four are early."""
    clock.advance(0.1)
    pacer = RateLimiter(
        shared_cache,
        namespace=namespace_for("client-a"),
        rates={},
        default_rate=4,
        max_wait=10,
        clock=clock,
        sleep=clock.sleep,
    )
    starts = []
    for _ in range(9):
        pacer.acquire("offresdemploi")
        starts.append(clock())
    assert pacer.interval("offresdemploi") == pytest.approx(0.25 * (1 + PACING_MARGIN))
    for first, fifth in zip(starts, starts[4:], strict=False):
        assert fifth - (first + 0.025) > 1.0
    # The margin costs no more than 3 % of the quota.
    assert (starts[-1] - starts[0]) / 8 <= 0.25 * 1.03 + 1e-9


def test_zero_rate_means_unlimited(shared_cache, clock):
    pacer = limiter(shared_cache, clock, rate=0)
    for _ in range(10):
        assert pacer.acquire("x") == 0.0
    assert clock.sleeps == []


def test_unpaced_api_still_honours_a_pause(shared_cache, clock):
    pacer = limiter(shared_cache, clock, rate=0, max_wait=5)
    pacer.pause("x", 2.0)
    assert pacer.acquire("x") == pytest.approx(2.0)
    pacer.pause("x", 8.0)
    with pytest.raises(QuotaExceeded) as caught:
        pacer.acquire("x")
    assert caught.value.retry_after == pytest.approx(8.0)


def test_rate_limit_headers_are_read():
    headers = {
        "X-Ratelimit-Burst-Capacity-Clientidlimiter": "4",
        "X-Ratelimit-Remaining-Clientidlimiter": "2",
        "X-Ratelimit-Replenish-Rate-Clientidlimiter": "4",
        "X-Ratelimit-Remaining-Apilimiter": "90",
        "Content-Type": "application/json",
    }
    parsed = RateLimitHeaders.from_headers(headers)
    assert parsed == RateLimitHeaders(remaining=2, burst_capacity=4, replenish_rate=4.0)
    assert RateLimitHeaders.from_headers({"Content-Type": "text/plain"}) is None
    assert RateLimitHeaders.from_headers({"X-Ratelimit-Remaining-X": "soon"}) is None


def test_lower_rate_reported_by_france_travail_is_logged_once(locmem_cache, clock, caplog):
    pacer = limiter(locmem_cache, clock, rate=10, namespace=namespace_for("client-log"))
    for _ in range(3):
        pacer.note_headers("offresdemploi", RateLimitHeaders(remaining=3, replenish_rate=4))
    warnings = [r for r in caplog.records if "API_RATE_LIMITS" in r.getMessage()]
    assert len(warnings) == 1


# --- a shared cache that fails ---------------------------------------------------------


def unreachable_redis():
    """A real Redis cache backend aimed at a port nobody listens on."""
    import socket

    from django.core.cache.backends.redis import RedisCache

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return RedisCache(f"redis://127.0.0.1:{port}/0", {"KEY_PREFIX": f"down-{port}"})


def test_unreachable_cache_paces_locally_with_one_log_line(clock, caplog):
    pacer = limiter(unreachable_redis(), clock)
    clock.advance(0.1)
    times = []
    with caplog.at_level("WARNING", logger="ftauth.api"):
        for _ in range(4):
            pacer.acquire("offresdemploi")
            times.append(clock())
    # Still paced, by this process alone, and said once.
    assert [round(b - a, 9) for a, b in itertools.pairwise(times)] == [0.25] * 3
    lines = [r.getMessage() for r in caplog.records if "shared by ftauth" in r.getMessage()]
    assert len(lines) == 1 and "ConnectionError" in lines[0]


class BuggyCache:
    """A cache whose code is wrong (not one whose server is down)."""

    def get(self, key, default=None):
        raise TypeError("get() got an unexpected keyword argument")

    add = set = delete = get


def test_a_programming_error_in_the_cache_is_not_taken_for_an_outage(clock):
    with pytest.raises(TypeError):
        limiter(BuggyCache(), clock).acquire("offresdemploi")


# --- the waiting room (bulkhead) and honest refusals ----------------------------------


class Held:
    """A sleep that holds its caller until the test lets go, and counts who is held."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.release = threading.Event()
        self.held = threading.Semaphore(0)
        self.lock = threading.Lock()
        self.sleepers = 0

    def __call__(self, seconds: float) -> None:
        with self.lock:
            self.sleepers += 1
        self.held.release()
        assert self.release.wait(30), "the test never let go"

    def wait_for(self, count: int) -> None:
        for _ in range(count):
            assert self.held.acquire(timeout=30), "a caller never started to wait"


def run_callers(count, call):
    """Start ``count`` callers of ``call``; each returns ("ok", waited) or ("refused", exc)."""
    outcomes: list = []
    lock = threading.Lock()

    def caller() -> None:
        try:
            outcome = ("ok", call())
        except QuotaExceeded as exc:
            outcome = ("refused", exc)
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=caller) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, outcomes


def test_at_most_the_waiting_room_waits_and_the_others_are_answered_at_once(shared_cache, clock):
    frozen = FakeClock(clock.now)  # on a tick boundary: the first turn is now
    held = Held(frozen)
    pacer = limiter(shared_cache, frozen, sleep=held, max_waiting=2)
    threads, outcomes = run_callers(7, lambda: pacer.acquire("offresdemploi"))
    held.wait_for(2)  # two callers wait for their turn...
    # ... the five others are answered without waiting: one had the turn that is
    # now, four were refused with the wait the schedule implies for them.
    settle(lambda: len(outcomes) >= 5)
    assert held.sleepers == 2 and pacer.waiting.taken() == 2
    refused = [exc for kind, exc in outcomes if kind == "refused"]
    assert len(refused) == 4 and [kind for kind, _ in outcomes].count("ok") == 1
    assert all(exc.reason == "waiting" and exc.retry_after >= 0.25 for exc in refused)
    held.release.set()
    for thread in threads:
        thread.join(10)
    assert [kind for kind, _ in outcomes].count("ok") == 3
    assert pacer.waiting.taken() == 0  # seats are given back


def test_without_a_waiting_room_no_caller_waits(shared_cache, clock):
    frozen = FakeClock(clock.now)
    waits: list[float] = []
    pacer = limiter(shared_cache, frozen, sleep=waits.append, max_waiting=0)
    pacer.acquire("offresdemploi")  # the turn that is now: no wait
    with pytest.raises(QuotaExceeded) as caught:
        pacer.acquire("offresdemploi")
    assert (caught.value.reason, caught.value.retry_after) == ("waiting", pytest.approx(0.25))
    assert waits == []
    # The refused call took nothing: once its time comes, the next turn is free.
    frozen.advance(0.25)
    assert pacer.acquire("offresdemploi") == 0.0


def test_the_waiting_room_is_per_host(shared_cache, clock):
    frozen = FakeClock(clock.now)
    held = Held(frozen)
    first_host = limiter(shared_cache, frozen, sleep=held, max_waiting=1, host="web-1")
    first_host.acquire("offresdemploi")  # the turn that is now
    threads, _ = run_callers(1, lambda: first_host.acquire("offresdemploi"))
    held.wait_for(1)
    # Another worker of the same host finds the only seat taken...
    same_host = limiter(shared_cache, frozen, sleep=held, max_waiting=1, host="web-1")
    with pytest.raises(QuotaExceeded, match="waiting room"):
        same_host.acquire("offresdemploi")
    # ... while another host has seats of its own.
    other_threads, other = run_callers(
        1,
        lambda: limiter(shared_cache, frozen, sleep=held, max_waiting=1, host="web-2").acquire(
            "offresdemploi"
        ),
    )
    held.wait_for(1)
    assert held.sleepers == 2 and other == []
    held.release.set()
    for thread in threads + other_threads:
        thread.join(10)


def test_a_background_caller_takes_only_the_next_turn(shared_cache, clock):
    frozen = FakeClock(clock.now)
    limiter(shared_cache, frozen, max_waiting=0).acquire("offresdemploi")  # a page's call, now
    # The next turn is one interval away and nobody waits for it: a background
    # check takes it, without a seat.
    background = FakeClock(frozen.now)
    pacer = limiter(shared_cache, background, max_waiting=0)
    assert pacer.acquire("offresdemploi", may_wait=False) == pytest.approx(0.25)
    # Someone is queued before it: the background check is refused at once.
    later = FakeClock(frozen.now)
    with pytest.raises(QuotaExceeded) as caught:
        limiter(shared_cache, later).acquire("offresdemploi", may_wait=False)
    assert caught.value.reason == "background"
    assert caught.value.retry_after == pytest.approx(0.5)
    assert later.sleeps == []


def test_a_turn_past_the_budget_is_refused_before_asking_for_a_seat(shared_cache, clock):
    """A call that cannot be served within its budget is refused for that (``turn``),
    before the waiting room is consulted: it never takes a seat another caller
    could use, and a full room is not blamed for it."""
    frozen = FakeClock(clock.now)
    booked: list[float] = []
    booker = limiter(shared_cache, frozen, rate=4, sleep=booked.append)
    for _ in range(5):  # windows at 0, 0.25, 0.5, 0.75 and 1.0 s from now
        booker.acquire("offresdemploi")
    waits: list[float] = []
    late = limiter(shared_cache, frozen, rate=4, max_wait=1.0, sleep=waits.append, max_waiting=0)
    with pytest.raises(QuotaExceeded) as caught:
        late.acquire("offresdemploi")
    assert (caught.value.reason, caught.value.retry_after) == ("turn", pytest.approx(1.25))
    assert waits == []
