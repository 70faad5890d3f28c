"""Every number an identity server sends is finite and bounded, or the answer is refused.

Through real HTTP, against the fake France Travail (tests/fakeop.py): NaN, infinities,
huge and negative values in the token answer, the ID token, a logout token and the
quota headers end as the page of an invalid answer (or a 400 for a logout token),
never a 500 (the test client re-raises what a view lets escape).
"""

from __future__ import annotations

import time

import pytest
from django.test import Client

from ftauth.core.http import parse_retry_after
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
