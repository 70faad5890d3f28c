"""What an operator sees: ftauth's signals and Prometheus metrics, through real sign-ins
against the fake France Travail over real HTTP."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import Client
from prometheus_client import REGISTRY

from ftauth import signals
from ftauth.core.errors import QuotaExceeded
from ftauth.internal import audit
from ftauth.models import AuditEvent
from tests.fakeop import DROP
from tests.idp import sign_in

# Announced on commit: the tests commit, as a site does (no test-wide transaction).
pytestmark = pytest.mark.django_db(transaction=True)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def events(kind: str, realm: str = "individu", reason: str = "") -> float:
    return sample("ftauth_events_total", kind=kind, realm=realm, reason=reason)


def calls(kind: str, status: str) -> float:
    return sample("ftauth_france_travail_calls_total", kind=kind, status=status)


@pytest.fixture
def received():
    """Every ``ftauth.signals.event`` sent during the test, as (kind, realm, detail)."""
    got: list[tuple[str, str, dict]] = []

    def receiver(sender, kind, realm, detail, **kwargs):
        got.append((kind, realm, detail))

    signals.event.connect(receiver, dispatch_uid="tests.metrics")
    yield got
    signals.event.disconnect(dispatch_uid="tests.metrics")


def test_first_and_returning_sign_ins_are_counted_apart(fakeop, received):
    linked, returning = events("linked"), events("signed_in")
    assert sign_in(Client(), fakeop)[1].status_code == 302
    assert sign_in(Client(), fakeop)[1].status_code == 302
    assert events("linked") == linked + 1
    assert events("signed_in") == returning + 1
    assert [kind for kind, _realm, _detail in received] == ["linked", "signed_in"]


def test_a_failed_sign_in_is_counted_by_reason_and_audited(fakeop, received):
    before = events("sign_in_failed", reason="InvalidGrant")
    fakeop.fail_next("token", 400, body={"error": "invalid_grant"})
    assert sign_in(Client(), fakeop)[1].status_code == 400
    assert events("sign_in_failed", reason="InvalidGrant") == before + 1
    assert AuditEvent.objects.filter(kind="sign_in_failed").count() == 1
    assert received == [("sign_in_failed", "individu", {"reason": "InvalidGrant"})]


def test_each_france_travail_call_is_counted_by_status_with_its_duration(fakeop):
    ok, limited = calls("token", "200"), calls("token", "429")
    durations = sample("ftauth_france_travail_call_seconds_count", kind="token")
    sign_in(Client(), fakeop)
    fakeop.fail_next("token", 429, {"Retry-After": "3"})
    assert sign_in(Client(), fakeop)[1].status_code == 503
    assert calls("token", "200") == ok + 1
    assert calls("token", "429") == limited + 1
    assert sample("ftauth_france_travail_call_seconds_count", kind="token") == durations + 2


def test_a_call_that_got_no_answer_is_counted_as_none(fakeop):
    before = calls("token", "none")
    fakeop.fail_next("token", DROP)
    assert sign_in(Client(), fakeop)[1].status_code == 503
    assert calls("token", "none") == before + 1


def test_an_event_rolled_back_is_never_announced(db, received):
    with pytest.raises(RuntimeError), transaction.atomic():
        audit.record(AuditEvent.Kind.SIGN_IN_FAILED, realm="individu", reason="X")
        raise RuntimeError("the transaction fails")
    assert received == []
    audit.record(AuditEvent.Kind.SIGN_IN_FAILED, realm="individu", reason="X")
    assert received == [("sign_in_failed", "individu", {"reason": "X"})]


def test_a_receiver_that_fails_never_fails_the_sign_in(fakeop):
    def broken(sender, **kwargs):
        raise RuntimeError("a monitoring bug")

    signals.event.connect(broken, dispatch_uid="tests.broken-event")
    signals.france_travail_call.connect(broken, dispatch_uid="tests.broken-call")
    try:
        assert sign_in(Client(), fakeop)[1].status_code == 302
    finally:
        signals.event.disconnect(dispatch_uid="tests.broken-event")
        signals.france_travail_call.disconnect(dispatch_uid="tests.broken-call")


def test_the_metrics_view_answers_only_the_scraper_holding_the_token(settings, rf):
    from django.http import Http404

    from ftauth.metrics import metrics_view

    def get(**headers):
        return metrics_view(rf.get("/metrics", **headers))

    with pytest.raises(Http404):
        get()  # no METRICS_TOKEN: never public by accident
    settings.FTAUTH = {**settings.FTAUTH, "METRICS_TOKEN": "scraper-token-of-tests"}
    with pytest.raises(Http404):
        get(HTTP_AUTHORIZATION="Bearer another-token")
    response = get(HTTP_AUTHORIZATION="Bearer scraper-token-of-tests")
    assert response.status_code == 200
    assert b"ftauth_france_travail_calls_total" in response.content


def _metrics_urls():
    from django.urls import path

    from ftauth.metrics import metrics_view

    return [path("metrics", metrics_view)]


urlpatterns = _metrics_urls()


def test_the_debug_page_of_a_crash_in_the_metrics_view_shows_no_token(settings, monkeypatch):
    """An error in the metrics view (a multiprocess directory gone, say): Django's error
    report (the DEBUG page, the error emails) must not show the scraper's token, which
    the view holds in its frame's variables."""
    import secrets

    import prometheus_client

    # Drawn here, so that no line of source shown on the page holds it.
    token = secrets.token_urlsafe(16)

    def broken(registry):
        raise RuntimeError("the metrics could not be collected")

    monkeypatch.setattr(prometheus_client, "generate_latest", broken)
    settings.DEBUG = True
    settings.ROOT_URLCONF = __name__
    settings.FTAUTH = {**settings.FTAUTH, "METRICS_TOKEN": token}
    page = Client(raise_request_exception=False).get(
        "/metrics", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert page.status_code == 500
    text = page.content.decode()
    assert "the metrics could not be collected" in text  # the developer's page, still useful
    assert token not in text


def test_quota_waits_and_refusals_are_counted(fakeop):
    """Each wait for a turn of the quota is observed; each call refused for the quota
    is counted with its reason (``quota_refused``)."""
    from ftauth import api

    waits = sample("ftauth_quota_waits_seconds_count", api="peconnect-individu")
    refused = sample("ftauth_quota_refusals_total", api="peconnect-individu", reason="turn")
    client = Client()
    sign_in(client, fakeop)  # its userinfo call took a turn
    assert sample("ftauth_quota_waits_seconds_count", api="peconnect-individu") == waits + 1
    api.rate_limiter().pause("peconnect-individu", 60)  # another process's 429
    user = AuditEvent.objects.get(kind="linked").account.user
    with pytest.raises(QuotaExceeded):
        api.for_user(user, "individu").get("peconnect-individu/v1/userinfo")
    assert (
        sample("ftauth_quota_refusals_total", api="peconnect-individu", reason="turn")
        == refused + 1
    )


def test_without_a_token_even_an_empty_bearer_gets_no_metrics(settings, rf):
    """No METRICS_TOKEN means no metrics, whatever the request says (an empty
    ``Bearer`` would otherwise match the empty token)."""
    from django.http import Http404

    from ftauth.metrics import metrics_view

    settings.FTAUTH = {**settings.FTAUTH, "METRICS_TOKEN": ""}
    for header in ("Bearer ", "Bearer", ""):
        with pytest.raises(Http404):
            metrics_view(rf.get("/metrics", HTTP_AUTHORIZATION=header))


def test_userinfo_and_api_calls_are_counted_under_their_own_kind(fakeop):
    """The API client names its calls: a first sign-in's userinfo is ``userinfo``,
    never lumped with ``other``."""
    userinfo, other = calls("userinfo", "200"), calls("other", "200")
    assert sign_in(Client(), fakeop)[1].status_code == 302  # a first sign-in reads userinfo
    assert calls("userinfo", "200") == userinfo + 1
    assert calls("other", "200") == other
