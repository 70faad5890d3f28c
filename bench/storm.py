"""France Travail's quota under a storm: the pages that call nothing stay fast (issue 18).

Two gunicorn hosts (``BENCH_STORM_WORKERS`` sync workers each, default 12) serve the demo
site on one PostgreSQL database and one Redis, against the sandbox (``runserver``, its own
PostgreSQL database) and its per-application quota of 4 calls/s. ``BENCH_STORM_DEVICES``
(default 200) devices sign in, alternately through each host; then every device's access
token is made expired and its stored claims old, and all of them open ``/profile/`` at
the same moment (the demo page calls the userinfo API with the person's token, which must
be refreshed first). Meanwhile ``BENCH_STORM_POLLERS`` (default 4) visitors load the home
page, which calls nothing, one request after the other. A device told "réessayez dans N s"
comes back after N s (at most three times).

Reported: the home page's p50 and p95 during the storm beside the profile's, what the
profiles showed (the data, the honest "réessayez", anything else: an error), token
refreshes per grant (from the sandbox's request log: each grant refreshed once), 429s the
sandbox answered, 5xx the hosts answered, and how long until every device was served.

Environment: ``BENCH_STORM_DEVICES``, ``BENCH_STORM_WORKERS``, ``BENCH_STORM_POLLERS``,
``BENCH_STORM_WAITING`` (``API_MAX_WAITING`` of the hosts, default ftauth's),
``BENCH_PG_URL`` (default ``postgres://postgres@127.0.0.1:5432``), ``BENCH_REDIS_URL``
(default ``rediscache://127.0.0.1:6379/15``). Small values make a short run:
``BENCH_STORM_DEVICES=20 BENCH_STORM_WORKERS=2 python -m bench storm``.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import statistics
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests
from cryptography.fernet import Fernet

from tests.servers import Server, demo_env, free_port, gunicorn, manage, runserver

from . import Report

TITLE = "Quota storm: two hosts, every device's token expired, home page beside /profile/"
PERSONA = "sandbox-individu-camille"
HOME_GOAL = 0.2  # seconds, the home page's p50 during the storm
RETRY = re.compile(r"réessayez dans (\d+) s")
TOKEN_LINE = re.compile(
    r'"POST /sandbox/authentification-candidat/connexion/oauth2/access_token\S* HTTP/1\.1" (\d{3})'
)
USERINFO_LINE = re.compile(
    r'"GET /sandbox/api/partenaire/peconnect-individu/\S* HTTP/1\.1" (\d{3})'
)
STATUS_LINE = re.compile(r'" (\d{3}) ')


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def _pg_admin() -> str:
    return os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")


@contextlib.contextmanager
def _databases(*names: str) -> Iterator[list[str]]:
    import psycopg

    with psycopg.connect(f"{_pg_admin()}/postgres", autocommit=True) as connection:
        for name in names:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield [f"{_pg_admin()}/{name}" for name in names]
    finally:
        with psycopg.connect(f"{_pg_admin()}/postgres", autocommit=True) as connection:
            for name in names:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _forget_redis(base: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(base.replace("rediscache://", "redis://", 1))
    for key in client.scan_iter(f"{prefix}:*", count=500):
        client.delete(key)
    client.close()


@dataclass
class Sites:
    idp: Server
    hosts: list[Server]
    database: str


@contextlib.contextmanager
def _sites(workdir: Path, workers: int) -> Iterator[Sites]:
    redis_base = os.environ.get("BENCH_REDIS_URL", "rediscache://127.0.0.1:6379/15")
    prefix = f"ftauth-storm-{uuid.uuid4().hex[:12]}"
    tag = uuid.uuid4().hex[:8]
    started: list[Server] = []
    with _databases(f"ftauth_bench_storm_{tag}", f"ftauth_bench_storm_{tag}_idp") as (db, idp_db):
        try:
            port = free_port()
            idp_env = demo_env(
                DATABASE_URL=idp_db,
                CACHE_URL="locmemcache://storm-idp",
                DJANGO_SETTINGS_MODULE="bench.sandbox_settings",
                FTAUTH_SANDBOX="true",
                DEBUG="true",
                FT_SANDBOX_URL=f"http://localhost:{port}",
                FTAUTH_LOG_LEVEL="WARNING",
            )
            manage(idp_env, "migrate", "--noinput", "-v", "0")
            idp = runserver(idp_env, workdir / "idp.log", host="localhost", port=port)
            started.append(idp)
            sandbox = f"{idp.url}/sandbox"
            host_env = demo_env(
                DATABASE_URL=db,
                CACHE_URL=f"{redis_base}?key_prefix={prefix}",
                DJANGO_SETTINGS_MODULE="bench.storm_settings",
                DEBUG="false",
                SECRET_KEY=secrets.token_urlsafe(32),
                ALLOWED_HOSTS="127.0.0.1",
                FTAUTH_SANDBOX="false",
                FT_CLIENT_ID="ftauth-demo",
                FT_CLIENT_SECRET="sandbox-secret-local-only",
                FT_INDIVIDU_URL=f"{sandbox}/authentification-candidat",
                FT_ENTREPRISE_URL=f"{sandbox}/entreprise",
                FT_API_URL=f"{sandbox}/api",
                FTAUTH_TOKEN_KEYS=Fernet.generate_key().decode(),
                FTAUTH_LOG_LEVEL="ERROR",
                BENCH_STORM_WAITING=os.environ.get("BENCH_STORM_WAITING", ""),
            )
            manage(host_env, "migrate", "--noinput", "-v", "0")
            for name in ("a", "b"):
                started.append(gunicorn(host_env, workdir / f"host-{name}.log", workers=workers))
            yield Sites(idp, started[1:], db)
        finally:
            for server in reversed(started):
                server.stop()
            _forget_redis(redis_base, prefix)


def _browser() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def sign_in(browser: requests.Session, host: str) -> bool:
    """Through the sandbox's login and consent pages, landing on the home page."""
    from ftauth.sandbox.scripted import parse_html_forms

    response = browser.get(
        f"{host}/ftauth/login/individu/?next=/", allow_redirects=False, timeout=60
    )
    for _ in range(10):
        if response.is_redirect:
            location = urljoin(response.url, response.headers["Location"])
            if urlsplit(location).path == "/":
                return True
            response = browser.get(location, allow_redirects=False, timeout=60)
            continue
        forms = {form.id: form for form in parse_html_forms(response.text)}
        chosen = forms.get("ftauth-sandbox-login") or forms.get("ftauth-sandbox-consent")
        if chosen is None:
            return False
        extra = (
            {"persona": PERSONA} if chosen.id == "ftauth-sandbox-login" else {"decision": "accept"}
        )
        response = browser.post(
            urljoin(response.url, chosen.action or response.url),
            data={**chosen.fields, **extra},
            headers={"Referer": response.url},
            allow_redirects=False,
            timeout=60,
        )
    return False


