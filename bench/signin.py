"""Sign-in, side by side in one run: ftauth's demo site and a mozilla-django-oidc site.

Both sites sign in against the same look-alike France Travail identity server
(``bench.idp``, a separate process on this machine), driven from outside by
the same scripted client: ``GET`` the site's login URL, follow it to the
identity server's authorize endpoint (which answers a code at once), then
``GET`` the site's callback, whose answer (a redirect to ``/profile/``) ends
the sign-in. The subjects come from a pool (``BENCH_SIGNIN_POOL``, default 16)
signed in once during warm-up, so the figures are those of returning users.

Each figure is measured for both sites in the same run, in alternating blocks
(ftauth first in one block, mozilla-django-oidc first in the next), so that a
busy moment of the shared machine weighs on both; reported as ratios
ftauth / mozilla-django-oidc. Three set-ups, one after the other:
``runserver`` (threaded, SQLite), gunicorn (4 sync workers) on PostgreSQL and
Redis, gunicorn (4 sync workers) on one SQLite file.

Measured per set-up: identity-server calls per sign-in (every answer of the
identity server but the browser's authorize), the callback's median with
``BENCH_SIGNIN_LATENCY`` (default 20 ms) added to every identity-server answer,
sequential sign-ins per second, sign-ins per second with 8 concurrent clients
and their errors, RSS per worker at the end, database queries and commits per
callback (``bench.instrument``, enabled in the bench settings of both sites).

Environment: ``BENCH_SIGNIN_SEQUENTIAL`` (default 60 sign-ins per site),
``BENCH_SIGNIN_CONCURRENT`` (default 160), ``BENCH_SIGNIN_CLIENTS`` (8),
``BENCH_SIGNIN_LATENCY_RUNS`` (40), ``BENCH_SIGNIN_SETUPS`` (comma-separated
among ``runserver,gunicorn-postgres,gunicorn-sqlite``), ``BENCH_SIGNIN_PROFILE``
(a directory: py-spy records ftauth's server during its sequential blocks,
raw collapsed stacks, one file per set-up), ``BENCH_SIGNIN_USERINFO_RATE``
(ftauth's pacing of userinfo calls per second, default 1000: in effect unpaced, the
look-alike server enforcing no quota), ``BENCH_PG_URL`` (default
``postgres://postgres@127.0.0.1:5432``), ``BENCH_REDIS_URL`` (default
``rediscache://127.0.0.1:6379/15``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests

from . import Report
from .idp import CLIENT_ID, CLIENT_SECRET

TITLE = "Sign-in: ftauth / mozilla-django-oidc, same identity server, one run"
ROOT = Path(__file__).resolve().parent.parent
SETUPS = ("runserver", "gunicorn-postgres", "gunicorn-sqlite")
WORKERS = 4
# Goals of issue 7.
CALLBACK_GOAL = 0.6
RATE_GOAL = 1.2
# Every answer but the browser's own authorize is a call the site made.
SERVER_CALLS = ("discovery", "jwks", "token", "userinfo", "unknown")


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_http(url: str, process: subprocess.Popen, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} stopped: {log.read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(requests.RequestException):
            requests.get(url, timeout=2)
            return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {seconds:g} s")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextlib.contextmanager
def identity_server(workdir: Path) -> Iterator[str]:
    log = workdir / "idp.log"
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.idp", "--port", str(_free_port())],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
        )
        try:
            line = process.stdout.readline() if process.stdout else ""
            if not line.startswith("listening on "):
                raise RuntimeError(f"bench.idp did not start: {log.read_text()[-2000:]}")
            yield f"http://127.0.0.1:{int(line.split()[-1])}"
        finally:
            _stop(process)


class Idp:
    def __init__(self, url: str) -> None:
        self.url = url

    def latency(self, seconds: float) -> None:
        requests.get(f"{self.url}/_bench/latency", params={"seconds": seconds}, timeout=5)

    def reset(self) -> None:
        requests.get(f"{self.url}/_bench/reset", timeout=5)

    def stats(self) -> Counter[str]:
        return Counter(requests.get(f"{self.url}/_bench/stats", timeout=5).json())


@dataclass
class Site:
    name: str
    login_path: str
    settings: str
    wsgi: str
    env: dict[str, str]
    url: str = ""
    process: subprocess.Popen | None = None
    log: Path | None = None

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        children = _children(self.process.pid)
        return children or [self.process.pid]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _base_env(settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FT_", "FTAUTH_", "DJANGO_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": settings,
            "PYTHONPATH": str(ROOT),
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(32),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "FTAUTH_LOG_LEVEL": "WARNING",
        }
    )
    return env


def _sites(idp: str, databases: tuple[str, str], cache: str) -> list[Site]:
    ft_env = _base_env("bench.signin_settings")
    ft_env.update(
        {
            "FTAUTH_SANDBOX": "false",
            "FT_CLIENT_ID": CLIENT_ID,
            "FT_CLIENT_SECRET": CLIENT_SECRET,
            "FT_INDIVIDU_URL": f"{idp}/authentification-candidat",
            "FT_ENTREPRISE_URL": f"{idp}/entreprise",
            "FT_API_URL": f"{idp}/api",
            "DATABASE_URL": databases[0],
            "CACHE_URL": cache,
            "BENCH_USERINFO_RATE": os.environ.get("BENCH_SIGNIN_USERINFO_RATE", "1000"),
        }
    )
    moz_env = _base_env("bench.mozilla_site.settings")
    moz_env.update({"BENCH_IDP_URL": idp, "DATABASE_URL": databases[1]})
    return [
        Site(
            "ftauth",
            "/ftauth/login/individu/?next=/profile/",
            "bench.signin_settings",
            "demo_site.wsgi:application",
            ft_env,
        ),
        Site(
            "mozilla-django-oidc",
            "/oidc/authenticate/?next=/profile/",
            "bench.mozilla_site.settings",
            "bench.mozilla_site.wsgi:application",
            moz_env,
        ),
    ]


@contextlib.contextmanager
def serving(site: Site, runner: str, workdir: Path) -> Iterator[Site]:
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", "-v", "0"],
        env=site.env,
        cwd=ROOT,
        check=True,
        timeout=300,
    )
    port = _free_port()
    site.url = f"http://127.0.0.1:{port}"
    if runner == "runserver":
        command = [
            sys.executable,
            str(ROOT / "manage.py"),
            "runserver",
            "--noreload",
            f"127.0.0.1:{port}",
        ]
    else:
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            str(WORKERS),
            "-b",
            f"127.0.0.1:{port}",
            "--timeout",
            "60",
            site.wsgi,
        ]
    site.log = workdir / f"{site.name}-{runner}.log"
    with site.log.open("w") as log_file:
        site.process = subprocess.Popen(
            command, env=site.env, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT
        )
        try:
            _wait_http(f"{site.url}/profile/", site.process, site.log)
            yield site
        finally:
            _stop(site.process)


@dataclass
class SignIn:
    ok: bool
    callback: float = 0.0
    total: float = 0.0
    queries: int = 0
    commits: int = 0
    error: str = ""


def sign_in(site: Site, sub: str) -> SignIn:
    """One sign-in by a fresh browser: login, authorize, callback."""
    started = time.perf_counter()
    try:
        with requests.Session() as browser:
            login = browser.get(site.url + site.login_path, allow_redirects=False, timeout=30)
            if login.status_code != 302:
                return SignIn(False, error=f"login answered {login.status_code}")
            authorize = browser.get(
                login.headers["Location"],
                params={"login_hint": sub},
                allow_redirects=False,
                timeout=30,
            )
            if authorize.status_code != 302:
                return SignIn(False, error=f"authorize answered {authorize.status_code}")
            callback_started = time.perf_counter()
            callback = browser.get(authorize.headers["Location"], allow_redirects=False, timeout=60)
            ended = time.perf_counter()
    except requests.RequestException as exc:
        return SignIn(False, error=type(exc).__name__)
    queries, commits = (int(n) for n in callback.headers.get("X-Bench-DB", "0 0").split())
    target = urlsplit(callback.headers.get("Location", "")).path
    ok = callback.status_code == 302 and target == "/profile/"
    return SignIn(
        ok,
        ended - callback_started,
        ended - started,
        queries,
        commits,
        "" if ok else f"callback answered {callback.status_code} {target}",
    )


@dataclass
class Tally:
    """What one site did over the blocks of one phase."""

    results: list[SignIn] = field(default_factory=list)
    seconds: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)

    @property
    def errors(self) -> list[SignIn]:
        return [r for r in self.results if not r.ok]

    @property
    def rate(self) -> float:
        return len(self.results) / self.seconds if self.seconds else 0.0

    def median(self, attribute: str) -> float:
        values = [getattr(r, attribute) for r in self.results if r.ok]
        return statistics.median(values) if values else float("nan")


def _subjects(pool: int) -> list[str]:
    return [f"bench-{n:03d}" for n in range(pool)]


def _block(site: Site, idp: Idp, tally: Tally, subs: list[str], clients: int) -> None:
    idp.reset()
    started = time.perf_counter()
    if clients == 1:
        results = [sign_in(site, sub) for sub in subs]
    else:
        with ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(lambda sub: sign_in(site, sub), subs))
    tally.seconds += time.perf_counter() - started
    tally.results.extend(results)
    tally.calls.update(idp.stats())


class Profiler:
    """py-spy on ftauth's server processes, on only while ftauth's blocks run."""

    def __init__(self, directory: str, setup: str) -> None:
        self.directory = Path(directory) if directory else None
        self.setup = setup
        self.processes: list[subprocess.Popen] = []

    def start(self, site: Site) -> None:
        if self.directory is None or site.name != "ftauth":
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        for n, pid in enumerate(site.worker_pids()):
            out = self.directory / f"{self.setup}-{n}-{time.monotonic_ns()}.txt"
            self.processes.append(
                subprocess.Popen(
                    [py_spy, "record", "-p", str(pid), "-r", "250", "-f", "raw", "-o", str(out)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        time.sleep(1.0)  # py-spy attaches

    def stop(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGINT)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes = []


def _phase(
    sites: list[Site],
    idp: Idp,
    subs: list[str],
    total: int,
    clients: int,
    profiler: Profiler | None = None,
) -> dict[str, Tally]:
    """``total`` sign-ins per site, in alternating blocks."""
    tallies = {site.name: Tally() for site in sites}
    block = max(clients * 2, 10)
    done = 0
    turn = 0
    while done < total:
        count = min(block, total - done)
        chunk = [subs[(done + i) % len(subs)] for i in range(count)]
        order = sites if turn % 2 == 0 else list(reversed(sites))
        for site in order:
            if profiler:
                profiler.start(site)
            try:
                _block(site, idp, tallies[site.name], chunk, clients)
            finally:
                if profiler:
                    profiler.stop()
        done += count
        turn += 1
    return tallies


def _ratio(ft: float, moz: float) -> str:
    return f"x{ft / moz:.2f}" if moz else "n/a"


def _pg_admin_url() -> str:
    return os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")


def _fresh_pg_databases(names: list[str]) -> None:
    import psycopg

    with psycopg.connect(f"{_pg_admin_url()}/postgres", autocommit=True) as connection:
        for name in names:
            assert name.startswith("ftauth_bench")
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}"')


def _drop_pg_databases(names: list[str]) -> None:
    import psycopg

    with psycopg.connect(f"{_pg_admin_url()}/postgres", autocommit=True) as connection:
        for name in names:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _redis_url(prefix: str) -> str:
    base = os.environ.get("BENCH_REDIS_URL", "rediscache://127.0.0.1:6379/15")
    return f"{base}?key_prefix={prefix}"


def _forget_redis(prefix: str) -> None:
    import redis

    base = os.environ.get("BENCH_REDIS_URL", "rediscache://127.0.0.1:6379/15")
    client = redis.Redis.from_url(base.replace("rediscache://", "redis://", 1))
    for key in client.scan_iter(f"{prefix}:*", count=500):
        client.delete(key)
    client.close()


@contextlib.contextmanager
def _setup_backends(setup: str, workdir: Path) -> Iterator[tuple[tuple[str, str], str]]:
    if setup != "gunicorn-postgres":
        files = (workdir / f"ftauth-{setup}.sqlite3", workdir / f"mozilla-{setup}.sqlite3")
        yield (f"sqlite:///{files[0]}", f"sqlite:///{files[1]}"), "locmemcache://ftauth-bench"
        return
    names = [f"ftauth_bench_{uuid.uuid4().hex[:8]}_{side}" for side in ("ft", "moz")]
    prefix = f"ftauth-bench-{uuid.uuid4().hex[:12]}"
    _fresh_pg_databases(names)
    try:
        admin = _pg_admin_url()
        yield (f"{admin}/{names[0]}", f"{admin}/{names[1]}"), _redis_url(prefix)
    finally:
        _drop_pg_databases(names)
        _forget_redis(prefix)


def run_setup(setup: str, idp_url: str, workdir: Path, report: Report) -> None:
    idp = Idp(idp_url)
    runner = "runserver" if setup == "runserver" else "gunicorn"
    sequential = _int("BENCH_SIGNIN_SEQUENTIAL", 60)
    concurrent = _int("BENCH_SIGNIN_CONCURRENT", 160)
    clients = _int("BENCH_SIGNIN_CLIENTS", 8)
    latency_runs = _int("BENCH_SIGNIN_LATENCY_RUNS", 40)
    latency = float(os.environ.get("BENCH_SIGNIN_LATENCY", "0.020"))
    subs = _subjects(_int("BENCH_SIGNIN_POOL", 16))
    profiler = Profiler(os.environ.get("BENCH_SIGNIN_PROFILE", ""), setup)
    with _setup_backends(setup, workdir) as (databases, cache), contextlib.ExitStack() as stack:
        sites = [
            stack.enter_context(serving(s, runner, workdir))
            for s in _sites(idp_url, databases, cache)
        ]
        idp.latency(0)
        # Warm-up: every subject signs in once on each site (users created, caches filled,
        # every worker imported what it needs).
        warm = _phase(
            sites, idp, subs, max(len(subs), WORKERS * 4), 1 if runner == "runserver" else 4
        )
        seq = _phase(sites, idp, subs, sequential, 1, profiler)
        conc = _phase(sites, idp, subs, concurrent, clients)
        idp.latency(latency)
        slow = _phase(sites, idp, subs, latency_runs, 1)
        idp.latency(0)
        rss = {s.name: [_rss_mib(pid) for pid in s.worker_pids()] for s in sites}
    _report_setup(report, setup, warm, seq, conc, slow, rss, latency, clients)


def _report_setup(
    report: Report,
    setup: str,
    warm: dict[str, Tally],
    seq: dict[str, Tally],
    conc: dict[str, Tally],
    slow: dict[str, Tally],
    rss: dict[str, list[float]],
    latency: float,
    clients: int,
) -> None:
    ft, moz = "ftauth", "mozilla-django-oidc"

    def calls(tally: Tally) -> float:
        made = sum(tally.calls[k] for k in SERVER_CALLS)
        return made / max(1, len(tally.results))

    calls_ft, calls_moz = calls(seq[ft]), calls(seq[moz])
    report.add(
        f"{setup}: identity-server calls per sign-in",
        f"{calls_ft:.2f} vs {calls_moz:.2f} ({_ratio(calls_ft, calls_moz)})",
        "<= 2",
        calls_ft <= 2,
    )
    cb_ft, cb_moz = slow[ft].median("callback"), slow[moz].median("callback")
    report.add(
        f"{setup}: callback median at {latency * 1000:g} ms",
        f"{cb_ft * 1000:.1f} vs {cb_moz * 1000:.1f} ms ({_ratio(cb_ft, cb_moz)})",
        f"<= x{CALLBACK_GOAL}",
        cb_ft <= CALLBACK_GOAL * cb_moz,
    )
    cb0_ft, cb0_moz = seq[ft].median("callback"), seq[moz].median("callback")
    report.add(
        f"{setup}: callback median at 0 ms",
        f"{cb0_ft * 1000:.1f} vs {cb0_moz * 1000:.1f} ms ({_ratio(cb0_ft, cb0_moz)})",
    )
    report.add(
        f"{setup}: sequential sign-ins/s",
        f"{seq[ft].rate:.1f} vs {seq[moz].rate:.1f} ({_ratio(seq[ft].rate, seq[moz].rate)})",
        f">= x{RATE_GOAL}",
        seq[ft].rate >= RATE_GOAL * seq[moz].rate,
    )
    report.add(
        f"{setup}: sign-ins/s, {clients} clients",
        f"{conc[ft].rate:.1f} vs {conc[moz].rate:.1f} ({_ratio(conc[ft].rate, conc[moz].rate)})",
        f">= x{RATE_GOAL}",
        conc[ft].rate >= RATE_GOAL * conc[moz].rate,
    )
    errors = {name: sum(len(t[name].errors) for t in (warm, seq, conc, slow)) for name in seq}
    runs = {name: sum(len(t[name].results) for t in (warm, seq, conc, slow)) for name in seq}
    report.add(
        f"{setup}: failed sign-ins",
        f"{errors[ft]} of {runs[ft]} vs {errors[moz]} of {runs[moz]}",
        "0",
        errors[ft] == 0,
    )
    rss_ft, rss_moz = statistics.mean(rss[ft]), statistics.mean(rss[moz])
    report.add(
        f"{setup}: RSS per worker",
        f"{rss_ft:.0f} vs {rss_moz:.0f} MiB ({_ratio(rss_ft, rss_moz)})",
        "<= x1.00",
        rss_ft <= rss_moz,
    )
    q_ft, c_ft = seq[ft].median("queries"), seq[ft].median("commits")
    q_moz, c_moz = seq[moz].median("queries"), seq[moz].median("commits")
    report.add(
        f"{setup}: queries / commits per callback",
        f"{q_ft:.0f} / {c_ft:.0f} vs {q_moz:.0f} / {c_moz:.0f}",
    )
    for name in seq:
        first = next((r.error for t in (warm, seq, conc, slow) for r in t[name].errors), "")
        if first:
            report.notes.append(f"{setup}: {name}: first failure: {first}")


def run() -> Report:
    report = Report(TITLE)
    setups = [s for s in os.environ.get("BENCH_SIGNIN_SETUPS", ",".join(SETUPS)).split(",") if s]
    unknown = set(setups) - set(SETUPS)
    if unknown:
        report.error = f"unknown set-ups {', '.join(sorted(unknown))}; known: {', '.join(SETUPS)}"
        return report
    workdir = Path(tempfile.mkdtemp(prefix="ftauth-bench-signin-"))
    try:
        with identity_server(workdir) as idp_url:
            for setup in setups:
                run_setup(setup, idp_url, workdir, report)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report.notes.append(
        "figures: ftauth vs mozilla-django-oidc (ratio ftauth / mozilla-django-oidc)"
    )
    return report
