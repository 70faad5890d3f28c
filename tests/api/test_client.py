"""The API client: paths, JSON, typed errors, 401 and 429 handling."""

from __future__ import annotations

import itertools

import pytest

from ftauth.api.client import check_path
from ftauth.core.errors import ApiError, InvalidResponse, QuotaExceeded, TransportError
from ftauth.internal.arrival import arriving

from .conftest import make_app_client
from .stub import Reply, json_reply


def quota_reply(retry_after: str | None = "2") -> Reply:
    headers = {
        "X-Ratelimit-Burst-Capacity-Clientidlimiter": "4",
        "X-Ratelimit-Remaining-Clientidlimiter": "0",
    }
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return json_reply({"message": "quota"}, 429, **headers)


@pytest.fixture
def timed(fake_ft, clock):
    """Record the fake time at which each API request reached the server."""
    times: list[float] = []
    previous = fake_ft.responder

    def responder(request):
        if request.path.startswith("/partenaire/"):
            times.append(clock())
        return previous(request)

    fake_ft.responder = responder
    return times


# --- 429 -------------------------------------------------------------------------------


def test_retry_after_delays_the_retry_by_that_long(locmem_cache, clock, fake_ft, timed):
    fake_ft.api_script = [quota_reply("2")]
    client = make_app_client(fake_ft, locmem_cache, clock)
    assert client.get("offresdemploi/v2/offres/search")["resultats"]
    assert len(timed) == 2
    # Two seconds, plus the jitter (0.1 here), plus at most one slot of pacing.
    assert 2.1 <= timed[1] - timed[0] <= 2.1 + 0.25


def test_gives_up_with_quota_exceeded_after_the_bound(locmem_cache, clock, fake_ft, timed):
    fake_ft.api_script = [quota_reply("2") for _ in range(10)]
    client = make_app_client(fake_ft, locmem_cache, clock, API_MAX_RETRIES=3, API_TIME_BUDGET=60)
    with pytest.raises(QuotaExceeded) as caught:
        client.get("offresdemploi/v2/offres/search")
    assert caught.value.retry_after == 2
    assert len(timed) == 4  # the call and three retries
    assert all(later - earlier >= 2.1 for earlier, later in itertools.pairwise(timed))


def test_retry_after_beyond_the_cap_is_not_waited_for(locmem_cache, clock, fake_ft, timed):
    fake_ft.api_script = [quota_reply("120")]
    client = make_app_client(fake_ft, locmem_cache, clock, API_RETRY_AFTER_CAP=30)
    before = clock()
    with pytest.raises(QuotaExceeded) as caught:
        client.get("offresdemploi/v2/offres/search")
    # Retrying before Retry-After would only earn another 429: the caller is told.
    assert caught.value.retry_after == 120
    assert len(timed) == 1
    assert clock() - before < 1


def test_429_without_retry_after_waits_a_second(locmem_cache, clock, fake_ft, timed):
    fake_ft.api_script = [quota_reply(None)]
    client = make_app_client(fake_ft, locmem_cache, clock)
    client.get("offresdemploi/v2/offres/search")
    assert 1.1 <= timed[1] - timed[0] <= 1.1 + 0.25


def test_retries_stop_at_the_time_budget(locmem_cache, clock, fake_ft, timed):
    fake_ft.api_script = [quota_reply("2") for _ in range(10)]
    client = make_app_client(fake_ft, locmem_cache, clock, API_MAX_RETRIES=10, API_TIME_BUDGET=5)
    before = clock()
    with pytest.raises(QuotaExceeded) as caught:
        client.get("offresdemploi/v2/offres/search")
    # 2.1 s per retry: two fit in 5 s, a third would not; the caller hears at once.
    assert len(timed) == 3
    assert clock() - before <= 5
    assert caught.value.retry_after == 2


def test_the_wait_for_a_turn_counts_against_the_budget(locmem_cache, clock, fake_ft, timed):
    client = make_app_client(fake_ft, locmem_cache, clock, API_TIME_BUDGET=1, API_DEFAULT_RATE=1)
    client.limiter.margin = 0.0
    client.get("offresdemploi/v2/offres/search")  # the turn is now
    client.limiter.pause("offresdemploi", 3)  # another process's 429
    with pytest.raises(QuotaExceeded):
        client.get("offresdemploi/v2/offres/search")
    assert len(timed) == 1  # given up without calling


class StopHere(Exception):
    pass


def test_a_429_holds_back_the_other_processes_too(locmem_cache, clock, fake_ft, timed):
    fake_ft.api_script = [quota_reply("2")]
    first = make_app_client(fake_ft, locmem_cache, clock)
    second = make_app_client(fake_ft, locmem_cache, clock)

    def stop(seconds: float) -> None:
        raise StopHere  # the first process is stopped while it waits to retry

    first.sleep = stop
    with pytest.raises(StopHere):
        first.get("offresdemploi/v2/offres/search")
    # The second process had no 429 of its own, and still waits out the first one's.
    second.get("offresdemploi/v2/offres/search")
    assert timed[1] - timed[0] >= 2.1


