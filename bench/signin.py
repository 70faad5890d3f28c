"""Sign-in as a user gets it, side by side in one run: ftauth's demo site with its
default settings and a mozilla-django-oidc site (the anchor).

Every site signs in against the same look-alike France Travail identity server
(``bench.idp``, a separate process on this machine), driven from outside by the
same scripted client: ``GET`` the site's login URL, follow it to the identity
server's authorize endpoint (which answers a code at once), then ``GET`` the
site's callback, whose answer (a redirect to ``/profile/``) ends the sign-in.
Each sign-in is a fresh browser (cookie jar).

Sites, all served in each set-up (their own database, their own cache):

- ``ftauth``: the demo site (``bench.signin_settings``: the demo's settings, defaults
  included, plus the query-count middleware; sandbox off). ftauth paces the
  sign-in's userinfo call like any call with a user's token: 4 calls/s per
  application by default, France Travail's documented quota.
- ``mozilla-django-oidc``: ``bench/mozilla_site/``, set up as its documentation says.
- ``ftauth alone``: ``bench/ftauth_site/``, a minimal ftauth site built like the
  anchor, which takes part in every phase below with the same sign-ins; only its
  RSS is reported, to split the demo's between ftauth and the demo around it.
- ``ftauth (pacing lifted)``: the demo with the userinfo pacing at
  ``BENCH_SIGNIN_USERINFO_RATE`` calls/s (``bench.signin_lifted_settings``, sharing
  the demo's database); warmed up, then measured in the first sign-ins' phase only,
  for the one row that says "pacing lifted".

Each figure is measured for the sites in the same run, in alternating blocks (the
order rotates from one block to the next, so that a busy moment of the shared
machine weighs on all); reported as ftauth vs mozilla-django-oidc with the ratio
ftauth / mozilla-django-oidc. Three set-ups, one after the other: ``runserver``
(threaded, SQLite), gunicorn (4 sync workers) on PostgreSQL and Redis, gunicorn
(4 sync workers) on one SQLite file (the demo's default cache there, kept per
process, so each worker paces its own calls: ftauth's check ``ftauth.W040``).

Phases of each set-up:

1. Warm-up: every subject of a pool (``BENCH_SIGNIN_POOL``, default 16) signs in
   once on each site, one after the other (so each first sign-in gets its userinfo
   turn and the stored claims are read), then under gunicorn 16 sign-ins more by 4
   clients, so that every worker has imported what it needs.
2. Returning sign-ins (the pool's subjects, signed in during the warm-up): sequential
   at 0 ms added latency (sign-ins per second, queries and commits per callback and
   per login start, identity-server calls per sign-in: every answer of the identity
   server but the browser's authorize), with ``BENCH_SIGNIN_CLIENTS`` concurrent
   clients (sign-ins per second), then sequential with ``BENCH_SIGNIN_LATENCY``
   (default 20 ms) and ``BENCH_SIGNIN_LATENCY_HIGH`` (default 100 ms, closer to
   France Travail's) added to every identity-server answer (the callback's median).
3. First sign-ins (a subject never seen before, a fresh one per sign-in) at
   ``BENCH_SIGNIN_LATENCY``, sequential, in blocks of ``BENCH_SIGNIN_FIRST_BLOCK``:
   identity-server calls per sign-in, the callback's median with ftauth's default
   pacing (back-to-back first sign-ins faster than 4/s wait for their userinfo turn:
   what a site gets when they come that fast), and the same with the pacing lifted.
4. A burst at ``BENCH_SIGNIN_LATENCY``: ``BENCH_SIGNIN_BURST`` (default 30) browsers
   of fresh subjects go through login and authorize (codes in hand), then send their
   callbacks at once (threads released by a barrier): pages other than the signed-in
   redirect, codes exchanged and thrown away (token answers that gave tokens, counted
   by ``bench.idp``, minus sign-ins that succeeded), userinfo answers (a sign-in whose
   userinfo turn does not come within ``SIGN_IN_TIME_BUDGET`` completes with the ID
   token's claims), the callbacks' p50 / p95 / max.
5. RSS per worker of the demo, the minimal ftauth site and the anchor, at the end.

The refresh storm (1 000 devices, two hosts) is ``bench.storm``, a benchmark of its own.

Environment: ``BENCH_SIGNIN_SEQUENTIAL`` (default 40 returning sign-ins per site),
``BENCH_SIGNIN_CONCURRENT`` (default 96), ``BENCH_SIGNIN_CLIENTS`` (8),
``BENCH_SIGNIN_LATENCY_RUNS`` (24 returning sign-ins per site at each latency),
``BENCH_SIGNIN_LATENCY`` (seconds, 0.020), ``BENCH_SIGNIN_LATENCY_HIGH`` (0.100),
``BENCH_SIGNIN_POOL`` (16), ``BENCH_SIGNIN_FIRST`` (20 first sign-ins per site),
``BENCH_SIGNIN_FIRST_BLOCK`` (5), ``BENCH_SIGNIN_BURST`` (30),
``BENCH_SIGNIN_SETUPS`` (comma-separated among
``runserver,gunicorn-postgres,gunicorn-sqlite``), ``BENCH_SIGNIN_PROFILE`` (a
directory: py-spy records the demo's server during its sequential returning blocks,
raw collapsed stacks, one file per worker and block), ``BENCH_SIGNIN_USERINFO_RATE``
(the pacing-lifted site's userinfo calls per second, default 1000: in effect unpaced,
the look-alike server enforcing no quota), ``BENCH_PG_URL`` (default
``postgres://postgres@127.0.0.1:5432``; databases ``ftauth_bench_*``, dropped at the
end), ``BENCH_REDIS_URL`` (default ``rediscache://127.0.0.1:6379/15``; keys under a
prefix of the run, deleted at the end).
"""

