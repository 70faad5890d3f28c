"""docs/install.md, followed literally in a new folder, gives a site one signs in to.

The page's tagged code blocks are the script (the tags are described at its top):
``sh run`` blocks run in the project folder after every ``sh env`` block before them,
``file=<path>`` blocks are appended to that file (or create it), ``sh serve`` starts the
site on a free port, and a headless Chromium with a French locale signs in against the
sandbox and out again. ``sh install`` is checked, not run: creating a fresh virtualenv and
installing ftauth's dependencies into it would take minutes and need the network, so the
project uses this test's own environment, where ftauth is installed from this checkout
(``pip install -e``); the test asserts that it is.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from . import conftest
from .conftest import CHROMIUM_ARGS, TIMEOUT_MS, require_browser

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "docs" / "install.md"
SCREENSHOTS = ROOT / "artifacts" / "first-hour"
BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```\s*$", re.M | re.S)


@dataclass(frozen=True)
class Block:
    language: str
    tags: tuple[str, ...]
    text: str

    @property
    def file(self) -> str | None:
        return next((t.split("=", 1)[1] for t in self.tags if t.startswith("file=")), None)


def blocks(markdown: str) -> list[Block]:
    return [
        Block(m[1], tuple(m[2].split()), m[3])
        for m in BLOCK.finditer(markdown)
        if m[2].strip()  # untagged blocks are illustrations
    ]


def test_install_page_tags_the_blocks_it_relies_on():
    """The extraction itself: a renamed tag would silently skip a step."""
    found = blocks(INSTALL.read_text())
    tags = {t for b in found for t in b.tags if not t.startswith("file=")}
    assert tags == {"install", "run", "env", "serve", "dev"}
    files = {b.file for b in found if b.file}
    assert {"mysite/settings.py", "mysite/urls.py", "templates/home.html"} <= files
    assert any("startproject" in b.text for b in found if "run" in b.tags)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def project_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FT_", "FTAUTH_", "DJANGO_", "DATABASE_URL", "CACHE_URL"))
    }
    # `python`, `django-admin` and `pip` are this environment's (see the module docstring).
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def bash(script: str, cwd: Path, env: dict[str, str]) -> None:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"{script}\n{result.stdout}\n{result.stderr}"


def follow(markdown: str, project: Path, port: int) -> subprocess.Popen:
    env = project_env()
    exports = ""
    server = None
    for block in blocks(markdown):
        if "install" in block.tags:
            import ftauth

            assert "pip install" in block.text
            # The checkout the docs point at is what this environment runs.
            assert Path(ftauth.__file__).resolve().is_relative_to(ROOT)
        elif "env" in block.tags:
            exports += block.text
        elif "run" in block.tags:
            bash(exports + block.text, project, env)
        elif block.file:
            path = project / block.file
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as f:
                f.write("\n" + block.text)
        elif "serve" in block.tags:
            command = block.text.strip()
            assert command == "python manage.py runserver"
            serve = f"{exports}\nexec {command} --noreload 127.0.0.1:{port}"
            server = subprocess.Popen(
                ["bash", "-euo", "pipefail", "-c", serve],
                cwd=project,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
    assert server is not None, "no `sh serve` block"
    return server


def wait_until_up(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(server.stderr.read().decode())
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError("the new project's server did not start")


def test_following_install_md_gives_a_site_one_signs_in_to(tmp_path):
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = follow(INSTALL.read_text(), tmp_path, port)
    try:
        wait_until_up(url + "/", server)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(conftest.CHROMIUM), args=CHROMIUM_ARGS
            )
            page = browser.new_context(locale="fr-FR").new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(url + "/")
            # A French browser gets the French button.
            button = page.get_by_role("link", name="Se connecter avec France Travail")
            expect(button).to_be_visible()
            page.screenshot(path=str(SCREENSHOTS / "docs-project-home.png"), full_page=True)
            button.click()
            page.get_by_role("button", name=re.compile("Camille Martin")).click()
            page.get_by_role("button", name="Accepter").click()
            page.wait_for_url(url + "/")
            expect(page.locator("#who")).to_have_text("Camille Martin")
            page.screenshot(path=str(SCREENSHOTS / "docs-project-signed-in.png"), full_page=True)
            page.get_by_role("button", name="Se déconnecter").click()
            page.wait_for_url(url + "/")
            expect(
                page.get_by_role("link", name="Se connecter avec France Travail")
            ).to_be_visible()
            browser.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        _out, err = server.communicate(timeout=10)
    log = err.decode(errors="replace")
    # The request log of the docs' project has its lines, without their secrets.
    assert "/ftauth/callback/individu/?" in log and "code=[redacted]" in log, log[-2000:]
    assert not re.search(r"[?&](code|state|id_token_hint)=(?!\[redacted\])", log), shlex.quote(
        log[-2000:]
    )