# --- honest waits ----------------------------------------------------------------------

SEARCH = "offresdemploi/v2/offres/search"


@pytest.fixture
def refusals():
    """Every ``quota_refused`` signal sent during the test: (api, reason, wait)."""
    from ftauth.signals import quota_refused

    received = []

    def receiver(sender, api, reason, wait, **kwargs):
        received.append((api, reason, wait))

    quota_refused.connect(receiver)
    yield received
    quota_refused.disconnect(receiver)


def test_the_budget_counts_from_the_requests_arrival(locmem_cache, clock, fake_ft, timed):
    client = make_app_client(fake_ft, locmem_cache, clock, API_TIME_BUDGET=5)
    client.limiter.margin = 0.0
    client.get(SEARCH)  # the turn that is now; the next one is 0.25 s away
    # This request waited 4.9 s for a worker: 0.1 s of its budget is left, too
    # little for that turn. It is refused before it waits, with the real wait.
    with arriving(clock() - 4.9), pytest.raises(QuotaExceeded) as caught:
        client.get(SEARCH)
    assert (caught.value.reason, caught.value.retry_after) == ("turn", pytest.approx(0.25))
    assert len(timed) == 1 and clock.sleeps == []
    # A request that has just arrived waits for the same turn.
    with arriving(clock()):
        client.get(SEARCH)
    assert len(timed) == 2 and clock.sleeps == [pytest.approx(0.25)]


def test_a_call_whose_budget_is_spent_is_still_made_when_its_turn_is_now(
    locmem_cache, clock, fake_ft, timed
):
    """The next tick of an idle schedule is alignment, not a wait: refusing it would
    turn away a call nobody else wants the quota for."""
    client = make_app_client(fake_ft, locmem_cache, clock)
    with arriving(clock() - 60):
        assert client.get(SEARCH)["resultats"]
    assert len(timed) == 1


def test_an_arrival_in_the_future_does_not_lengthen_the_budget(locmem_cache, clock, fake_ft):
    client = make_app_client(fake_ft, locmem_cache, clock, API_TIME_BUDGET=1)
    client.limiter.pause("offresdemploi", 3)  # another process's 429
    with arriving(clock() + 60), pytest.raises(QuotaExceeded):
        client.get(SEARCH)
    assert clock.sleeps == [] and not fake_ft.api_requests


def test_a_429_is_waited_for_only_with_a_seat(locmem_cache, clock, fake_ft, timed):
    fake_ft.api_script = [quota_reply("2")]
    client = make_app_client(fake_ft, locmem_cache, clock, API_MAX_WAITING=0)
    client.limiter.margin = 0.0  # the first turn is now: no wait for it
    with pytest.raises(QuotaExceeded) as caught:
        client.get(SEARCH)
    assert (caught.value.reason, caught.value.retry_after) == ("429", 2)
    assert len(timed) == 1 and clock.sleeps == []


def test_a_background_call_does_not_retry_a_429(locmem_cache, clock, fake_ft, timed):
    fake_ft.api_script = [quota_reply("2")]
    client = make_app_client(fake_ft, locmem_cache, clock, background=True)
    client.limiter.margin = 0.0
    with pytest.raises(QuotaExceeded):
        client.get(SEARCH)
    assert len(timed) == 1 and clock.sleeps == []
    # Every process holds back all the same.
    assert client.limiter._paused_until("offresdemploi") > clock()


def test_every_refusal_is_logged_once_with_its_wait(locmem_cache, clock, fake_ft, caplog, refusals):
    client = make_app_client(fake_ft, locmem_cache, clock, API_RETRY_AFTER_CAP=30)
    fake_ft.api_script = [quota_reply("120")]
    with caplog.at_level("INFO", logger="ftauth.api"), pytest.raises(QuotaExceeded):
        client.get(SEARCH)
    client.limiter.margin = 0.0
    with caplog.at_level("INFO", logger="ftauth.api"), pytest.raises(QuotaExceeded):
        client.get(SEARCH)  # the schedule is paused for two minutes: no turn in time
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(lines) == 2
    assert "(429): next turn in 120.0 s" in lines[0] and "(turn)" in lines[1]
    assert [(api, reason) for api, reason, _ in refusals] == [
        ("offresdemploi", "429"),
        ("offresdemploi", "turn"),
    ]
    assert refusals[0][2] == 120 and refusals[1][2] > 100


# --- 401 -------------------------------------------------------------------------------


def test_rejected_application_token_is_renewed_once(shared_cache, clock, fake_ft):
    client = make_app_client(fake_ft, shared_cache, clock)
    client.get("offresdemploi/v2/offres/search")
    fake_ft.revoke(fake_ft.issued[0])  # revoked early at France Travail
    assert client.get("offresdemploi/v2/offres/search")["resultats"]
    assert len(fake_ft.token_requests) == 2
    # Every process now uses the new one.
    assert make_app_client(fake_ft, shared_cache, clock).get("offresdemploi/v2/offres/search")
    assert len(fake_ft.token_requests) == 2


