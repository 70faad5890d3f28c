"""France Travail's quota never takes the site down (issue 18).

Over real HTTP against the sandbox (its own quota lifted: ftauth's pacing is what
is tested). The schedule runs on the test's clock and a caller waiting for its
turn is held until the test lets go (``tests.pacing``): every figure is a count,
of callers waiting, of pages answered, of calls the sandbox received.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from ftauth.sandbox.hooks import SandboxHooks
from ftauth.sandbox.scripted import ScriptedUser
from tests.pacing import in_threads, settle

pytestmark = pytest.mark.django_db(transaction=True)

PERSONA = "sandbox-individu-camille"
USERINFO = "peconnect-individu/v1/userinfo"
CALL = f"/t/call/individu/{USERINFO}"


class Counting(SandboxHooks):
    """Counts the API calls the sandbox answers, per API."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()

    def api_response(self, request, api, answer):
        with self.lock:
            self.calls[api] += 1
        return answer()

    def userinfo_calls(self) -> int:
        with self.lock:
            return self.calls["peconnect-individu"]


@pytest.fixture
def hooks(settings):
    installed = Counting()
    settings.FTAUTH_SANDBOX = {"HOOKS": installed, "QUOTA_PER_SECOND": 1000}
    return installed


@pytest.fixture
def site(sandbox, settings, hooks):
    settings.ROOT_URLCONF = "tests.evidence_urls"
    settings.FTAUTH = {**settings.FTAUTH, "API_MAX_WAITING": 2}
    return sandbox


def devices(base: str, count: int) -> list[ScriptedUser]:
    users = [ScriptedUser(base, timeout=60) for _ in range(count)]
    for user in users:
        page = user.sign_in("individu", persona=PERSONA, next_url="/ftauth/account/")
        assert page.status_code == 200 and page.url.endswith("/ftauth/account/"), page.text[:300]
    return users


def checks_due(settings) -> None:
    settings.FTAUTH = {**settings.FTAUTH, "CONSENT_CHECK_INTERVAL": 0}


def test_with_the_quota_saturated_a_page_that_calls_nothing_is_served_at_once(
    site, hooks, pacing, settings
):
    from django.db import connection

    if connection.vendor != "postgresql":
        # Seven requests at once: the live server hands its one in-memory SQLite
        # connection to every thread (as tests/test_signin_calls.py says).
        pytest.skip("concurrent requests are tested on PostgreSQL (set DATABASE_URL)")
    *callers, visitor = devices(site, 7)
    pacing.install()
    before = hooks.userinfo_calls()
    threads, pages = in_threads([lambda user=user: user.get(CALL).json() for user in callers])
    # Two requests wait for their turn (the waiting room's two seats)...
    pacing.wait_for(2)
    # ... and the four others are answered at once: one had the turn that was free,
    # three are told when to come back.
    settle(lambda: len(pages) == 4)
    # Meanwhile a signed-in visitor, due for a consent check, opens the home page.
    checks_due(settings)
    home = visitor.get("/", allow_redirects=False)
    assert home.status_code == 200 and 'data-ftauth-realm="individu"' in home.text
    assert pacing.sleepers == 2 and len(pages) == 4  # the two still wait
    assert hooks.userinfo_calls() - before == 1  # nor did the visitor's check wait
    refused = [page for page in pages if page.get("error") == "QuotaExceeded"]
    assert len(refused) == 3
    assert all(page["reason"] == "waiting" and page["retry_after"] > 0 for page in refused)
    pacing.release.set()
    for thread in threads:
        thread.join(60)
    assert [page.get("ok") for page in pages].count(True) == 3
    assert hooks.userinfo_calls() - before == 3


def test_the_budget_counts_from_the_requests_arrival(site, hooks, pacing):
    first, late = devices(site, 2)
    pacing.install()
    before = hooks.userinfo_calls()
    assert first.get(CALL).json()["ok"]  # the turn that is now; the next is 0.26 s away
    # The proxy says this request arrived 4.9 s ago: it waited that long for a
    # worker, and 0.1 s of API_TIME_BUDGET (5 s) is left, less than the wait for
    # its turn. It is refused before it waits, with the real wait.
    arrived = {"X-Request-Start": f"t={time.time() - 4.9:.3f}"}
    page = late.get(CALL, headers=arrived).json()
    assert (page["error"], page["reason"]) == ("QuotaExceeded", "turn")
    assert 0.2 < page["retry_after"] < 0.6  # one turn away
    assert pacing.sleepers == 0 and hooks.userinfo_calls() - before == 1
    # The same request without the header has its whole budget: it waits its turn.
    threads, pages = in_threads([lambda: late.get(CALL).json()])
    pacing.wait_for(1)
    pacing.release.set()
    threads[0].join(60)
    assert pages[0]["ok"] and hooks.userinfo_calls() - before == 2


def test_a_request_start_header_never_lengthens_the_budget(site, hooks, pacing, settings):
    first, other = devices(site, 2)
    # A budget shorter than one turn (0.26 s at 4 calls/s).
    settings.FTAUTH = {**settings.FTAUTH, "API_TIME_BUDGET": 0.2}
    pacing.install()
    assert first.get(CALL).json()["ok"]
    for start in (None, f"t={time.time() + 3600:.3f}", "t=soon", "9" * 40):
        headers = {"X-Request-Start": start} if start else {}
        page = other.get(CALL, headers=headers).json()
        assert (page["error"], page["reason"]) == ("QuotaExceeded", "turn"), start
    assert pacing.sleepers == 0


def test_one_userinfo_call_per_page_when_a_check_is_due(site, hooks, settings):
    (user,) = devices(site, 1)
    checks_due(settings)
    before = hooks.userinfo_calls()
    # The page calls userinfo with the session's grant: that call is the check.
    assert user.get(CALL).json()["ok"]
    assert hooks.userinfo_calls() - before == 1
    # A page that calls nothing: the check, after it, is the one call.
    assert user.get("/ftauth/account/", allow_redirects=False).status_code == 200
    assert hooks.userinfo_calls() - before == 2


def test_a_refresh_is_the_check_of_a_page_calling_another_api(site, hooks, settings):
    """The refresh is the realm's witness too: a page whose expired token is refreshed
    for a call to another API has made the due check (a call to another API never is)."""
    from datetime import timedelta

    from django.utils import timezone

    from ftauth.models import Grant

    (user,) = devices(site, 1)
    Grant.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    checks_due(settings)
    before = hooks.userinfo_calls()
    page = user.get("/t/call/individu/peconnect-statut/v1/statut").json()
    assert page.get("ok") or page.get("error") == "ApiError"  # whatever the API says
    assert Grant.objects.get().refreshed_at is not None
    assert hooks.userinfo_calls() == before