@dataclass
class Device:
    browser: requests.Session
    host: str
    # (seconds, what the page showed) for each visit of /profile/
    visits: list[tuple[float, str]] = field(default_factory=list)

    def open_profile(self) -> int | None:
        """One visit; the wait announced when the page said "réessayez"."""
        started = time.perf_counter()
        try:
            page = self.browser.get(f"{self.host}/profile/", allow_redirects=False, timeout=120)
        except requests.RequestException as exc:
            self.visits.append((time.perf_counter() - started, f"error {type(exc).__name__}"))
            return None
        took = time.perf_counter() - started
        retry = RETRY.search(page.text)
        if page.status_code == 200 and retry:
            self.visits.append((took, "réessayez"))
            return int(retry.group(1))
        data = page.text.partition("peconnect-individu/v1/userinfo</code>")[2]
        shown = page.status_code == 200 and "<dd>Camille</dd>" in data
        self.visits.append((took, "data" if shown else f"error {page.status_code}"))
        return None

    def storm(self, start: threading.Event) -> None:
        start.wait()
        for _ in range(4):  # the first visit, and three comebacks at most
            wait = self.open_profile()
            if wait is None:
                return
            time.sleep(wait)


def _home_poller(host: str, stop: threading.Event, times: list[float]) -> None:
    with _browser() as browser:
        while not stop.is_set():
            started = time.perf_counter()
            with contextlib.suppress(requests.RequestException):
                browser.get(f"{host}/", timeout=120)
                times.append(time.perf_counter() - started)


def _age_every_grant(database: str) -> None:
    """Every access token expired, every stored claim an hour old: /profile/ must call."""
    import psycopg

    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute("UPDATE ftauth_grant SET expires_at = now() - interval '1 minute'")
        connection.execute("UPDATE ftauth_linkedaccount SET claims_at = now() - interval '1 hour'")


