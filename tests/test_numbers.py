"""Every number an identity server sends is finite and bounded, or the answer is refused.

Through real HTTP, against the fake France Travail (tests/fakeop.py): NaN, infinities,
huge and negative values in the token answer, the ID token, a logout token and the
quota headers end as the page of an invalid answer (or a 400 for a logout token),
never a 500 (the test client re-raises what a view lets escape).
"""

from __future__ import annotations

import math
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftauth.core.http import parse_retry_after
from ftauth.core.numbers import MAX_LIFETIME
from ftauth.models import ConsumedLogoutToken, Grant
from tests.fakeop import Raw
from tests.idp import sign_in

pytestmark = pytest.mark.django_db

NOW = int(time.time())


@pytest.mark.parametrize(
    "expires_in",
    [Raw("1e999"), Raw("-1e999"), Raw("NaN"), Raw("1" + "0" * 20), -5, "Infinity", 10**9],
    ids=["1e999", "-1e999", "nan", "10**20", "negative", "infinity-string", "31-years"],
)
def test_token_answer_with_an_absurd_expires_in_is_refused(client, idp, expires_in):
    idp.token_fields = {"expires_in": expires_in}
    _, response = sign_in(client, idp)
    assert response.status_code == 400
    assert "_auth_user_id" not in client.session
    assert not Grant.objects.exists()


def test_token_answer_with_a_plausible_expires_in_signs_in(client, idp):
    idp.token_fields = {"expires_in": "1170"}
    _, response = sign_in(client, idp)
    assert response.status_code == 302
    assert "_auth_user_id" in client.session


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": float("nan")},
        {"exp": float("inf")},
        {"exp": 10**20},
        {"iat": float("nan")},
        {"iat": float("-inf")},
        {"iat": -(10**20)},
        {"auth_time": float("nan")},
        {"auth_time": float("inf")},
        {"auth_time": 10**20},
        {"auth_time": NOW + 3600},
    ],
    ids=lambda claims: "-".join(f"{k}={v}" for k, v in claims.items()),
)
def test_id_token_with_a_number_that_is_no_time_never_signs_in(client, idp, claims):
    idp.claim_overrides = claims
    _, response = sign_in(client, idp)
    assert response.status_code == 400
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    "claims",
    [
        {"iat": float("nan")},
        {"iat": float("inf")},
        {"iat": 10**20},
        {"exp": float("nan")},
        {"exp": float("inf")},
    ],
    ids=lambda claims: "-".join(f"{k}={v}" for k, v in claims.items()),
)
def test_logout_token_with_a_number_that_is_no_time_is_a_400(fakeop, claims):
    token = fakeop.logout_token(**claims)
    response = Client().post("/ftauth/backchannel-logout/individu/", {"logout_token": token})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert not ConsumedLogoutToken.objects.exists()


@pytest.mark.parametrize("value", ["1e999", "nan", "99999999999", "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_retry_after_beyond_a_day_is_no_delay(value):
    assert parse_retry_after(value) is None


def test_token_endpoint_429_with_an_absurd_retry_after_is_a_503_without_it(client, idp):
    idp.fail_next("token", 429, {"Retry-After": "99999999999"}, b"")
    _, response = sign_in(client, idp)
    assert response.status_code == 503
    assert int(response.get("Retry-After", "0")) <= 24 * 3600


def test_absurd_quota_headers_are_ignored(client, idp):
    idp.fail_next(
        "userinfo",
        200,
        {
            "X-Ratelimit-Remaining-Clientidlimiter": "1e999",
            "X-Ratelimit-Burst-Capacity-Clientidlimiter": "1" + "0" * 400,
        },
        {"sub": "sub-job-seeker-1", "given_name": "Camille"},
    )
    _, response = sign_in(client, idp)
    assert response.status_code == 302


# --- property tests: any number, in any field ------------------------------------------


def is_time(value) -> bool:
    """The test's own oracle (not ftauth's): a finite JSON number a datetime can hold."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value) and 0 <= value <= 253_402_300_799
    except OverflowError:
        return False


FEW = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# What JSON can carry where a number belongs: any int (Python reads any size), any
# float, the literals Python's json accepts, numeric and other strings, null, booleans.
numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.integers(min_value=-(10**10), max_value=10**10).map(lambda n: NOW + n),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([Raw("1e999"), Raw("-1e999"), Raw("NaN"), Raw("Infinity"), Raw("1e308")]),
    st.from_regex(r"\A-?[0-9]{1,25}(\.[0-9]{0,5})?\Z").map(str),
    st.sampled_from(["", "soon", "nan", "inf", None, True, False, [], {}]),
)


@FEW
@given(expires_in=numbers)
def test_any_expires_in_signs_in_with_a_sane_expiry_or_is_refused(fakeop, expires_in):
    fakeop.token_fields = {"expires_in": expires_in}
    browser = Client()
    before = timezone.now()
    _, response = sign_in(browser, fakeop)  # a 500 would raise here
    assert response.status_code in (302, 400), response.status_code
    if response.status_code == 302:
        expires_at = Grant.objects.latest("pk").expires_at  # this sign-in's grant
        assert before <= expires_at <= timezone.now() + timedelta(seconds=MAX_LIFETIME)
    else:
        assert "_auth_user_id" not in browser.session


@FEW
@given(claim=st.sampled_from(["exp", "iat", "auth_time"]), value=numbers)
def test_an_id_token_signs_in_only_with_times_that_are_times(fakeop, claim, value):
    fakeop.claim_overrides = {claim: value}
    browser = Client()
    _, response = sign_in(browser, fakeop)
    assert response.status_code in (302, 400), response.status_code
    if response.status_code == 302:
        now = time.time()
        # None leaves the claim out: auth_time is optional (OIDC Core 2), exp and iat not.
        assert is_time(value) or (claim == "auth_time" and value is None)
        if claim == "exp":
            assert value > now - 120
        elif value is not None:
            assert value <= now + 120


@FEW
@given(claim=st.sampled_from(["iat", "exp"]), value=numbers)
def test_a_logout_token_with_any_number_is_answered_never_a_500(fakeop, claim, value):
    token = fakeop.logout_token(**{claim: value})
    response = Client().post("/ftauth/backchannel-logout/individu/", {"logout_token": token})
    assert response.status_code in (200, 400), response.status_code
    if response.status_code == 200:
        # None leaves the claim out: a logout token's exp is optional (section 2.4).
        assert is_time(value) or (claim == "exp" and value is None)


# Deeper than Python's JSON reader recurses (a RecursionError, not a ValueError).
TOO_DEEP = Raw("[" * 20_000 + "]" * 20_000)


def test_a_token_answer_nested_too_deep_is_refused_not_a_500(client, idp):
    idp.token_fields = {"extra": TOO_DEEP}
    _, response = sign_in(client, idp)
    assert response.status_code == 400
    assert "_auth_user_id" not in client.session and not Grant.objects.exists()


def test_a_userinfo_answer_nested_too_deep_is_refused_not_a_500(client, idp):
    idp.userinfo_body = {"sub": "x", "extra": TOO_DEEP}
    _, response = sign_in(client, idp)
    assert response.status_code == 400
    assert "_auth_user_id" not in client.session and not Grant.objects.exists()
