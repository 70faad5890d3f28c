"""Real server processes for the tests that need several: ``runserver`` and gunicorn.

Each server runs the demo site from this checkout with the environment it is
given (DESIGN.md's outside contract), logs to a file the test can read (the
identity server's request log is how a test counts calls to it), and is
stopped by its own process id.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def demo_env(**env: str) -> dict[str, str]:
    """This process's environment without ftauth's variables, plus ``env``."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FT_", "FTAUTH_", "DJANGO_", "DATABASE_URL", "CACHE_URL"))
    }
    return {**base, "DJANGO_SETTINGS_MODULE": "demo_site.settings", "PYTHONPATH": str(ROOT), **env}


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, timeout=300)


class Server:
    """A demo-site server on ``127.0.0.1:port``; ``url`` may name another loopback host."""

    def __init__(self, command: list[str], env: dict[str, str], port: int, log: Path, url: str):
        self.port = port
        self.url = url
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"server on port {port} stopped:\n{self.log_text()[-3000:]}")
            try:
                requests.get(f"http://127.0.0.1:{port}/", timeout=5)
                return
            except requests.RequestException:
                pass  # not listening yet, or a worker still booting
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"server on port {port} did not start within 60 s")
            time.sleep(0.2)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def requests_to(self, path_part: str) -> int:
        """How many requests the log shows whose line contains ``path_part``."""
        return sum(1 for line in self.log_text().splitlines() if path_part in line)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def runserver(
    env: dict[str, str], log: Path, *, host: str = "127.0.0.1", port: int | None = None
) -> Server:
    port = port or free_port()
    command = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    return Server(command, env, port, log, f"http://{host}:{port}")


def gunicorn(env: dict[str, str], log: Path, *, workers: int = 2) -> Server:
    """The demo under gunicorn, ``workers`` sync workers, an access log line per request."""
    executable = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    if executable is None:
        raise AssertionError("gunicorn is not installed: pip install -e '.[test]'")
    port = free_port()
    command = [
        executable,
        "demo_site.wsgi:application",
        f"--bind=127.0.0.1:{port}",
        f"--workers={workers}",
        "--access-logfile=-",
        "--graceful-timeout=5",
    ]
    return Server(command, env, port, log, f"http://127.0.0.1:{port}")