from __future__ import annotations

import contextlib
import html
import math
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
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

TITLE = "Sign-in as a user gets it: ftauth's demo (defaults) / mozilla-django-oidc, one run"
ROOT = Path(__file__).resolve().parent.parent
SETUPS = ("runserver", "gunicorn-postgres", "gunicorn-sqlite")
WORKERS = 4
# The sites, by key.
FT, MOZ, ALONE, LIFTED = "ft", "moz", "alone", "lifted"
# Goals of issue 15 (ratios ftauth / mozilla-django-oidc).
RETURNING_CALLS = 1
FIRST_CALLS = 2
CALLBACK_GOAL = 0.5  # returning, at BENCH_SIGNIN_LATENCY
CALLBACK_GOAL_HIGH = 0.4  # returning, at BENCH_SIGNIN_LATENCY_HIGH
FIRST_CALLBACK_GOAL = 0.8  # first sign-in, at BENCH_SIGNIN_LATENCY
RATE_GOAL = 1.5  # sequential returning sign-ins per second
RSS_GOAL = 1.0
# Every answer but the browser's own authorize is a call the site made.
SERVER_CALLS = ("discovery", "jwks", "token", "userinfo", "unknown")
LOGIN_PATH = "/ftauth/login/individu/?next=/profile/"


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, str(default)))


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
    key: str
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


@dataclass
class Backends:
    """Each site's database and cache URLs in one set-up."""

    databases: dict[str, str]
    caches: dict[str, str]


def _userinfo_rate() -> str:
    return os.environ.get("BENCH_SIGNIN_USERINFO_RATE", "1000")


