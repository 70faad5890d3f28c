"""ConsentMiddleware's cost on the path between two checks, and how fast a withdrawal ends sessions.

Between checks the middleware reads the session's marker and nothing else.
Measured side by side in one run, alternating: the same signed-in request
(cache session engine, a view that returns at once) through a handler with
ConsentMiddleware and through one without it; the ratio of the medians is
the figure. Also: the middleware alone (ns per call, session already loaded),
one due check that needs no call to France Travail (another session of the
account asked moments ago), and the time ``withdraw()`` takes to end every
session of an account on each server-side engine.

Environment: ``BENCH_ROUNDS`` (default 3000 requests per side),
``DATABASE_URL``/``CACHE_URL`` as for the tests (default SQLite in memory, locmem).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from importlib import import_module

from django.http import HttpResponse
from django.urls import path

from . import Report

TITLE = "ConsentMiddleware: cost between checks; withdrawal to sessions ended"

MIDDLEWARE_WITHOUT = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
MIDDLEWARE_WITH = [*MIDDLEWARE_WITHOUT, "ftauth.middleware.ConsentMiddleware"]
# The ratio a reader should expect: reading one session key is noise next to a request.
GOAL_RATIO = 1.05


def ping(request):
    """A page of a signed-in user: it reads the session (as ``request.user`` would)."""
    request.session.get("_auth_user_id")
    return HttpResponse(b"ok")


def bare(request):
    """A page that never reads the session: the middleware then pays for loading it."""
    return HttpResponse(b"ok")


urlpatterns = [path("ping/", ping), path("bare/", bare)]


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()


_accounts = iter(range(1, 10**9))


def _make_account():
    from django.contrib.auth import get_user_model

    from ftauth.models import LinkedAccount

    n = next(_accounts)
    user = get_user_model().objects.create_user(username=f"bench-{n}")
    return LinkedAccount.objects.create(user=user, realm="individu", sub=f"bench-sub-{n}")


def _median_ns(samples: list[int]) -> float:
    return statistics.median(samples)


def _signed_in_session(engine: str, account) -> str:
    from ftauth.internal.sessions import SESSION_KEY, _key_digest

    store = import_module(engine).SessionStore()
    store["_auth_user_id"] = str(account.user_id)
    store["_auth_user_backend"] = "ftauth.backends.FranceTravailBackend"
    store.save()
    store[SESSION_KEY] = {
        "account": account.pk,
        "realm": account.realm,
        "sid": "bench-sid",
        "grant": None,
        "checked_at": time.time() + 10**6,  # never due during the run
        "key": _key_digest(store.session_key),
    }
    store.save()
    return store.session_key


def _client(settings, middleware, session_key):
    from django.test import Client

    settings.MIDDLEWARE = middleware
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = session_key
    assert client.get("/ping/").status_code == 200  # loads the middleware chain now
    return client


def _side_by_side(report: Report, account, rounds: int) -> None:
    from django.test.utils import override_settings

    engine = "django.contrib.sessions.backends.cache"
    with override_settings(ROOT_URLCONF=__name__, SESSION_ENGINE=engine):
        from django.conf import settings

        session_key = _signed_in_session(engine, account)
        original = settings.MIDDLEWARE
        try:
            with_mw = _client(settings, MIDDLEWARE_WITH, session_key)
            without_mw = _client(settings, MIDDLEWARE_WITHOUT, session_key)
        finally:
            settings.MIDDLEWARE = original
        for url, label in (
            ("/ping/", "page reading the session"),
            ("/bare/", "page not reading it"),
        ):
            _compare(report, with_mw, without_mw, url, label, rounds)


def _compare(report: Report, with_mw, without_mw, url: str, label: str, rounds: int) -> None:
    timings: dict[str, list[int]] = {"with": [], "without": []}
    for _ in range(200):  # warm-up
        with_mw.get(url)
        without_mw.get(url)
    for index in range(rounds):
        # Alternate which goes first, so drift and caches favour neither.
        order = (("with", with_mw), ("without", without_mw))
        for name, client in order if index % 2 else reversed(order):
            started = time.perf_counter_ns()
            client.get(url)
            timings[name].append(time.perf_counter_ns() - started)
    with_ns, without_ns = _median_ns(timings["with"]), _median_ns(timings["without"])
    ratio = with_ns / without_ns
    report.add(
        f"{label}: without / with middleware",
        f"{without_ns / 1000:.1f} / {with_ns / 1000:.1f} µs (median)",
    )
    # The goal holds for the page of a signed-in user; the other is the worst case,
    # where ConsentMiddleware is the first to load the session.
    goal = url == "/ping/"
    report.add(
        f"{label}: ratio with/without",
        f"{ratio:.3f}",
        goal=f"<= {GOAL_RATIO}" if goal else "",
        met=(ratio <= GOAL_RATIO) if goal else None,
    )


def _middleware_alone(report: Report, account, rounds: int) -> None:
    from django.test import RequestFactory

    from ftauth.middleware import ConsentMiddleware

    engine = "django.contrib.sessions.backends.cache"
    session_key = _signed_in_session(engine, account)
    request = RequestFactory().get("/ping/")
    request.session = import_module(engine).SessionStore(session_key)
    assert request.session.get("_auth_user_id")  # loaded once, as SessionMiddleware would
    response = HttpResponse(b"ok")
    middleware = ConsentMiddleware(lambda request: response)
    loops = rounds * 20
    started = time.perf_counter_ns()
    for _ in range(loops):
        middleware.process_view(request, ping, (), {}) or middleware(request)
    elapsed = time.perf_counter_ns() - started
    baseline_started = time.perf_counter_ns()
    get_response = middleware.get_response
    for _ in range(loops):
        get_response(request)
    baseline = time.perf_counter_ns() - baseline_started
    report.add("middleware alone, between checks", f"{(elapsed - baseline) / loops:.0f} ns/call")


def _due_check_without_http(report: Report, account) -> None:
    """A due check when another session of the account asked France Travail moments ago."""
    from django.db import connection
    from django.test import RequestFactory
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from ftauth.internal.sessions import SESSION_KEY
    from ftauth.middleware import ConsentMiddleware
    from ftauth.models import AccountSession, Grant

    engine = "django.contrib.sessions.backends.cache"
    AccountSession.objects.get_or_create(account=account, sid="bench-sid", engine=engine)
    Grant.objects.filter(account=account).update(checked_at=timezone.now())
    middleware = ConsentMiddleware(lambda request: HttpResponse(b"ok"))
    samples, queries = [], 0
    for _ in range(300):
        session_key = _signed_in_session(engine, account)
        request = RequestFactory().get("/ping/")
        request.session = import_module(engine).SessionStore(session_key)
        marker = dict(request.session[SESSION_KEY], checked_at=0)
        request.session[SESSION_KEY] = marker
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter_ns()
            middleware.process_view(request, ping, (), {}) or middleware(request)
            samples.append(time.perf_counter_ns() - started)
        queries = len(captured)
    report.add(
        "due check, no call to France Travail (median)",
        f"{_median_ns(samples) / 1000:.0f} µs, {queries} queries",
    )


def _withdrawal_to_sessions_ended(report: Report) -> None:
    from django.test import RequestFactory
    from django.test.utils import override_settings

    from ftauth import consent
    from ftauth.internal.sessions import TOMBSTONE_KEY, register_session

    sessions_per_account = 5
    with tempfile.TemporaryDirectory() as files:
        for engine in ("db", "cache", "cached_db", "file", "signed_cookies"):
            module = f"django.contrib.sessions.backends.{engine}"
            with override_settings(SESSION_ENGINE=module, SESSION_FILE_PATH=files):
                samples = []
                for _ in range(20):
                    account = _make_account()
                    keys = []
                    for _ in range(sessions_per_account):
                        request = RequestFactory().get("/")
                        request.session = import_module(module).SessionStore()
                        request.session["_auth_user_id"] = str(account.user_id)
                        request.session.cycle_key()
                        register_session(request, account, None)
                        request.session.save()
                        keys.append(request.session.session_key)
                    started = time.perf_counter_ns()
                    consent.withdraw(account, reason="bench")
                    samples.append(time.perf_counter_ns() - started)
                    if engine != "signed_cookies":
                        store = import_module(module).SessionStore
                        assert all(store(key).get(TOMBSTONE_KEY) for key in keys)
                median_ms = _median_ns(samples) / 1e6
                when = (
                    "next request"
                    if engine != "signed_cookies"
                    else "next check (<= CONSENT_CHECK_INTERVAL)"
                )
                report.add(
                    f"withdraw() ending {sessions_per_account} sessions, {engine}",
                    f"{median_ms:.1f} ms; ended at the {when}",
                )


def run() -> Report:
    _setup()
    from django.db import connection

    report = Report(TITLE)
    rounds = int(os.environ.get("BENCH_ROUNDS", "3000"))
    # A throwaway database (like the tests'), whatever DATABASE_URL names.
    database = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        account = _make_account()
        _side_by_side(report, account, rounds)
        _middleware_alone(report, account, rounds)
        _due_check_without_http(report, account)
        _withdrawal_to_sessions_ended(report)
    finally:
        connection.creation.destroy_test_db(database, verbosity=0)
    report.notes.append(
        "between checks the middleware makes no query and no HTTP call (tests/test_middleware.py)"
    )
    report.notes.append(
        "a withdrawal is noticed at the session's next check (<= CONSENT_CHECK_INTERVAL, "
        "300 s by default), at once on a back-channel logout or when a token is used"
    )
    return report
