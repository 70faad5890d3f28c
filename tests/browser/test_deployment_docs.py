"""docs/deployment.md, followed from the wheel in a new virtual environment, gives a server
one signs in to, its static files served.

The wheel is built as ``make dist`` builds it (``python -m build``, then ``twine check
--strict``) into a temporary folder. A new virtual environment, made with the base
interpreter of this one and without its site packages, installs it by the page's ``sh
install`` block (the wheel's path put in). In a new folder, the project follows
docs/install.md without its development-only blocks (``dev``: the sandbox, runserver), then
deployment.md: its ``file=`` blocks (production settings, static files, logging), its ``sh
run`` blocks (migrate, collectstatic, check) and its ``sh serve`` block, gunicorn, on a free
port with ``DEBUG`` off. Headless Chromium signs in and out through the sandbox, served by
the demo of this checkout in another process (France Travail's stand-in: the project's
realm points at it, the only line the test adds), and the stylesheets must answer 200 and
apply. gunicorn's access log must hold the callback's line without its secrets.

The production environment's values are stand-ins: SQLite and a file cache rather than
PostgreSQL and Redis (the page's settings read them from ``DATABASE_URL`` and
``CACHE_URL``), ``ALLOWED_HOSTS=127.0.0.1``. pip reaches the package index as it does for
``make``; its cache makes a second run fast.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.servers import demo_env, manage, runserver

from . import conftest
from .conftest import CHROMIUM_ARGS, TIMEOUT_MS, require_browser
from .test_install_docs import INSTALL, ROOT, bash, blocks, free_port

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

DEPLOYMENT = ROOT / "docs" / "deployment.md"
SCREENSHOTS = ROOT / "artifacts" / "first-hour"
# Where the page says the clone's wheel is, and where the page's server listens.
DOCS_DIST = "/path/to/ftauth/dist/"
DOCS_ADDR = "127.0.0.1:8000"


def test_deployment_page_tags_the_blocks_it_relies_on():
    """The extraction itself: a renamed tag would silently skip a step."""
    found = blocks(DEPLOYMENT.read_text())
    assert {t for b in found for t in b.tags if not t.startswith("file=")} == {
        "install",
        "run",
        "serve",
    }
    assert {b.file for b in found if b.file} == {"mysite/settings.py"}
    [install] = [b for b in found if "install" in b.tags]
    assert DOCS_DIST in install.text and ".whl[serve]" in install.text
    [serve] = [b for b in found if "serve" in b.tags]
    assert DOCS_ADDR in serve.text and "--logger-class ftauth.gunicorn.Logger" in serve.text
    assert any("collectstatic" in b.text for b in found if "run" in b.tags)


def run(command: list[str], **kwargs) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, **kwargs)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def build_dist(out: Path) -> Path:
    """The wheel, built and checked as ``make dist`` does."""
    run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)])
    run([sys.executable, "-m", "twine", "check", "--strict", *map(str, out.iterdir())])
    [wheel] = out.glob("*.whl")
    return wheel


def wait_until_serving(url: str, server: subprocess.Popen, log: Path) -> None:
    """Until gunicorn answers 200: its workers load the project before they accept."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(log.read_text(errors="replace")[-3000:])
        try:
            if requests.get(url, timeout=10).status_code == 200:
                return
        except requests.RequestException:
            pass  # not listening yet
        time.sleep(0.2)
    raise AssertionError(f"gunicorn did not serve {url}:\n{log.read_text()[-3000:]}")


def append(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write("\n" + text)


def new_virtualenv(path: Path) -> dict[str, str]:
    """A virtual environment of its own; the environment its commands run in."""
    base = getattr(sys, "_base_executable", sys.executable)
    run([base, "-m", "venv", str(path)])
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FT_", "FTAUTH_", "DJANGO_", "DATABASE_URL", "CACHE_URL"))
        and k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    }
    env["PATH"] = f"{path / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(path)
    return env


