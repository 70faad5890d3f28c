"""The API client: paths under ``{API_URL}/partenaire/``, JSON in and out, typed errors.

France Travail's APIs live at ``https://api.francetravail.io/partenaire/{api}/
{version}/{resource}``; the API name and version are part of the path a
caller writes (``offresdemploi/v2/offres/search``), so moving to a new version
is one string. Where the bearer token comes from is the :class:`Credentials`'
business: an application token, or a user's consented token.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests

from ftauth.core.errors import ApiError, InvalidResponse, QuotaExceeded, TransportError
from ftauth.core.http import HttpClient, parse_retry_after
from ftauth.internal.arrival import arrived_at
from ftauth.metrics import observe_quota_wait

from .quota import RateLimiter, RateLimitHeaders

logger = logging.getLogger("ftauth.api")

# Unreserved characters and the sub-delimiters an API path may need. No "%":
# an encoded "." or "/" could climb out of the API named in the first segment;
# anything else belongs in ``params``, which are encoded properly.
PATH_RE = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@-]+(?:/[A-Za-z0-9._~!$&'()*+,;=:@-]+)*/?")
# A 429 without Retry-After: France Travail's quota is counted per second.
DEFAULT_RETRY_AFTER = 1.0
ERROR_BODY_LIMIT = 2000


class Credentials(Protocol):
    """Where bearer tokens come from, and what a 401 means for them."""

    def token(self) -> str:
        """A token believed valid."""
        ...

    def renew(self, rejected: str) -> str:
        """A new token after an API refused ``rejected`` (401); may raise."""
        ...

    def refused_again(self, response: requests.Response) -> Exception:
        """The error for a 401 on the renewed token."""
        ...


@dataclass(frozen=True)
class ApiResponse:
    """An API's answer: the decoded JSON (``None`` for an empty body) and its metadata."""

    status: int
    data: Any
    headers: Mapping[str, str] = field(repr=False)
    rate_limit: RateLimitHeaders | None = None


def _is_jwt(response: requests.Response) -> bool:
    content_type = response.headers.get("Content-Type", "")
    return content_type.split(";", 1)[0].strip().lower() == "application/jwt"


def api_name(path: str) -> str:
    """The API a path belongs to (its first segment): the unit of the quota."""
    return path.split("/", 1)[0]


def check_path(path: str) -> str:
    """Refuse anything but a plain relative path under ``/partenaire/``."""
    segments = path.rstrip("/").split("/")
    if not PATH_RE.fullmatch(path) or any(s in {".", ".."} for s in segments):
        raise ValueError(
            "API paths are relative to {API_URL}/partenaire/, e.g. "
            "'offresdemploi/v2/offres/search'; query parameters go in params="
        )
    return path


