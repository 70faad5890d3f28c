"""When the request being served arrived: budgets count from there.

A sync worker takes a request from the listen queue only when it is free: a
request that waited there for a worker has already spent that time, and a
budget counted from when the worker took it (``API_TIME_BUDGET``) let pages
wait 37 s in the queue and then their whole budget (issue 18). So calls made
while serving a request count their budget from its arrival.

The worker only knows when it took the request. A proxy in front (nginx,
HAProxy, a platform's router) can say when the request reached it, in
``REQUEST_START_HEADER`` (``X-Request-Start`` by default, the header those
tools conventionally set: ``t=1700000000.123`` in seconds, or a number of
milliseconds or microseconds). Anyone can send that header when no proxy sets
it, so it can only make a request older, never younger: a value later than
the moment the worker took the request (or unreadable) is ignored. A client
who claims an early arrival only shortens its own budget. (A proxy whose
clock runs behind the application's would shorten every budget: keep clocks
in sync, as the shared quota already requires, or set the header to ``""``.)

The arrival is kept on the monotonic clock, per request (a context variable,
set by ``ConsentMiddleware``); outside a request there is none and a call's
budget starts with the call.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

# time.monotonic() at the arrival of the request being served.
_arrived: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "ftauth_arrived", default=None
)

# Longer than this, a timestamp is in milliseconds; longer still, microseconds.
_SECONDS_BELOW = 1e11
_MILLISECONDS_BELOW = 1e14


def arrived_at() -> float | None:
    """``time.monotonic()`` when the request being served arrived; ``None`` outside one."""
    return _arrived.get()


def header_time(value: str) -> float | None:
    """The epoch seconds an ``X-Request-Start`` value says (``t=`` prefix optional,
    seconds, milliseconds or microseconds); ``None`` when it is not one."""
    text = value.strip().removeprefix("t=").strip()
    if not text or len(text) > 32:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    if not math.isfinite(number) or number <= 0:
        return None
    if number >= _MILLISECONDS_BELOW:
        return number / 1e6
    if number >= _SECONDS_BELOW:
        return number / 1e3
    return number


def arrival_of(
    meta: Mapping[str, Any],
    header: str,
    *,
    wall: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
) -> float:
    """The request's arrival on the monotonic clock: now, or earlier if ``header``
    (a request header's name) says so; never later than now."""
    now = monotonic()
    if not header:
        return now
    raw = meta.get("HTTP_" + header.upper().replace("-", "_"))
    started = header_time(raw) if isinstance(raw, str) else None
    if started is None:
        return now
    waited = wall() - started
    return now - waited if waited > 0 else now


@contextlib.contextmanager
def arriving(at: float) -> Iterator[None]:
    """Calls made inside the block count their budget from ``at`` (monotonic)."""
    token = _arrived.set(at)
    try:
        yield
    finally:
        _arrived.reset(token)