def test_following_deployment_md_from_the_wheel_gives_a_server_one_signs_in_to(tmp_path):
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    wheel = build_dist(tmp_path / "dist")
    env = new_virtualenv(tmp_path / "venv")
    project = tmp_path / "project"
    project.mkdir()
    deployment = blocks(DEPLOYMENT.read_text())

    # Install: the page's line, with the wheel just built.
    [install] = [b for b in deployment if "install" in b.tags]
    assert f"{DOCS_DIST}{wheel.name}[serve]" in install.text, "the page names another wheel"
    bash(install.text.replace(DOCS_DIST, f"{wheel.parent}/"), project, env)
    where = run(["python", "-c", "import ftauth; print(ftauth.__file__)"], cwd=project, env=env)
    assert Path(where.strip()).is_relative_to(tmp_path / "venv"), "ftauth from the wheel"

    # install.md, as a production site takes it: no sandbox, no runserver.
    exports = ""
    for block in blocks(INSTALL.read_text()):
        if {"dev", "install", "serve"} & set(block.tags):
            continue
        if "env" in block.tags:
            exports += block.text
        elif "run" in block.tags:
            bash(exports + block.text, project, env)
        elif block.file:
            append(project / block.file, block.text)

    # France Travail's stand-in: the sandbox of the demo, registering the page's client.
    client = run(
        ["bash", "-c", exports + '\nprintf "%s\\n%s" "$FT_CLIENT_ID" "$FT_CLIENT_SECRET"'],
        cwd=project,
        env=env,
    ).split("\n")
    idp_port = free_port()
    idp_env = demo_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'idp.sqlite3'}",
        CACHE_URL="locmemcache://idp",
        FTAUTH_SANDBOX="true",
        DEBUG="true",
        FT_SANDBOX_URL=f"http://localhost:{idp_port}",
        FT_CLIENT_ID=client[0],
        FT_CLIENT_SECRET=client[1],
        FTAUTH_LOG_LEVEL="WARNING",
    )
    manage(idp_env, "migrate", "--noinput", "-v", "0")
    idp = runserver(idp_env, tmp_path / "idp.log", host="localhost", port=idp_port)
    sandbox = f"{idp.url}/sandbox"
    append(
        project / "mysite" / "settings.py",
        "# The test's only lines: France Travail is the sandbox of another server.\n"
        f'FTAUTH["REALMS"]["individu"]["server"] = "{sandbox}/authentification-candidat"\n'
        f'FTAUTH["API_URL"] = "{sandbox}/api"\n',
    )

    # deployment.md, in the production environment's stand-ins.
    exports += (
        f"\nexport SECRET_KEY={secrets.token_urlsafe(40)} ALLOWED_HOSTS=127.0.0.1"
        f" DATABASE_URL=sqlite:///{tmp_path / 'site.sqlite3'}"
        f" CACHE_URL=filecache://{tmp_path / 'cache'}\n"
    )
    port = free_port()
    server = None
    log = tmp_path / "gunicorn.log"
    try:
        for block in deployment:
            if block.file:
                append(project / block.file, block.text)
            elif "run" in block.tags:
                bash(exports + block.text, project, env)
            elif "serve" in block.tags:
                command = block.text.strip().replace(DOCS_ADDR, f"127.0.0.1:{port}")
                with log.open("wb") as out:
                    server = subprocess.Popen(
                        ["bash", "-euo", "pipefail", "-c", f"{exports}\nexec {command}"],
                        cwd=project,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
        assert server is not None, "no `sh serve` block"
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(url + "/", server, log)

        statics: list[tuple[str, int]] = []
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(conftest.CHROMIUM), args=CHROMIUM_ARGS
            )
            page = browser.new_context(locale="fr-FR").new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.on(
                "response",
                lambda r: statics.append((r.url, r.status)) if "/static/" in r.url else None,
            )
            page.goto(url + "/")
            button = page.get_by_role("link", name="Se connecter avec France Travail")
            expect(button).to_be_visible()
            # collectstatic's hashed name, served by WhiteNoise, and its rules applied.
            link = page.locator('link[rel="stylesheet"][href*="/static/ftauth/"]').first
            href = link.get_attribute("href")
            assert re.fullmatch(r"/static/ftauth/ftauth\.[0-9a-f]{12}\.css", href), href
            css = requests.get(url + href, timeout=10)
            assert css.status_code == 200 and "text/css" in css.headers["Content-Type"]
            assert page.evaluate(
                "() => [...document.styleSheets].some("
                "s => s.href && s.href.includes('/static/ftauth/') && s.cssRules.length > 0)"
            )
            page.screenshot(path=str(SCREENSHOTS / "deployed-home.png"), full_page=True)
            button.click()
            page.get_by_role("button", name=re.compile("Camille Martin")).click()
            page.get_by_role("button", name="Accepter").click()
            page.wait_for_url(url + "/")
            expect(page.locator("#who")).to_have_text("Camille Martin")
            page.screenshot(path=str(SCREENSHOTS / "deployed-signed-in.png"), full_page=True)
            page.get_by_role("button", name="Se déconnecter").click()
            page.wait_for_url(url + "/")
            expect(button).to_be_visible()
            browser.close()
        assert statics and {s for _u, s in statics} == {200}, statics
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=15)
        idp.stop()
    # gunicorn's access log, through the page's logger class: the lines, not their secrets.
    text = log.read_text(errors="replace")
    assert '"GET /ftauth/callback/individu/?code=[redacted]&state=[redacted]' in text, text[-3000:]
    assert not re.search(r"[?&](code|state|nonce|id_token_hint)=(?!\[redacted\])", text), text
