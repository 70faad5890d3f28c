"""Prometheus metrics of ftauth, from its two signals (``ftauth.signals``).

With ``prometheus_client`` installed (``pip install "django-ftauth[metrics]"``), ftauth
counts on the default registry, so a project's existing exporter (django-prometheus,
``prometheus_client.start_http_server``) shows them as they are:

- ``ftauth_events_total{kind, realm, reason}``: sign-ins (``linked`` first,
  ``signed_in`` returning), ``sign_in_failed`` by ``reason`` (the error's type),
  ``tokens_refreshed``, ``grant_ended``, ``consent_revoked``, ``backchannel_logout``,
  sign-outs, unlinks; ``reason`` is empty for every other kind;
- ``ftauth_france_travail_calls_total{kind, status}``: every call to France Travail
  (``kind``: ``discovery``, ``jwks``, ``token``, ``userinfo``, ``api``; ``status``: the
  HTTP status, ``none`` when no answer came), 429s included;
- ``ftauth_france_travail_call_seconds{kind}``: their durations (a histogram);
- ``ftauth_quota_waits_seconds{api}`` and ``ftauth_quota_refusals_total{api, reason}``:
  the waits for a turn of the application's quota, and the calls refused for want of one
  (the ``quota_refused`` signal: ``reason`` ``429``, ``turn``, ``waiting`` or
  ``background``, a consent check postponed, which nobody is told about).

Without a project exporter, :func:`metrics_view` serves them; it answers 404 unless
``FTAUTH['METRICS_TOKEN']`` is set, and then only to ``Authorization: Bearer <token>``
(Prometheus' ``authorization`` scrape option). Under gunicorn with several workers set
``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode): the view then
adds up every worker. docs/operations.md lists the metrics and the alerts worth setting.
"""

from __future__ import annotations

import hmac
import logging
import os
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse

from .core import http
from .internal.debug import secret_free_errors
from .signals import event, france_travail_call, quota_refused

logger = logging.getLogger("ftauth.metrics")

try:
    import prometheus_client
except ImportError:  # the optional extra is not installed: signals only
    prometheus_client = None  # type: ignore[assignment]

# Kinds whose ``reason`` is a bounded set worth a label (an error's type).
REASON_LABELLED = {"sign_in_failed"}
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0)


class _Metrics:
    def __init__(self, client: Any) -> None:
        self.events = client.Counter(
            "ftauth_events_total",
            "ftauth's audit events: sign-ins, failures, refreshes, endings, withdrawals.",
            ["kind", "realm", "reason"],
        )
        self.calls = client.Counter(
            "ftauth_france_travail_calls_total",
            "Calls to France Travail by kind and HTTP status (none: no answer).",
            ["kind", "status"],
        )
        self.seconds = client.Histogram(
            "ftauth_france_travail_call_seconds",
            "Duration of each call to France Travail.",
            ["kind"],
            buckets=LATENCY_BUCKETS,
        )
        self.quota_waits = client.Histogram(
            "ftauth_quota_waits_seconds",
            "Waits for a turn of the application's API quota.",
            ["api"],
            buckets=(0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0),
        )
        self.quota_refusals = client.Counter(
            "ftauth_quota_refusals_total",
            "Calls refused for the quota: 429, no turn in time, waiting room full, "
            "background check postponed.",
            ["api", "reason"],
        )


METRICS = _Metrics(prometheus_client) if prometheus_client is not None else None


def _on_event(sender: Any, kind: str, realm: str, detail: dict, **kwargs: Any) -> None:
    if METRICS is None:
        return
    reason = str(detail.get("reason", ""))[:60] if kind in REASON_LABELLED else ""
    METRICS.events.labels(kind=kind, realm=realm or "", reason=reason).inc()


def _on_call(sender: Any, kind: str, status: int | None, seconds: float, **kwargs: Any) -> None:
    if METRICS is None:
        return
    METRICS.calls.labels(kind=kind, status=str(status) if status else "none").inc()
    METRICS.seconds.labels(kind=kind).observe(seconds)


def observe_quota_wait(api: str, seconds: float) -> None:
    """The API client's report: a wait for a turn of the quota, before a call."""
    if METRICS is not None:
        METRICS.quota_waits.labels(api=api).observe(seconds)


def _on_refusal(sender: Any, api: str, reason: str, **kwargs: Any) -> None:
    if METRICS is not None:
        METRICS.quota_refusals.labels(api=api, reason=reason).inc()


def _announce_call(kind: str, status: int | None, seconds: float) -> None:
    france_travail_call.send(None, kind=kind, status=status, seconds=seconds)


def connect() -> None:
    """Called once by the app's ``ready``: signals for HTTP calls, metrics from both."""
    if _announce_call not in http.OBSERVERS:
        http.OBSERVERS.append(_announce_call)
    event.connect(_on_event, dispatch_uid="ftauth.metrics.events")
    france_travail_call.connect(_on_call, dispatch_uid="ftauth.metrics.calls")
    quota_refused.connect(_on_refusal, dispatch_uid="ftauth.metrics.quota")


@secret_free_errors
def metrics_view(request: HttpRequest) -> HttpResponse:
    """The metrics in Prometheus' text format, for a scraper holding the token (the
    report of an error here shows no frame's variables: they hold it)."""
    from .conf import get_settings

    token = get_settings().metrics_token
    given = request.headers.get("Authorization", "")
    if not token or not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        raise Http404("no metrics here")
    if prometheus_client is None:
        return HttpResponse(
            "prometheus_client is not installed\n", status=501, content_type="text/plain"
        )
    registry: Any = prometheus_client.REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return HttpResponse(
        prometheus_client.generate_latest(registry),
        content_type=prometheus_client.CONTENT_TYPE_LATEST,
    )