def _statuses(lines: list[str], pattern: re.Pattern[str]) -> Counter[str]:
    return Counter(m.group(1) for line in lines if (m := pattern.search(line)))


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run() -> Report:
    report = Report(TITLE)
    count = _int("BENCH_STORM_DEVICES", 200)
    workers = _int("BENCH_STORM_WORKERS", 12)
    pollers = _int("BENCH_STORM_POLLERS", 4)
    with tempfile.TemporaryDirectory() as tmp, _sites(Path(tmp), workers) as sites:
        hosts = [host.url for host in sites.hosts]
        devices = [Device(_browser(), hosts[n % 2]) for n in range(count)]
        signed_in = sum(sign_in(device.browser, device.host) for device in devices)
        if signed_in != count:
            report.error = f"{count - signed_in} of {count} devices could not sign in"
            return report
        _age_every_grant(sites.database)
        idp_before = len(sites.idp.log_text().splitlines())
        hosts_before = [len(host.log_text().splitlines()) for host in sites.hosts]
        start, stop, home_times = threading.Event(), threading.Event(), []
        storm = [threading.Thread(target=d.storm, args=(start,), daemon=True) for d in devices]
        polling = [
            threading.Thread(
                target=_home_poller, args=(hosts[n % 2], stop, home_times), daemon=True
            )
            for n in range(pollers)
        ]
        for thread in storm + polling:
            thread.start()
        time.sleep(1.0)  # the pollers are at work before the storm
        home_times.clear()
        began = time.perf_counter()
        start.set()
        for thread in storm:
            thread.join(600)
        everyone = time.perf_counter() - began
        stop.set()
        for thread in polling:
            thread.join(120)
        idp_lines = sites.idp.log_text().splitlines()[idp_before:]
        host_lines = [
            line
            for host, before in zip(sites.hosts, hosts_before, strict=True)
            for line in host.log_text().splitlines()[before:]
        ]
    firsts = [device.visits[0] for device in devices if device.visits]
    outcomes = Counter(what for device in devices for _, what in device.visits)
    errors = sum(n for what, n in outcomes.items() if what.startswith("error"))
    home_p50 = statistics.median(home_times) if home_times else float("nan")
    report.add(
        "home page during the storm: p50 / p95",
        f"{home_p50 * 1000:.0f} / {_quantile(home_times, 0.95) * 1000:.0f} ms "
        f"({len(home_times)} pages)",
        f"p50 < {HOME_GOAL * 1000:.0f} ms",
        home_p50 < HOME_GOAL,
    )
    profile_times = [took for took, _ in firsts]
    report.add(
        "/profile/ at the storm's first wave: p50 / p95",
        f"{statistics.median(profile_times) * 1000:.0f} / "
        f"{_quantile(profile_times, 0.95) * 1000:.0f} ms",
    )
    report.add(
        "first wave: data / réessayez / errors",
        f"{Counter(w for _, w in firsts)['data']} / {Counter(w for _, w in firsts)['réessayez']}"
        f" / {sum(1 for _, w in firsts if w.startswith('error'))}",
    )
    served = sum(1 for device in devices if any(w == "data" for _, w in device.visits))
    report.add(
        "every visit: data / réessayez / errors",
        f"{outcomes['data']} / {outcomes['réessayez']} / {errors}",
        "0 errors",
        errors == 0,
    )
    report.add(
        "devices served (within 3 comebacks), and when the last was",
        f"{served} of {count}, {everyone:.1f} s after the storm began",
    )
    tokens = _statuses(idp_lines, TOKEN_LINE)
    refreshes = sum(tokens.values())
    report.add(
        "token refreshes (sandbox log) for the storm's grants",
        f"{refreshes} for {count} grants, {refreshes - tokens['200']} refused",
        "one per grant",
        refreshes == count and tokens["200"] == count,
    )
    userinfo = _statuses(idp_lines, USERINFO_LINE)
    report.add(
        "userinfo calls the sandbox answered / 429", f"{sum(userinfo.values())} / {userinfo['429']}"
    )
    host_statuses = _statuses(host_lines, STATUS_LINE)
    server_errors = sum(n for status, n in host_statuses.items() if status.startswith("5"))
    report.add("5xx answered by the hosts", f"{server_errors}", "0", server_errors == 0)
    report.notes.append(
        f"{count} devices, 2 hosts x {workers} sync gunicorn workers, PostgreSQL + Redis, "
        f"sandbox quota 4 calls/s; {pollers} home-page visitors"
    )
    return report
