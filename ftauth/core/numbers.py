"""Numbers that come from outside (a token answer, a JWT, a header), checked once.

JSON as Python reads it accepts ``NaN``, ``Infinity`` and ``1e999`` (infinity),
and integers of any size. NaN compares false with everything, so it passes every
"not expired" test; infinity and ``10**20`` overflow the first ``datetime`` they
meet (a 500). Each number an identity server sends is therefore refused unless it
is finite and within what it can mean: a time between 1970 and 9999, a lifetime
of at most a year, a delay of at most a day.
"""

from __future__ import annotations

import math
from typing import Any

# 9999-12-31T23:59:59Z: the last second a datetime can hold.
MAX_TIMESTAMP = 253_402_300_799
# An access token living longer than a year is no answer France Travail gives.
MAX_LIFETIME = 366 * 24 * 3600
# A Retry-After (or a quota's pause) longer than a day is no delay to honour.
MAX_DELAY = 24 * 3600


def is_finite_number(value: Any) -> bool:
    """An int or float (not a bool), neither NaN nor infinite."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def is_timestamp(value: Any) -> bool:
    """A JWT ``NumericDate`` (RFC 7519 2) a datetime can hold: 0 to year 9999."""
    return is_finite_number(value) and 0 <= value <= MAX_TIMESTAMP


def bounded(value: Any, *, minimum: float, maximum: float) -> float | None:
    """``value`` as a float when it is a finite number (or a numeric string) within
    the bounds; None otherwise."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not is_finite_number(value) or not minimum <= value <= maximum:
        return None
    return float(value)