def _token_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _sites(idp: str, backends: Backends) -> dict[str, Site]:
    token_key = _token_key()  # the ftauth sites' FTAUTH_TOKEN_KEYS

    def demo_env(settings: str, key: str) -> dict[str, str]:
        env = _base_env(settings)
        env.update(
            {
                "FTAUTH_SANDBOX": "false",
                "FT_CLIENT_ID": CLIENT_ID,
                "FT_CLIENT_SECRET": CLIENT_SECRET,
                "FT_INDIVIDU_URL": f"{idp}/authentification-candidat",
                "FT_ENTREPRISE_URL": f"{idp}/entreprise",
                "FT_API_URL": f"{idp}/api",
                "FTAUTH_TOKEN_KEYS": token_key,
                "DATABASE_URL": backends.databases[key],
                "CACHE_URL": backends.caches[key],
            }
        )
        return env

    lifted_env = demo_env("bench.signin_lifted_settings", LIFTED)
    lifted_env["BENCH_USERINFO_RATE"] = _userinfo_rate()
    moz_env = _base_env("bench.mozilla_site.settings")
    moz_env.update({"BENCH_IDP_URL": idp, "DATABASE_URL": backends.databases[MOZ]})
    alone_env = _base_env("bench.ftauth_site.settings")
    alone_env.update(
        {
            "BENCH_IDP_URL": idp,
            "DATABASE_URL": backends.databases[ALONE],
            "CACHE_URL": backends.caches[ALONE],
            "FTAUTH_TOKEN_KEYS": token_key,
        }
    )
    sites = [
        Site(
            FT,
            "ftauth",
            LOGIN_PATH,
            "bench.signin_settings",
            "demo_site.wsgi:application",
            demo_env("bench.signin_settings", FT),
        ),
        Site(
            MOZ,
            "mozilla-django-oidc",
            "/oidc/authenticate/?next=/profile/",
            "bench.mozilla_site.settings",
            "bench.mozilla_site.wsgi:application",
            moz_env,
        ),
        Site(
            ALONE,
            "ftauth alone (bench/ftauth_site)",
            LOGIN_PATH,
            "bench.ftauth_site.settings",
            "bench.ftauth_site.wsgi:application",
            alone_env,
        ),
        Site(
            LIFTED,
            "ftauth (pacing lifted)",
            LOGIN_PATH,
            "bench.signin_lifted_settings",
            "demo_site.wsgi:application",
            lifted_env,
        ),
    ]
    return {site.key: site for site in sites}


@contextlib.contextmanager
def serving(site: Site, runner: str, workdir: Path) -> Iterator[Site]:
    migrate_log = workdir / f"{site.key}-{runner}-migrate.log"
    with migrate_log.open("w") as log_file:  # the checks' warnings (W040) too
        migrated = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", "-v", "0"],
            env=site.env,
            cwd=ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            timeout=300,
        )
    if migrated.returncode:
        raise RuntimeError(f"{site.name}: migrate failed: {migrate_log.read_text()[-2000:]}")
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
    site.log = workdir / f"{site.key}-{runner}.log"
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
    login_queries: int = 0
    login_commits: int = 0
    error: str = ""
    # BEGIN, SAVEPOINT, RELEASE sent through a cursor (bench.instrument): not queries.
    control: int = 0


def _db_work(response: requests.Response) -> tuple[int, int]:
    queries, commits = (int(n) for n in response.headers.get("X-Bench-DB", "0 0").split())
    return queries, commits


def _page(response: requests.Response) -> str:
    """What a callback answered instead of the signed-in redirect, in a few words."""
    if response.is_redirect:
        return f"{response.status_code} to {urlsplit(response.headers.get('Location', '')).path}"
    text = re.sub(r"(?is)<(script|style|head)\b.*?</\1>", " ", response.text)
    main = re.search(r"(?is)<main\b.*?</main>", text)
    words = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", main[0] if main else text)).split())
    return f"{response.status_code} «{words[:120]}»"


@dataclass
class Started:
    """A browser that went through login and authorize: its code in hand."""

    browser: requests.Session
    callback_url: str
    started: float
    login_queries: int
    login_commits: int


def _start(site: Site, sub: str) -> Started | SignIn:
    browser = requests.Session()
    started = time.perf_counter()
    try:
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
    except requests.RequestException as exc:
        browser.close()
        return SignIn(False, error=type(exc).__name__)
    return Started(browser, authorize.headers["Location"], started, *_db_work(login))


