"""When a request arrived (ftauth.internal.arrival): budgets count from there."""

from __future__ import annotations

import pytest

from ftauth.internal.arrival import arrival_of, arrived_at, arriving, header_time

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("t=1699999998.5", NOW - 1.5),  # nginx: t=${msec}
        ("1699999998500", NOW - 1.5),  # milliseconds (Heroku)
        ("t=1699999998500000", NOW - 1.5),  # microseconds (New Relic's convention)
        ("  t= 1699999998.5 ", NOW - 1.5),
    ],
)
def test_request_start_values_in_every_unit(value, seconds):
    assert header_time(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["", "t=", "soon", "t=nan", "inf", "-5", "0", "9" * 40, "1e999"])
def test_unreadable_request_start_values_are_none(value):
    assert header_time(value) is None


def arrival(header_value, *, header="X-Request-Start"):
    meta = {} if header_value is None else {"HTTP_X_REQUEST_START": header_value}
    return arrival_of(meta, header, wall=lambda: NOW, monotonic=lambda: 500.0)


def test_the_header_makes_a_request_older():
    assert arrival("t=1699999996.0") == pytest.approx(496.0)


@pytest.mark.parametrize("value", [None, "t=1700000060.0", "garbage", "t=1700000000.0"], ids=str)
def test_the_header_never_makes_a_request_younger(value):
    """Anyone can send it: a later arrival, or an unreadable one, is ignored."""
    assert arrival(value) == 500.0


def test_the_header_is_ignored_when_the_setting_names_none():
    assert arrival("t=1699999996.0", header="") == 500.0


def test_the_arrival_belongs_to_the_request_being_served():
    assert arrived_at() is None
    with arriving(42.0):
        assert arrived_at() == 42.0
    assert arrived_at() is None
