"""The one HTTP transport every outbound call of ftauth goes through.

France Travail requires HTTPS with TLS 1.2 at least for every exchange (seed
page). This module enforces it: plain ``http://`` is refused unless the host
is a loopback address (the sandbox, tests), the TLS handshake refuses anything
older than 1.2, timeouts are always bounded, redirects are never followed (a
token endpoint that redirects is a misconfiguration, and following it could
downgrade to plain HTTP), and only idempotent requests are retried, only on
connection errors, with backoff (urllib3's ``Retry``).

Timeouts are not deadlines: a read timeout bounds one socket read, and a server
that trickles one byte a second, or never stops sending, holds the caller for
as long as it likes. Every call therefore also has a wall-clock deadline (its
connection, its retries, its headers and its body), enforced by one watchdog
thread that shuts the call's sockets down when it passes, and its answer is
streamed and cut at a size limit fitting its kind (:data:`ANSWER_LIMITS`). Either
closes the connection and raises :class:`TransportError`.

Everything costly is done once per process: one TLS context, one session and
one keep-alive connection pool shared by every thread (a new TLS connection
to France Travail costs round trips a pooled one does not).
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import heapq
import http.cookiejar
import ipaddress
import itertools
import logging
import math
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import LocationParseError, MaxRetryError, ReadTimeoutError
from urllib3.util import Retry, parse_url

from .errors import InsecureTransport, QuotaExceeded, TransportError
from .numbers import MAX_DELAY

logger = logging.getLogger("ftauth.http")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
USER_AGENT = "django-ftauth"

KIB = 1024
# The largest answer of each kind worth reading (decoded bytes). France Travail's
# are a few KiB; an API page of offers is a few hundred.
ANSWER_LIMITS = {
    "discovery": 64 * KIB,
    "jwks": 256 * KIB,
    "token": 64 * KIB,
    "userinfo": 64 * KIB,
    "api": 8 * KIB * KIB,
}
DEFAULT_ANSWER_LIMIT = 1 * KIB * KIB

# Called after every call with (kind, status or None when no answer came, seconds):
# how ftauth.metrics sees each France Travail call without this module knowing Django.
Observer = Callable[[str, int | None, float], None]
OBSERVERS: list[Observer] = []


def _observe(kind: str, status: int | None, seconds: float) -> None:
    for observer in list(OBSERVERS):
        try:
            observer(kind, status, seconds)
        except Exception:  # an observer's bug never fails a call
            logger.exception("observer of HTTP calls failed")


def is_loopback_host(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``: the only hosts allowed plain HTTP."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _hostname_as_sent(url: str) -> str | None:
    """The host ``requests`` (through urllib3) will actually connect to."""
    try:
        host = parse_url(url).host
    except LocationParseError:
        return None
    return host.strip("[]").lower() if host else None


def check_secure_url(url: str) -> str:
    """Return ``url`` if it is HTTPS, or HTTP on a loopback host; raise otherwise.

    The check must look at the host the transport will connect to. URL parsers
    disagree on backslashes and on userinfo (``http://evil\\@127.0.0.1/`` is
    127.0.0.1 for :func:`urllib.parse.urlsplit` and ``evil`` for urllib3), so
    such URLs are refused outright, as is any disagreement between the two.
    Messages name the host only: a URL's query or userinfo may hold secrets.
    """
    parts = urlsplit(url)
    host = parts.hostname
    if "\\" in url or "@" in parts.netloc or any(ch <= " " or ch == "\x7f" for ch in url):
        raise InsecureTransport(
            f"refusing URL to {host or '?'}: userinfo, backslashes, spaces and control "
            "characters are not allowed in outbound URLs"
        )
    if host is None or _hostname_as_sent(url) != host:
        raise InsecureTransport(f"refusing ambiguous URL to {host or '?'}")
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and is_loopback_host(host):
        return url
    raise InsecureTransport(
        f"refusing {parts.scheme or 'schemeless'}:// URL to {host}: "
        "France Travail requires HTTPS (plain HTTP only on loopback addresses)"
    )


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        # "inf" and "nan" parse as floats but are no delay a client can honour;
        # neither is one of more than a day.
        if not math.isfinite(seconds) or seconds > MAX_DELAY:
            return None
        return max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    try:
        seconds = when.timestamp() - (time.time() if now is None else now)
    except (OverflowError, ValueError, OSError):
        return None
    return max(0.0, seconds) if seconds <= MAX_DELAY else None


def _ssl_reason(exc: BaseException) -> str:
    """The innermost :class:`ssl.SSLError`'s text, without the request URL around it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            return str(current)
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            current = reason
        elif current.args and isinstance(current.args[0], BaseException):
            current = current.args[0]
        else:
            current = current.__cause__ or current.__context__
    return type(exc).__name__