class ApiClient:
    """Calls France Travail APIs with one set of credentials, paced by the shared quota."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        api_url: str,
        http: HttpClient,
        limiter: RateLimiter,
        max_retries: int,
        retry_after_cap: float,
        time_budget: float = 5.0,
        background: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[float], float] | None = None,
    ) -> None:
        self.credentials = credentials
        self.base_url = f"{api_url.rstrip('/')}/partenaire/"
        self.http = http
        self.limiter = limiter
        self.max_retries = max_retries
        self.retry_after_cap = retry_after_cap
        # One bound for the whole call, counted from the request's arrival: the wait
        # for a turn, every retry and every answer awaited fit in it (a page view
        # must not hang for minutes, nor sit in a queue and then wait its budget).
        self.time_budget = time_budget
        # A call ftauth makes of its own accord (a consent check): it takes only a
        # turn free now, and never waits for one, so it never delays a page or a
        # sign-in (they come first).
        self.background = background
        self.sleep = sleep
        self.clock = clock
        self.jitter = jitter or _default_jitter

    def __repr__(self) -> str:
        return f"<ApiClient {self.base_url}>"

    def get(self, path: str, *, params: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        return self.request("GET", path, params=params, **kwargs).data

    def post(self, path: str, *, json: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, json=json, **kwargs).data

    def put(self, path: str, *, json: Any = None, **kwargs: Any) -> Any:
        return self.request("PUT", path, json=json, **kwargs).data

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs).data

    def request(
        self,
        method: str,
        path: str,
        **kwargs: Any,
    ) -> ApiResponse:
        """Call ``{API_URL}/partenaire/{path}``; return the answer or raise a typed error.

        The whole call, retries included, takes about ``API_TIME_BUDGET``
        seconds at most, counted from the arrival of the request being served.
        Raises :class:`QuotaExceeded` (still 429 when the retries or the budget
        run out, no turn within the budget, or this host's waiting room full;
        ``retry_after`` is the wait the schedule implies),
        :class:`ApiError` (any other 4xx, or a 401 that a new token does not
        cure), :class:`TransportError` (no answer, 5xx), :class:`InvalidResponse`
        (a success without JSON), and what the credentials raise
        (``ConsentWithdrawn`` for a user's token). Takes ``params``, ``json`` and
        ``headers``.
        """
        return self.call(method, self.base_url + check_path(path), api_name(path), **kwargs)

    def call_url(self, method: str, url: str, **kwargs: Any) -> ApiResponse:
        """Like :meth:`request` for an absolute URL (a realm's userinfo endpoint);
        its quota is that of the API it names under ``/partenaire/``."""
        rest = url[len(self.base_url) :] if url.startswith(self.base_url) else ""
        kwargs.setdefault("kind", "userinfo")
        return self.call(method, url, api_name(rest.split("?", 1)[0]) or "userinfo", **kwargs)

    def call(
        self,
        method: str,
        url: str,
        api: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        kind: str = "api",
    ) -> ApiResponse:
        """One API call with this client's credentials: the rule for a refused
        token lives here, once. A 401 renews the token once; a 401 on the renewed
        token is the credentials' ``refused_again`` error."""
        if headers and any(name.lower() == "authorization" for name in headers):
            raise ValueError("the Authorization header is ftauth's to set")
        deadline = self._deadline()
        token = self.credentials.token()
        send = (params, json, headers, deadline, kind)
        try:
            response = self._send(method, url, api, token, *send)
            if response.status_code == 401:
                logger.info("%s refused the access token (401); renewing it once", api)
                token = self.credentials.renew(token)
                response = self._send(method, url, api, token, *send)
                if response.status_code == 401:
                    raise self.credentials.refused_again(response)
        except QuotaExceeded as exc:
            quota_refusal(api, exc, background=self.background)
            raise
        return self._result(response, api)

    def _deadline(self) -> float:
        """The budget counts from the request's arrival (``ftauth.internal.arrival``):
        a request that waited for a worker has spent that time already."""
        now = self.clock()
        arrived = arrived_at()
        started = now if arrived is None or arrived > now else arrived
        return started + self.time_budget

    def _send(
        self,
        method: str,
        url: str,
        api: str,
        token: str,
        params: Mapping[str, Any] | None,
        json: Any,
        headers: Mapping[str, str] | None,
        deadline: float,
        kind: str,
    ) -> requests.Response:
        """One call, paced, with 429 answers honoured and retried while the budget lasts."""
        outgoing = {**(headers or {}), "Accept": "application/json"}
        outgoing["Authorization"] = f"Bearer {token}"
        retries = 0
        max_retries = 0 if self.background else self.max_retries
        while True:
            waited = self.limiter.acquire(
                api, max_wait=max(0.0, deadline - self.clock()), may_wait=not self.background
            )
            observe_quota_wait(api, waited)
            # The answer is awaited no longer than the budget left (half a second at
            # least), and that is a wall-clock bound on the whole answer, not only on
            # each socket read: a trickling server cannot stretch it.
            left = max(0.5, deadline - self.clock())
            read = min(self.http.config.read_timeout, left)
            timeout = (self.http.config.connect_timeout, read)
            response = self.http.request(
                method,
                url,
                params=params,
                json=json,
                headers=outgoing,
                timeout=timeout,
                deadline=left,
                kind=kind,
            )
            rate_limit = RateLimitHeaders.from_headers(response.headers)
            self.limiter.note_headers(api, rate_limit)
            if response.status_code != 429:
                return response
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            wait = DEFAULT_RETRY_AFTER if retry_after is None else retry_after
            delay = wait + self.jitter(wait)
            out_of_time = self.clock() + delay > deadline
            # Every process holds back, not only this caller.
            self.limiter.pause(api, delay)
            gone = QuotaExceeded(
                f"quota of {api} exceeded (429) after {retries} retries",
                retry_after=wait,
                reason="429",
            )
            if retries >= max_retries or wait > self.retry_after_cap or out_of_time:
                # Waiting less than Retry-After would only earn another 429: past
                # the cap or the budget, the caller is told when to come back instead.
                raise gone
            logger.info(
                "%s quota exceeded (429): retry %d/%d in %.2f s",
                api,
                retries + 1,
                max_retries,
                delay,
            )
            # Waiting for Retry-After is waiting for the quota: a seat of the
            # host's waiting room, or the answer at once.
            with self.limiter.seat(delay) as seated:
                if not seated:
                    raise gone
                self.sleep(delay)
            retries += 1

    def _result(self, response: requests.Response, api: str) -> ApiResponse:
        status = response.status_code
        if status >= 500:
            raise TransportError(f"{api} answered {status}", status=status)
        if not 200 <= status < 300:
            raise ApiError(status, error_body(response))
        data = None
        if _is_jwt(response):
            # A signed answer (ProConnect's userinfo): its reader verifies it.
            data = response.text
        elif status != 204 and response.content:
            try:
                data = response.json()
            except (ValueError, RecursionError):
                raise InvalidResponse(f"{api} answered {status} without JSON") from None
        return ApiResponse(
            status=status,
            data=data,
            headers=response.headers,
            rate_limit=RateLimitHeaders.from_headers(response.headers),
        )


def quota_refusal(api: str, exc: QuotaExceeded, *, background: bool = False) -> None:
    """Every call refused for the quota is logged once, with its wait, and counted
    (the ``quota_refused`` signal, for metrics)."""
    from ftauth.signals import quota_refused

    wait = exc.retry_after or 0.0
    log = logger.info if background else logger.warning
    log("call to %s refused (%s): next turn in %.1f s; %s", api, exc.reason, wait, exc)
    quota_refused.send_robust(
        sender=ApiClient, api=api, reason=exc.reason, wait=wait, background=background
    )


def error_body(response: requests.Response) -> Any:
    """An error answer's body for :class:`ApiError`: JSON if it is, else bounded text."""
    try:
        return response.json()
    except (ValueError, RecursionError):
        return response.text[:ERROR_BODY_LIMIT]


def _default_jitter(wait: float) -> float:
    # Spreads the retries of processes that got their 429 at the same moment;
    # only ever added, so Retry-After is always honoured in full.
    return random.uniform(0, min(1.0, 0.1 * wait + 0.05))  # noqa: S311 - not for security