def test_second_401_is_an_api_error(locmem_cache, clock, fake_ft):
    fake_ft.api_script = [json_reply({"m": "no"}, 401), json_reply({"m": "still no"}, 401)]
    client = make_app_client(fake_ft, locmem_cache, clock)
    with pytest.raises(ApiError) as caught:
        client.get("offresdemploi/v2/offres/search")
    assert caught.value.status == 401
    assert caught.value.body == {"m": "still no"}
    assert len(fake_ft.api_requests) == 2


# --- answers ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 206])
def test_json_answers_are_decoded(locmem_cache, clock, fake_ft, status):
    fake_ft.api_script = [json_reply({"resultats": [1, 2]}, status, **{"Content-Range": "0-1/2"})]
    response = make_app_client(fake_ft, locmem_cache, clock).request(
        "GET", "offresdemploi/v2/offres/search", params={"motsCles": "pain"}
    )
    assert (response.status, response.data) == (status, {"resultats": [1, 2]})
    assert response.headers["Content-Range"] == "0-1/2"
    assert fake_ft.api_requests[0].query == {"motsCles": ["pain"]}


def test_no_content_is_none(locmem_cache, clock, fake_ft):
    fake_ft.api_script = [Reply(204)]
    assert (
        make_app_client(fake_ft, locmem_cache, clock).get("offresdemploi/v2/offres/search") is None
    )


def test_success_without_json_is_an_invalid_response(locmem_cache, clock, fake_ft):
    fake_ft.api_script = [Reply(200, b"<html>maintenance</html>", {"Content-Type": "text/html"})]
    with pytest.raises(InvalidResponse):
        make_app_client(fake_ft, locmem_cache, clock).get("offresdemploi/v2/offres/search")


def test_client_error_is_an_api_error_with_its_body(locmem_cache, clock, fake_ft):
    fake_ft.api_script = [json_reply({"codeErreur": "X", "message": "bad range"}, 400)]
    with pytest.raises(ApiError) as caught:
        make_app_client(fake_ft, locmem_cache, clock).get("offresdemploi/v2/offres/search")
    assert caught.value.status == 400
    assert caught.value.body["message"] == "bad range"
    assert "bad range" not in str(caught.value)  # bodies may hold personal data


def test_server_error_is_a_transport_error(locmem_cache, clock, fake_ft):
    fake_ft.api_script = [Reply(503, b"busy")]
    with pytest.raises(TransportError) as caught:
        make_app_client(fake_ft, locmem_cache, clock).get("offresdemploi/v2/offres/search")
    assert caught.value.status == 503


def test_json_body_is_sent(locmem_cache, clock, fake_ft):
    fake_ft.api_handler = lambda request: json_reply({"echo": request.body.decode()}, 201)
    client = make_app_client(fake_ft, locmem_cache, clock)
    assert client.post("offresdemploi/v2/x", json={"a": 1}) == {"echo": '{"a": 1}'}
    assert fake_ft.api_requests[0].headers["content-type"] == "application/json"


def test_token_goes_in_the_authorization_header_only(locmem_cache, clock, fake_ft):
    client = make_app_client(fake_ft, locmem_cache, clock)
    client.get("offresdemploi/v2/offres/search", params={"motsCles": "x"})
    request = fake_ft.api_requests[0]
    assert request.headers["authorization"] == f"Bearer {fake_ft.issued[0]}"
    assert fake_ft.issued[0] not in str(request.query)
    with pytest.raises(ValueError, match="Authorization"):
        client.get("offresdemploi/v2/offres/search", headers={"authorization": "Bearer mine"})


def test_repr_hides_the_token(locmem_cache, clock, fake_ft):
    client = make_app_client(fake_ft, locmem_cache, clock)
    response = client.request("GET", "offresdemploi/v2/offres/search")
    assert fake_ft.issued[0] not in repr(client) + repr(response)


# --- paths -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "offresdemploi/v2/offres/search",
        "peconnect-individu/v1/userinfo",
        "offresdemploi/v2/offres/123ABC",
        "offresdemploi/v2/referentiel/",
    ],
)
def test_accepts_api_paths(path):
    assert check_path(path) == path


@pytest.mark.parametrize(
    "path",
    [
        "/offresdemploi/v2/offres/search",
        "https://evil.example/steal",
        "//evil.example/steal",
        "offresdemploi/../../other",
        "offresdemploi/v2/%2e%2e/x",
        "offresdemploi/v2/offres/search?motsCles=x",
        "offresdemploi/v2/offres#x",
        "offresdemploi\\v2",
        "offresdemploi//v2",
        "",
        "offres demploi/v2",
    ],
)
def test_refuses_anything_but_a_relative_api_path(path):
    with pytest.raises(ValueError, match="partenaire"):
        check_path(path)


def test_calls_go_under_partenaire(locmem_cache, clock, fake_ft):
    make_app_client(fake_ft, locmem_cache, clock).get("offresdemploi/v2/offres/search")
    assert fake_ft.api_requests[0].path == "/partenaire/offresdemploi/v2/offres/search"