def _finish(started: Started, timeout: float = 60) -> SignIn:
    with started.browser:
        callback_started = time.perf_counter()
        try:
            callback = started.browser.get(
                started.callback_url, allow_redirects=False, timeout=timeout
            )
        except requests.RequestException as exc:
            ended = time.perf_counter()
            return SignIn(False, ended - callback_started, error=type(exc).__name__)
        ended = time.perf_counter()
    target = urlsplit(callback.headers.get("Location", "")).path
    ok = callback.status_code == 302 and target == "/profile/"
    return SignIn(
        ok,
        ended - callback_started,
        ended - started.started,
        *_db_work(callback),
        started.login_queries,
        started.login_commits,
        "" if ok else f"callback answered {_page(callback)}",
        int(callback.headers.get("X-Bench-DB-Control", "0")),
    )


def sign_in(site: Site, sub: str) -> SignIn:
    """One sign-in by a fresh browser: login, authorize, callback."""
    started = _start(site, sub)
    return started if isinstance(started, SignIn) else _finish(started)


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

    @property
    def calls_per_sign_in(self) -> float:
        return sum(self.calls[k] for k in SERVER_CALLS) / max(1, len(self.results))

    def median(self, attribute: str) -> float:
        values = [getattr(r, attribute) for r in self.results if r.ok]
        return statistics.median(values) if values else float("nan")


def _subjects(pool: int) -> list[str]:
    return [f"bench-{n:03d}" for n in range(pool)]


def _fresh(count: int) -> list[str]:
    """Subjects never seen before, on any site."""
    return [f"first-{uuid.uuid4().hex[:16]}" for _ in range(count)]


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
    """py-spy on the demo's server processes, on only while its blocks run."""

    def __init__(self, directory: str, setup: str) -> None:
        self.directory = Path(directory) if directory else None
        self.setup = setup
        self.processes: list[subprocess.Popen] = []

    def start(self, site: Site) -> None:
        if self.directory is None or site.key != FT:
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
    pool: list[str] | None,
    total: int,
    clients: int,
    block: int = 0,
    profiler: Profiler | None = None,
) -> dict[str, Tally]:
    """``total`` sign-ins per site, in blocks whose order rotates between the sites:
    the pool's subjects in turn (returning sign-ins), or, with ``pool`` None, a subject
    never seen before for each sign-in (first sign-ins)."""
    tallies = {site.key: Tally() for site in sites}
    block = block or max(clients * 2, 10)
    done = 0
    turn = 0
    while done < total:
        count = min(block, total - done)
        shift = turn % len(sites)
        for site in sites[shift:] + sites[:shift]:
            if pool is None:
                chunk = _fresh(count)
            else:
                chunk = [pool[(done + i) % len(pool)] for i in range(count)]
            if profiler:
                profiler.start(site)
            try:
                _block(site, idp, tallies[site.key], chunk, clients)
            finally:
                if profiler:
                    profiler.stop()
        done += count
        turn += 1
    return tallies


@dataclass
class Burst:
    """One site's burst: every callback sent at once, codes in hand."""

    results: list[SignIn]
    exchanged: int = 0  # token answers that gave tokens
    userinfo: int = 0  # userinfo answers (a sign-in may complete without one)

    @property
    def signed_in(self) -> int:
        return sum(r.ok for r in self.results)

    @property
    def other_pages(self) -> Counter[str]:
        return Counter(r.error for r in self.results if not r.ok)

    @property
    def thrown_away(self) -> int:
        return self.exchanged - self.signed_in

    def times(self) -> tuple[float, float, float]:
        """p50, p95 (nearest rank) and max of the callbacks that got an answer."""
        values = sorted(r.callback for r in self.results if r.callback)
        if not values:
            return (math.nan,) * 3
        p95 = values[max(0, math.ceil(0.95 * len(values)) - 1)]
        return statistics.median(values), p95, values[-1]