def raise_for_transient(response: requests.Response, what: str) -> None:
    """Turn an answer that says "not now" into a typed error.

    429 is :class:`QuotaExceeded` (with ``Retry-After``), 5xx is
    :class:`TransportError`: both transient, never a verdict on the request.
    """
    if response.status_code == 429:
        raise QuotaExceeded(
            f"{what} quota exceeded",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    if response.status_code >= 500:
        raise TransportError(f"{what} answered {response.status_code}", status=response.status_code)


def _read_body(response: requests.Response, limit: int, ends_at: float, host: str | None) -> bytes:
    """The whole body, or :class:`TransportError` past ``limit`` bytes or ``ends_at``."""
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > limit:
        raise TransportError(f"{host} announced an answer larger than {limit} bytes")
    chunks = []
    size = 0
    for chunk in response.iter_content(16 * KIB):
        size += len(chunk)
        if size > limit:
            logger.warning("%s sent an answer larger than %d bytes: cut", host, limit)
            raise TransportError(f"{host} sent an answer larger than {limit} bytes")
        if time.monotonic() > ends_at:
            raise TransportError(f"{host} did not answer within the deadline")
        chunks.append(chunk)
    return b"".join(chunks)


@functools.lru_cache(maxsize=8)
def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """The process's TLS context for ``ca_file``: built once, shared by every thread.

    Building a context loads the whole CA bundle (milliseconds of CPU); doing it
    per thread or per request showed up as half of a callback's time. A context
    is safe to share between threads once configured. A changed CA file needs a
    restart (or ``tls_context.cache_clear()``).
    """
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class _Call:
    """The sockets one call uses, shut down together when its deadline passes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.expired = False
        self._done = False

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            if self._done:
                return
            if not self.expired:
                self._sockets.append(sock)
                return
        _shut(sock)

    def expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shut(sock)

    def finish(self) -> None:
        """The call is over: a late expiry must not touch a pooled connection."""
        with self._lock:
            self._done = True
            self._sockets = []


def _shut(sock: socket.socket) -> None:
    # shutdown (not close) wakes a thread blocked in recv on this socket at once;
    # urllib3 then sees a dead connection and discards it.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    """One thread per process that expires calls at their deadlines (a heap of them)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[list[Any]] = []
        self._order = itertools.count()
        self._pid: int | None = None

    def watch(self, deadline: float, call: _Call) -> list[Any]:
        entry = [deadline, next(self._order), call]
        with self._cond:
            if self._pid != os.getpid():  # first use, or a forked worker
                self._pid = os.getpid()
                self._heap = []
                threading.Thread(
                    target=self._run, name="ftauth-http-deadlines", daemon=True
                ).start()
            heapq.heappush(self._heap, entry)
            self._cond.notify()
        return entry

    @staticmethod
    def cancel(entry: list[Any]) -> None:
        entry[2] = None  # dropped when it reaches the top of the heap

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    while self._heap and self._heap[0][2] is None:
                        heapq.heappop(self._heap)
                    if not self._heap:
                        self._cond.wait()
                        continue
                    delay = self._heap[0][0] - time.monotonic()
                    if delay <= 0:
                        call = heapq.heappop(self._heap)[2]
                        break
                    self._cond.wait(delay)
            if call is not None:
                call.expire()


_WATCHDOG = _Watchdog()
_current = threading.local()


def _watch_socket(sock: socket.socket | None) -> None:
    call = getattr(_current, "call", None)
    if call is not None:
        call.watch(sock)


def _deadline_passed() -> bool:
    call = getattr(_current, "call", None)
    return call is not None and call.expired


class _Watched:
    """A connection whose socket the current call's watchdog can shut down:
    registered when it connects, and again for each request on a pooled one."""

    sock: socket.socket | None

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        _watch_socket(self.sock)

    def getresponse(self) -> Any:
        _watch_socket(self.sock)
        return super().getresponse()  # type: ignore[misc]


class _DeadlineConnection(_Watched, HTTPConnection):
    pass


class _DeadlineHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _DeadlineHTTPPool(HTTPConnectionPool):
    ConnectionCls = _DeadlineConnection


class _DeadlineHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """Pools whose connections the deadline watchdog can reach."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _DeadlineHTTPPool,
            "https": _DeadlineHTTPSPool,
        }


class TLS12Adapter(DeadlineAdapter):
    """An adapter whose TLS context refuses protocol versions older than 1.2."""

    def __init__(self, *args: Any, ca_file: str | None = None, **kwargs: Any) -> None:
        self._ca_file = ca_file
        super().__init__(*args, **kwargs)

    def _context(self) -> ssl.SSLContext:
        return tls_context(self._ca_file)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context()
        super().init_poolmanager(*args, **kwargs)

    def proxy_manager_for(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["ssl_context"] = self._context()
        return super().proxy_manager_for(*args, **kwargs)


class IdempotentRetry(Retry):
    """urllib3's retries, held to ftauth's rules.

    urllib3 retries a failed connection whatever the method; ftauth retries
    nothing but idempotent methods (a token request is never sent twice). A
    read timeout is never retried: the server may have acted on the request,
    and the timeout is the bound a caller was promised. ``sleep`` is injectable
    for tests (urllib3 calls :func:`time.sleep` itself).
    """

    def __init__(self, *args: Any, sleep: Callable[[float], None] = time.sleep, **kwargs: Any):
        self._sleep = sleep
        super().__init__(*args, **kwargs)

    def new(self, **kw: Any) -> IdempotentRetry:
        retry = super().new(**kw)
        retry._sleep = self._sleep
        return retry

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> IdempotentRetry:
        if isinstance(error, ReadTimeoutError):
            raise error  # requests turns it into its ReadTimeout
        if error is not None and _deadline_passed():
            # The call's deadline shut its socket: nothing is tried again after it.
            raise MaxRetryError(_pool, url or "", error) from error
        if error is not None and not self._is_method_retryable(method or ""):
            # The shape urllib3 gives an exhausted retry: requests maps it by its reason.
            raise MaxRetryError(_pool, url or "", error) from error
        return super().increment(method, url, response, error, _pool, _stacktrace)

    def _sleep_backoff(self) -> None:
        backoff = self.get_backoff_time()
        if backoff > 0:
            self._sleep(backoff)


def _retry_policy(config: HttpConfig, sleep: Callable[[float], None]) -> IdempotentRetry:
    return IdempotentRetry(
        total=config.retries,
        connect=config.retries,
        read=config.retries,
        # No answer is retried: a 429 or a 5xx is the caller's to interpret, and
        # a redirect is returned as it is (requests does not follow it either).
        status=0,
        other=0,
        redirect=0,
        raise_on_redirect=False,
        raise_on_status=False,
        respect_retry_after_header=False,
        allowed_methods=IDEMPOTENT_METHODS,
        backoff_factor=config.backoff,
        sleep=sleep,
    )


@dataclass(frozen=True)
class HttpConfig:
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    retries: int = 2
    backoff: float = 0.2
    ca_file: str | None = None
    # Keep-alive connections kept per host; more threads than this still get a
    # connection, it is just not kept afterwards.
    pool_size: int = 16
    # Wall-clock seconds for one call in all: connection, retries, headers, body.
    deadline: float = 20.0


class HttpClient:
    """A thread-safe HTTP client: one session and one connection pool for every thread.

    urllib3's pool is thread-safe; the ``requests.Session`` around it is only
    read after it is built here, and it keeps no cookies (a cookie set by one
    user's token exchange must never ride along another user's request).
    """

    def __init__(
        self,
        config: HttpConfig | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config or HttpConfig()
        session = requests.Session()
        session.trust_env = False  # no proxy or .netrc credentials picked up silently
        session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        retry = _retry_policy(self.config, sleep)
        pool = {"pool_connections": self.config.pool_size, "pool_maxsize": self.config.pool_size}
        session.mount(
            "https://", TLS12Adapter(ca_file=self.config.ca_file, max_retries=retry, **pool)
        )
        session.mount("http://", DeadlineAdapter(max_retries=retry, **pool))
        if self.config.ca_file:
            # The CA file replaces the public bundle: without this, requests
            # would load certifi's bundle into the context as well.
            session.verify = self.config.ca_file
        session.headers["User-Agent"] = USER_AGENT
        self._session = session

    def close(self) -> None:
        """Close the pooled connections (a new request opens new ones)."""
        self._session.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: tuple[float, float] | None = None,
        deadline: float | None = None,
        max_bytes: int | None = None,
        kind: str = "other",
    ) -> requests.Response:
        """Send one request; raise :class:`TransportError` when no answer comes.

        Any HTTP status is returned as is, its body read whole: the caller knows
        what it means. Connection failures of idempotent requests are retried by
        the adapter (:class:`IdempotentRetry`) before an error comes out here.
        ``deadline`` (seconds, default ``HttpConfig.deadline``) bounds the whole
        call; ``max_bytes`` (default :data:`DEFAULT_ANSWER_LIMIT`) the answer's
        body: past either, the connection is closed and :class:`TransportError`
        raised. ``kind`` (a key of :data:`ANSWER_LIMITS`) names the call for
        :data:`OBSERVERS` and gives ``max_bytes`` its default.
        """
        check_secure_url(url)
        timeout = timeout or (self.config.connect_timeout, self.config.read_timeout)
        budget = self.config.deadline if deadline is None else min(deadline, self.config.deadline)
        if max_bytes is None:
            max_bytes = ANSWER_LIMITS.get(kind, DEFAULT_ANSWER_LIMIT)
        host = urlsplit(url).hostname
        started = time.monotonic()
        ends_at = started + budget
        status: int | None = None
        call = _Call()
        outer = getattr(_current, "call", None)
        _current.call = call
        entry = _WATCHDOG.watch(ends_at, call)
        try:
            try:
                response = self._session.request(
                    method.upper(),
                    url,
                    params=params,
                    data=data,
                    json=json,
                    headers=dict(headers or {}),
                    timeout=timeout,
                    allow_redirects=False,
                    stream=True,
                )
            except requests.exceptions.RequestException as exc:
                raise self._failure(exc, host, call, budget) from None
            try:
                body = _read_body(response, max_bytes, ends_at, host)
            except requests.exceptions.RequestException as exc:
                raise self._failure(exc, host, call, budget) from None
            except TransportError:
                if call.expired:
                    raise self._failure(None, host, call, budget) from None
                raise
            finally:
                # Unread (cut, or failed) answers close the connection; a whole
                # one goes back to the pool.
                response.close()
            response._content = body
            response._content_consumed = True
            status = response.status_code
            return response
        finally:
            _WATCHDOG.cancel(entry)
            call.finish()
            _current.call = outer
            _observe(kind, status, time.monotonic() - started)

    @staticmethod
    def _failure(
        exc: BaseException | None, host: str | None, call: _Call, budget: float
    ) -> TransportError:
        if call.expired or exc is None:
            logger.warning("%s did not answer whole within the %g s deadline", host, budget)
            return TransportError(f"{host} did not answer within the {budget:g} s deadline")
        if isinstance(exc, requests.exceptions.SSLError):
            # Certificate or protocol version refused: retrying would not help.
            return TransportError(f"TLS handshake with {host} failed: {_ssl_reason(exc)}")
        if isinstance(exc, requests.exceptions.ConnectionError):
            # ConnectTimeout is a ConnectionError too.
            return TransportError(f"could not connect to {host}")
        if isinstance(exc, requests.exceptions.Timeout):
            return TransportError(f"{host} did not answer in time")
        return TransportError(f"request to {host} failed: {type(exc).__name__}")

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", url, **kwargs)
