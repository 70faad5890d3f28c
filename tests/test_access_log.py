"""gunicorn's access log carries no sign-in secret (issue 14, item 6).

``make serve`` (scripts/serve.sh) and docs/deployment.md run gunicorn with
``--logger-class ftauth.gunicorn.Logger``. The first test runs scripts/serve.sh
itself, as ``make serve`` does, and reads the access log it wrote; the others pin
what the logger redacts and what it leaves.
"""

from __future__ import annotations

import datetime
import logging
import sys
from types import SimpleNamespace

import pytest
import requests
from gunicorn.config import Config

from ftauth.gunicorn import Logger
from tests.servers import Server, demo_env, free_port

CODE = "c0de-f4c9a1d2e3b4"
STATE = "st4te-9b8a7c6d5e4f"
NONCE = "n0nce-1a2b3c4d5e6f"
# An ID token's shape (the end-session URL carries a whole one, claims included).
ID_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjYW1pbGxlIiwiZW1haWwiOiJjQGV4LmZyIn0.c2lnbmF0dXJl"


@pytest.mark.timeout(180)
def test_make_serve_logs_each_request_without_its_secrets(tmp_path):
    port = free_port()
    env = demo_env(
        PYTHON=sys.executable,
        SERVE_ADDR=f"127.0.0.1:{port}",
        SERVE_WORKERS="1",
        DATABASE_URL=f"sqlite:///{tmp_path / 'serve.sqlite3'}",
        CACHE_URL="locmemcache://serve",
        STATIC_ROOT=str(tmp_path / "static"),
    )
    server = Server(["bash", "scripts/serve.sh"], env, port, tmp_path / "serve.log", "")
    base = f"http://127.0.0.1:{port}"
    try:
        authorize = (
            f"{base}/sandbox/authentification-candidat/connexion/oauth2/authorize"
            f"?realm=%2Findividu&response_type=code&client_id=ftauth-demo"
            f"&state={STATE}&nonce={NONCE}"
        )
        callback = requests.get(
            f"{base}/ftauth/callback/individu/",
            params={"code": CODE, "state": STATE, "client_id": "ftauth-demo"},
            headers={"Referer": authorize},
            allow_redirects=False,
            timeout=10,
        )
        assert callback.status_code == 400  # no such sign-in: the request is still logged
        end_session = requests.get(
            f"{base}/sandbox/authentification-candidat/compte/deconnexion",
            params={"id_token_hint": ID_TOKEN, "redirect_uri": f"{base}/"},
            allow_redirects=False,
            timeout=10,
        )
        assert end_session.status_code < 500
        css = requests.get(f"{base}/static/ftauth/ftauth.css", timeout=10)
        assert css.status_code == 200 and "text/css" in css.headers["Content-Type"]
        assert ".ftauth-button" in css.text
    finally:
        server.stop()  # gunicorn has written every line when it exits
    log = server.log_text()
    for secret in (CODE, STATE, NONCE, ID_TOKEN, ID_TOKEN.split(".")[1]):
        assert secret not in log, log[-3000:]
    [line] = [line for line in log.splitlines() if '"GET /ftauth/callback/' in line]
    assert "GET /ftauth/callback/individu/?code=[redacted]&state=[redacted]&client_id=" in line
    assert '" 400 ' in line  # the status, and the Referer beside it, redacted
    assert "/connexion/oauth2/authorize?realm=[redacted]" in line and "nonce=[redacted]" in line
    assert "/compte/deconnexion?id_token_hint=[redacted]&redirect_uri=[redacted]" in log
    assert 'GET /static/ftauth/ftauth.css HTTP/1.1" 200' in log


def access_line(environ: dict) -> str:
    """The line gunicorn's default access-log format gives for this request."""
    cfg = Config()
    logger = Logger(cfg)
    environ = {"REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "HTTP/1.1", **environ}
    environ.setdefault("PATH_INFO", environ["RAW_URI"].partition("?")[0])
    environ.setdefault("QUERY_STRING", environ["RAW_URI"].partition("?")[2])
    headers = [("REFERER", environ["HTTP_REFERER"])] if "HTTP_REFERER" in environ else []
    resp = SimpleNamespace(status="200 OK", sent=0, headers=[])
    atoms = logger.atoms(resp, SimpleNamespace(headers=headers), environ, datetime.timedelta(0))
    return cfg.access_log_format % logger.atoms_wrapper_class(atoms)


def test_every_value_of_an_ftauth_query_is_redacted_the_names_kept():
    """Not only the parameters known to be secret: an error_description may echo the code."""
    line = access_line(
        {"RAW_URI": "/ftauth/callback/individu/?error=x&error_description=bad%20c0de%3D42"}
    )
    assert "/ftauth/callback/individu/?error=[redacted]&error_description=[redacted] " in line
    assert "c0de" not in line


def test_another_pages_query_is_kept_but_its_known_secrets(settings):
    line = access_line({"RAW_URI": "/offres/?motsCles=cuisinier&code=c0de42"})
    assert "/offres/?motsCles=cuisinier&code=[redacted]" in line


def test_ftauth_mounted_elsewhere_is_still_recognised(settings):
    settings.ROOT_URLCONF = "tests.elsewhere_urls"
    referer = "http://site.example/auth/link/confirm/?secret=1"
    line = access_line({"RAW_URI": "/auth/callback/individu/?secret=1", "HTTP_REFERER": referer})
    assert "/auth/callback/individu/?secret=[redacted]" in line
    assert '"http://site.example/auth/link/confirm/?secret=[redacted]"' in line


def test_a_referer_under_a_script_name_is_recognised():
    line = access_line(
        {
            "RAW_URI": "/mysite/",
            "PATH_INFO": "/",
            "SCRIPT_NAME": "/mysite",
            "HTTP_REFERER": "https://site.example/mysite/ftauth/login/individu/?next=/secret/",
        }
    )
    assert "/mysite/ftauth/login/individu/?next=[redacted]" in line


def test_the_error_log_is_redacted_too(caplog):
    logger = Logger(Config())
    logger.error_log.propagate = True  # so that caplog sees it
    with caplog.at_level(logging.ERROR, logger="gunicorn.error"):
        logger.error("Error handling request %s", f"/ftauth/callback/individu/?code={CODE}")
    assert "code=[redacted]" in caplog.text and CODE not in caplog.text
