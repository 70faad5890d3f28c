"""The Makefile's targets do what the README says, and no more."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def plan(target: str) -> str:
    """The commands ``make <target>`` would run (``make -n``: nothing is run)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    return subprocess.run(
        ["make", "-n", target], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
    ).stdout


def test_make_serve_starts_postgresql_and_redis_and_installs_nothing_else():
    """A server needs PostgreSQL and Redis only: no Chromium, no Node.js (issue 16)."""
    commands = plan("serve")
    assert "scripts/services.sh" in commands and "scripts/serve.sh" in commands
    assert "test-tools" not in commands and "npm" not in commands
    services = (ROOT / "scripts" / "services.sh").read_text()
    assert "apt-get" not in services


def test_make_test_installs_the_test_tools():
    commands = plan("test")
    assert "scripts/test-tools.sh" in commands and "scripts/services.sh" in commands
    assert "apt-get install" in (ROOT / "scripts" / "test-tools.sh").read_text()