def burst(site: Site, idp: Idp, size: int) -> Burst:
    """``size`` fresh browsers through login and authorize, then their callbacks at once."""
    prepared: list[Started] = []
    failed: list[SignIn] = []
    for sub in _fresh(size):
        started = _start(site, sub)
        (failed if isinstance(started, SignIn) else prepared).append(started)
    if not prepared:
        return Burst(failed)
    barrier = threading.Barrier(len(prepared))

    def fire(started: Started) -> SignIn:
        barrier.wait(timeout=60)
        return _finish(started, timeout=120)

    idp.reset()
    with ThreadPoolExecutor(len(prepared)) as pool:
        results = list(pool.map(fire, prepared))
    stats = idp.stats()
    return Burst(failed + results, stats["token_ok"], stats["userinfo"])


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


def _redis_base() -> str:
    return os.environ.get("BENCH_REDIS_URL", "rediscache://127.0.0.1:6379/15")


def _forget_redis(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(_redis_base().replace("rediscache://", "redis://", 1))
    for key in client.scan_iter(f"{prefix}*", count=500):
        client.delete(key)
    client.close()


@contextlib.contextmanager
def _setup_backends(setup: str, workdir: Path) -> Iterator[Backends]:
    """The pacing-lifted site shares the demo's database; every ftauth site has its own
    cache (its own pacing schedule)."""
    if setup != "gunicorn-postgres":
        files = {key: workdir / f"{key}-{setup}.sqlite3" for key in (FT, MOZ, ALONE)}
        databases = {key: f"sqlite:///{path}" for key, path in files.items()}
        databases[LIFTED] = databases[FT]
        caches = {key: f"locmemcache://ftauth-bench-{key}" for key in (FT, ALONE, LIFTED)}
        yield Backends(databases, caches)
        return
    run = uuid.uuid4().hex[:8]
    names = {key: f"ftauth_bench_{run}_{key}" for key in (FT, MOZ, ALONE)}
    prefix = f"ftauth-bench-{uuid.uuid4().hex[:12]}"
    _fresh_pg_databases(list(names.values()))
    try:
        admin = _pg_admin_url()
        databases = {key: f"{admin}/{name}" for key, name in names.items()}
        databases[LIFTED] = databases[FT]
        caches = {key: f"{_redis_base()}?key_prefix={prefix}-{key}" for key in (FT, ALONE, LIFTED)}
        yield Backends(databases, caches)
    finally:
        _drop_pg_databases(list(names.values()))
        _forget_redis(prefix)


@dataclass
class Measured:
    """Everything one set-up measured, by site key."""

    warm: dict[str, Tally]
    seq: dict[str, Tally]
    conc: dict[str, Tally]
    slow: dict[str, Tally]
    slower: dict[str, Tally]
    first: dict[str, Tally]
    bursts: dict[str, Burst]
    rss: dict[str, list[float]]
    names: dict[str, str]

    def phases(self) -> list[dict[str, Tally]]:
        return [self.warm, self.seq, self.conc, self.slow, self.slower, self.first]


def run_setup(setup: str, idp_url: str, workdir: Path, report: Report) -> None:
    idp = Idp(idp_url)
    runner = "runserver" if setup == "runserver" else "gunicorn"
    sequential = _int("BENCH_SIGNIN_SEQUENTIAL", 40)
    concurrent = _int("BENCH_SIGNIN_CONCURRENT", 96)
    clients = _int("BENCH_SIGNIN_CLIENTS", 8)
    latency_runs = _int("BENCH_SIGNIN_LATENCY_RUNS", 24)
    latency = _float("BENCH_SIGNIN_LATENCY", 0.020)
    latency_high = _float("BENCH_SIGNIN_LATENCY_HIGH", 0.100)
    first = _int("BENCH_SIGNIN_FIRST", 20)
    first_block = _int("BENCH_SIGNIN_FIRST_BLOCK", 5)
    burst_size = _int("BENCH_SIGNIN_BURST", 30)
    subs = _subjects(_int("BENCH_SIGNIN_POOL", 16))
    profiler = Profiler(os.environ.get("BENCH_SIGNIN_PROFILE", ""), setup)
    with _setup_backends(setup, workdir) as backends, contextlib.ExitStack() as stack:
        sites = {
            key: stack.enter_context(serving(site, runner, workdir))
            for key, site in _sites(idp_url, backends).items()
        }
        every = list(sites.values())
        # The demo, the anchor and the minimal ftauth site: the same sign-ins all along.
        three = [sites[FT], sites[MOZ], sites[ALONE]]
        idp.latency(0)
        # Warm-up: every subject signs in once on each site, one after the other (each
        # first sign-in gets its userinfo turn: the claims are stored); under gunicorn,
        # then 4 clients, so that every worker has imported what it needs.
        warm = _phase(every, idp, subs, len(subs), 1)
        if runner == "gunicorn":
            more = _phase(every, idp, subs, WORKERS * 4, 4)
            for key, tally in more.items():
                warm[key].results.extend(tally.results)
        seq = _phase(three, idp, subs, sequential, 1, profiler=profiler)
        conc = _phase(three, idp, subs, concurrent, clients)
        idp.latency(latency)
        slow = _phase(three, idp, subs, latency_runs, 1)
        idp.latency(latency_high)
        slower = _phase(three, idp, subs, latency_runs, 1)
        idp.latency(latency)
        first_tallies = _phase([*three, sites[LIFTED]], idp, None, first, 1, block=first_block)
        bursts = {}
        for site in three:
            bursts[site.key] = burst(site, idp, burst_size)
            time.sleep(1.0)  # the last answers written, the machine quiet again
        idp.latency(0)
        rss = {site.key: [_rss_mib(pid) for pid in site.worker_pids()] for site in three}
    measured = Measured(
        warm,
        seq,
        conc,
        slow,
        slower,
        first_tallies,
        bursts,
        rss,
        {key: site.name for key, site in sites.items()},
    )
    _report_setup(report, setup, measured, latency, latency_high, clients, burst_size)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _report_setup(
    report: Report,
    setup: str,
    m: Measured,
    latency: float,
    latency_high: float,
    clients: int,
    burst_size: int,
) -> None:
    at, at_high = f"{latency * 1000:g} ms", f"{latency_high * 1000:g} ms"

    # Returning sign-ins.
    calls_ft, calls_moz = m.seq[FT].calls_per_sign_in, m.seq[MOZ].calls_per_sign_in
    report.add(
        f"{setup}: returning: identity-server calls per sign-in",
        f"{calls_ft:.2f} vs {calls_moz:.2f} ({_ratio(calls_ft, calls_moz)})",
        f"<= {RETURNING_CALLS}",
        calls_ft <= RETURNING_CALLS,
    )
    for phase, where, goal in (
        (m.slow, at, CALLBACK_GOAL),
        (m.slower, at_high, CALLBACK_GOAL_HIGH),
    ):
        cb_ft, cb_moz = phase[FT].median("callback"), phase[MOZ].median("callback")
        report.add(
            f"{setup}: returning: callback median at {where}",
            f"{_ms(cb_ft)} vs {_ms(cb_moz)} ms ({_ratio(cb_ft, cb_moz)})",
            f"<= x{goal}",
            cb_ft <= goal * cb_moz,
        )
    cb0_ft, cb0_moz = m.seq[FT].median("callback"), m.seq[MOZ].median("callback")
    report.add(
        f"{setup}: returning: callback median at 0 ms",
        f"{_ms(cb0_ft)} vs {_ms(cb0_moz)} ms ({_ratio(cb0_ft, cb0_moz)})",
    )
    seq_ft, seq_moz = m.seq[FT].rate, m.seq[MOZ].rate
    report.add(
        f"{setup}: returning: sequential sign-ins/s",
        f"{seq_ft:.1f} vs {seq_moz:.1f} ({_ratio(seq_ft, seq_moz)})",
        f">= x{RATE_GOAL}",
        seq_ft >= RATE_GOAL * seq_moz,
    )
    conc_ft, conc_moz = m.conc[FT].rate, m.conc[MOZ].rate
    report.add(
        f"{setup}: returning: sign-ins/s, {clients} clients",
        f"{conc_ft:.1f} vs {conc_moz:.1f} ({_ratio(conc_ft, conc_moz)})",
    )
    q_ft, c_ft = m.seq[FT].median("queries"), m.seq[FT].median("commits")
    q_moz, c_moz = m.seq[MOZ].median("queries"), m.seq[MOZ].median("commits")
    report.add(
        f"{setup}: returning: queries / commits per callback",
        f"{q_ft:.0f} / {c_ft:.0f} vs {q_moz:.0f} / {c_moz:.0f} (transaction control apart: "
        f"{m.seq[FT].median('control'):.0f} vs {m.seq[MOZ].median('control'):.0f})",
        "<= anchor",
        q_ft <= q_moz and c_ft <= c_moz,
    )
    lq_ft, lc_ft = m.seq[FT].median("login_queries"), m.seq[FT].median("login_commits")
    lq_moz, lc_moz = m.seq[MOZ].median("login_queries"), m.seq[MOZ].median("login_commits")
    report.add(
        f"{setup}: returning: queries / commits per login start",
        f"{lq_ft:.0f} / {lc_ft:.0f} vs {lq_moz:.0f} / {lc_moz:.0f}",
    )

    # First sign-ins.
    first = m.first
    calls_ft, calls_moz = first[FT].calls_per_sign_in, first[MOZ].calls_per_sign_in
    report.add(
        f"{setup}: first: identity-server calls per sign-in",
        f"{calls_ft:.2f} vs {calls_moz:.2f} ({_ratio(calls_ft, calls_moz)})",
        f"<= {FIRST_CALLS}",
        calls_ft <= FIRST_CALLS,
    )
    cb_ft, cb_moz = first[FT].median("callback"), first[MOZ].median("callback")
    report.add(
        f"{setup}: first: callback median at {at}",
        f"{_ms(cb_ft)} vs {_ms(cb_moz)} ms ({_ratio(cb_ft, cb_moz)})",
        f"<= x{FIRST_CALLBACK_GOAL}",
        cb_ft <= FIRST_CALLBACK_GOAL * cb_moz,
    )
    cb_lifted = first[LIFTED].median("callback")
    report.add(
        f"{setup}: first: callback median at {at}, pacing lifted "
        f"(BENCH_SIGNIN_USERINFO_RATE={_userinfo_rate()})",
        f"{_ms(cb_lifted)} vs {_ms(cb_moz)} ms ({_ratio(cb_lifted, cb_moz)})",
    )
    report.add(
        f"{setup}: first: sequential sign-ins/s at {at}",
        f"{first[FT].rate:.1f} vs {first[MOZ].rate:.1f} "
        f"({_ratio(first[FT].rate, first[MOZ].rate)}; pacing lifted {first[LIFTED].rate:.1f})",
    )
    report.add(
        f"{setup}: first: queries / commits per callback",
        f"{first[FT].median('queries'):.0f} / {first[FT].median('commits'):.0f} vs "
        f"{first[MOZ].median('queries'):.0f} / {first[MOZ].median('commits'):.0f} "
        f"(transaction control apart: {first[FT].median('control'):.0f} vs "
        f"{first[MOZ].median('control'):.0f})",
    )

    # The burst.
    b_ft, b_moz = m.bursts[FT], m.bursts[MOZ]
    other_ft, other_moz = sum(b_ft.other_pages.values()), sum(b_moz.other_pages.values())
    report.add(
        f"{setup}: burst of {burst_size} at {at}: pages other than the signed-in redirect",
        f"{other_ft} vs {other_moz}",
        "0",
        other_ft == 0,
    )
    report.add(
        f"{setup}: burst of {burst_size}: codes exchanged and thrown away",
        f"{b_ft.thrown_away} vs {b_moz.thrown_away} "
        f"(tokens given {b_ft.exchanged} vs {b_moz.exchanged}, "
        f"userinfo answers {b_ft.userinfo} vs {b_moz.userinfo})",
        "0",
        b_ft.thrown_away == 0,
    )
    t_ft, t_moz = b_ft.times(), b_moz.times()
    report.add(
        f"{setup}: burst of {burst_size}: callback p50 / p95 / max",
        f"{' / '.join(f'{t * 1000:.0f}' for t in t_ft)} vs "
        f"{' / '.join(f'{t * 1000:.0f}' for t in t_moz)} ms",
    )
    for key, b in m.bursts.items():
        if b.other_pages or b.thrown_away:
            pages = "; ".join(f"{n} x {page}" for page, n in b.other_pages.most_common())
            report.notes.append(
                f"{setup}: {m.names[key]}: burst: {b.signed_in} of {len(b.results)} signed in, "
                f"{b.exchanged} codes exchanged; other pages: {pages or 'none'}"
            )

    # RSS per worker, and its split.
    rss = {key: statistics.mean(values) for key, values in m.rss.items()}
    report.add(
        f"{setup}: RSS per worker, demo vs anchor",
        f"{rss[FT]:.0f} vs {rss[MOZ]:.0f} MiB ({_ratio(rss[FT], rss[MOZ])})",
        f"<= x{RSS_GOAL:.2f}",
        rss[FT] <= RSS_GOAL * rss[MOZ],
    )
    report.add(
        f"{setup}: RSS per worker, ftauth alone (bench/ftauth_site) vs anchor",
        f"{rss[ALONE]:.0f} vs {rss[MOZ]:.0f} MiB ({_ratio(rss[ALONE], rss[MOZ])})",
        f"<= x{RSS_GOAL:.2f}",
        rss[ALONE] <= RSS_GOAL * rss[MOZ],
    )
    report.add(
        f"{setup}: RSS split: ftauth's share / the demo's own",
        f"{rss[ALONE] - rss[MOZ]:+.1f} / {rss[FT] - rss[ALONE]:+.1f} MiB "
        f"(alone - anchor / demo - alone)",
    )

    # Failures outside the burst.
    errors = {key: sum(len(t[key].errors) for t in m.phases() if key in t) for key in m.names}
    runs = {key: sum(len(t[key].results) for t in m.phases() if key in t) for key in m.names}
    report.add(
        f"{setup}: failed sign-ins (burst apart)",
        f"{errors[FT]} of {runs[FT]} vs {errors[MOZ]} of {runs[MOZ]} (ftauth alone "
        f"{errors[ALONE]} of {runs[ALONE]}, pacing lifted {errors[LIFTED]} of {runs[LIFTED]})",
        "0",
        errors[FT] == errors[ALONE] == errors[LIFTED] == 0,
    )
    for key, name in m.names.items():
        failures = Counter(r.error for t in m.phases() if key in t for r in t[key].errors)
        if failures:
            listed = "; ".join(f"{n} x {error}" for error, n in failures.most_common(3))
            report.notes.append(f"{setup}: {name}: failed sign-ins: {listed}")


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
                started = time.monotonic()
                run_setup(setup, idp_url, workdir, report)
                report.notes.append(f"{setup}: ran in {time.monotonic() - started:.0f} s")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report.notes.extend(
        [
            "figures: ftauth (the demo, default settings) vs mozilla-django-oidc "
            "(ratio ftauth / mozilla-django-oidc)",
            "first sign-ins come back to back: under ftauth's default pacing (4 userinfo "
            "calls/s per application, France Travail's documented quota) each waits for its "
            "userinfo turn, what a site gets when first sign-ins arrive faster than that; "
            "the 'pacing lifted' row is the same sign-ins without the wait",
            "gunicorn-sqlite runs the demo's default cache (per process): each worker paces "
            "its own calls there (ftauth.W040)",
            "RSS split: ftauth's share = ftauth alone (bench/ftauth_site) - anchor; the demo's "
            "own = demo - ftauth alone",
            "the refresh storm (issue 15 item 5) is bench.storm, run by make bench on its own",
        ]
    )
    return report
