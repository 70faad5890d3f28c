"""API throughput under France Travail's quota, with several processes sharing Redis.

Starts the demo site with the embedded sandbox (``manage.py runserver
--noreload`` on a free port, a throw-away SQLite database), then four worker
processes, each its own Django, sharing only a Redis cache, search job offers
as fast as ftauth lets them for ``BENCH_API_DURATION`` seconds (default 12)
against the sandbox's 4 calls/s per-application quota.

Reported: throughput as a share of the quota (goal at least 95 %), 429 answers
that reached a caller as ``QuotaExceeded`` (goal 0), 429 answers on the wire
(counted in the server's request log), and token requests per 1000 calls. A
second phase makes 1000 calls with the quota lifted (a second server) to
measure token reuse over many calls.

Environment: ``CACHE_URL`` (a ``rediscache://`` URL; default
``rediscache://127.0.0.1:6379/14``), ``BENCH_API_DURATION``,
``BENCH_API_PROCESSES`` (default 4), ``BENCH_API_REUSE_CALLS`` (default 1000,
0 to skip the second phase).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from . import Report

TITLE = "API throughput against the sandbox quota (4 processes, shared Redis)"
ROOT = Path(__file__).resolve().parent.parent
SEARCH = "offresdemploi/v2/offres/search"
QUOTA = 4.0  # the sandbox's default, France Travail's for Offres d'emploi
# France Travail does not document its limiter: ftauth must fit each (ftauth.sandbox.quota).
ALGORITHMS = ("token_bucket", "sliding_window", "fixed_window")
TOKEN_LINE = re.compile(
    r'"POST /sandbox/entreprise/connexion/oauth2/access_token\S* HTTP/1\.1" (\d{3})'
)
SEARCH_LINE = re.compile(r'"GET /sandbox/api/partenaire/offresdemploi/\S* HTTP/1\.1" (\d{3})')


def _redis_url() -> str:
    url = os.environ.get("CACHE_URL", "")
    return url if url.startswith("rediscache://") else "rediscache://127.0.0.1:6379/14"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class DemoServer:
    url: str
    log: Path

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()


def _base_env(workdir: Path, server_url: str, settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FT_", "FTAUTH_", "DJANGO_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": settings,
            "FTAUTH_SANDBOX": "true",
            "FT_SANDBOX_URL": server_url,
            "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
            "CACHE_URL": "locmemcache://bench",
            "DEBUG": "true",
            "SECRET_KEY": secrets.token_urlsafe(32),
            "FTAUTH_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


@contextlib.contextmanager
def demo_server(
    workdir: Path, settings: str, extra_env: dict[str, str]
) -> Iterator[tuple[DemoServer, dict[str, str]]]:
    """``manage.py runserver`` on a free port; stopped (by its own pid) on exit."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**_base_env(workdir, url, settings), **extra_env}
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run(
        [*manage, "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True, timeout=300
    )
    log = workdir / f"server-{port}.log"
    with log.open("w") as log_file:
        server = subprocess.Popen(
            [*manage, "runserver", "--noreload", f"127.0.0.1:{port}"],
            env=env,
            cwd=ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                if server.poll() is not None:
                    raise RuntimeError(f"the demo server stopped: {log.read_text()[-2000:]}")
                with contextlib.suppress(requests.RequestException):
                    if requests.get(f"{url}/sandbox/", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("the demo server did not start within 60 s")
                time.sleep(0.2)
            yield DemoServer(url, log), env
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


def _worker(
    env: dict[str, str],
    key_prefix: str,
    rate: float | None,
    calls: int | None,
    duration: float,
    barrier: Any,
    results: Any,
) -> None:
    """One web process: its own Django, the shared Redis cache, ftauth's API client."""
    os.environ.update(env)
    import django
    from django.conf import settings
    from django.test.utils import override_settings

    django.setup()
    settings.CACHES["default"]["KEY_PREFIX"] = key_prefix
    # Every process of this one host may wait for its turn: what is measured is the
    # shared schedule's throughput, not the waiting room (bench.storm measures that).
    ftauth = {**settings.FTAUTH, "API_MAX_WAITING": 64}
    if rate is not None:
        ftauth["API_RATE_LIMITS"] = {"offresdemploi": rate}
    # override_settings, not an assignment: ftauth read its settings at start-up.
    override_settings(FTAUTH=ftauth).enable()
    from ftauth import api
    from ftauth.core.errors import FTAuthError, QuotaExceeded

    done: list[float] = []
    quota_exceeded = 0
    errors: list[str] = []
    barrier.wait(timeout=120)
    started = time.time()
    end = started + duration
    while (calls is None and time.time() < end) or (calls is not None and len(done) < calls):
        try:
            api.application().get(SEARCH, params={"range": "0-1"})
            done.append(time.time())
        except QuotaExceeded:
            quota_exceeded += 1
        except FTAuthError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            if len(errors) > 20:
                break
    results.put(
        {"started": started, "done": done, "quota_exceeded": quota_exceeded, "errors": errors}
    )


def _run_workers(
    env: dict[str, str],
    processes: int,
    *,
    duration: float = 0.0,
    calls: int | None = None,
    rate: float | None = None,
) -> tuple[list[dict], str]:
    redis_env = {**env, "CACHE_URL": _redis_url()}
    prefix = f"ftauth-bench-{uuid.uuid4().hex}"
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    results = context.Queue()
    workers = [
        context.Process(
            target=_worker,
            args=(redis_env, prefix, rate, calls, duration, barrier, results),
            daemon=True,
        )
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    outcomes = []
    try:
        for _ in workers:
            outcomes.append(results.get(timeout=duration + 300))
    except queue.Empty:
        pass
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
    _forget_keys(prefix)
    return outcomes, prefix


def _forget_keys(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(_redis_url().replace("rediscache://", "redis://", 1))
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()


def _redis_missing() -> str:
    try:
        import redis
    except ImportError:
        return "the redis package is not installed (pip install -e '.[bench]')"
    url = _redis_url().replace("rediscache://", "redis://", 1)
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        return f"Redis is not reachable at {url} ({type(exc).__name__}): run `make services`"
    return ""


def _statuses(lines: list[str], pattern: re.Pattern[str]) -> list[int]:
    return [int(m.group(1)) for line in lines if (m := pattern.search(line))]


def run() -> Report:
    report = Report(TITLE)
    missing = _redis_missing()
    if missing:
        report.error = missing
        return report
    duration = float(os.environ.get("BENCH_API_DURATION", "12"))
    processes = int(os.environ.get("BENCH_API_PROCESSES", "4"))
    reuse_calls = int(os.environ.get("BENCH_API_REUSE_CALLS", "1000"))
    workdir = Path(tempfile.mkdtemp(prefix="ftauth-bench-"))
    try:
        for algorithm in ALGORITHMS:
            extra = {"BENCH_SANDBOX_ALGORITHM": algorithm}
            with demo_server(workdir, "bench.sandbox_settings", extra) as (server, env):
                outcomes, _ = _run_workers(env, processes, duration=duration)
                lines = server.log_lines()
            _quota_phase(report, outcomes, lines, processes, duration, algorithm)
        if reuse_calls:
            extra = {"BENCH_SANDBOX_QUOTA": "100000"}
            with demo_server(workdir, "bench.sandbox_settings", extra) as (server, env):
                per_process = -(-reuse_calls // processes)
                outcomes, _ = _run_workers(env, processes, calls=per_process, rate=0)
                lines = server.log_lines()
            _reuse_phase(report, outcomes, lines)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report.notes.append(
        f"command: make bench (python -m bench api_throughput); {processes} processes, "
        f"{duration:g} s, Redis {_redis_url()}"
    )
    return report


def _quota_phase(
    report: Report,
    outcomes: list[dict],
    lines: list[str],
    processes: int,
    duration: float,
    algorithm: str,
) -> None:
    if len(outcomes) != processes:
        report.error = f"only {len(outcomes)} of {processes} worker processes reported"
        return
    start = min(o["started"] for o in outcomes)
    end = start + duration
    done = sorted(t for o in outcomes for t in o["done"])
    in_window = [t for t in done if t <= end]
    # Steady state, from the first answer to the last: the first call also waits for the
    # application token and a first connection, which is not pacing.
    steady = (len(done) - 1) / (done[-1] - done[0]) if len(done) > 1 else 0.0
    throughput = steady
    share = throughput / QUOTA
    callers_429 = sum(o["quota_exceeded"] for o in outcomes)
    errors = [e for o in outcomes for e in o["errors"]]
    wire = _statuses(lines, SEARCH_LINE)
    tokens = _statuses(lines, TOKEN_LINE)
    report.add(f"{algorithm}: calls", f"{len(done)} ({len(in_window)} within {duration:g} s)")
    report.add(
        f"{algorithm}: throughput",
        f"{throughput:.2f}/s = {share:.1%} of {QUOTA:g}/s "
        f"(with start-up: {len(in_window) / duration:.2f}/s)",
        ">= 95 %",
        share >= 0.95,
    )
    report.add(f"{algorithm}: 429 seen by callers", str(callers_429), "0", callers_429 == 0)
    report.add(f"{algorithm}: 429 on the wire", f"{wire.count(429)} of {len(wire)} answers")
    report.add(f"{algorithm}: other errors", str(len(errors)), "0", not errors)
    per_thousand = 1000 * len(tokens) / max(1, len(done))
    report.add(
        f"{algorithm}: token requests",
        f"{len(tokens)} for {len(done)} calls ({per_thousand:.1f}/1000)",
    )
    if errors:
        report.notes.append(f"first error: {errors[0]}")


def _reuse_phase(report: Report, outcomes: list[dict], lines: list[str]) -> None:
    done = sum(len(o["done"]) for o in outcomes)
    tokens = _statuses(lines, TOKEN_LINE)
    per_thousand = 1000 * len(tokens) / max(1, done)
    report.add(
        "token requests per 1000 calls",
        f"{per_thousand:.2f} ({len(tokens)} for {done} calls, quota lifted)",
        "<= 1",
        per_thousand <= 1 and done > 0,
    )
