"""Token keys and stored tokens: a fault no server starts with, or that every check names.

Also the middleware order check, part of the same lifecycle.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from ftauth.apps import refuse_to_start_without_token_keys
from ftauth.checks import check_middleware_order, check_stored_tokens, check_token_keys
from tests.lifecycle import make_account, store_tokens

ROOT = Path(__file__).resolve().parent.parent


def with_keys(settings, keys):
    settings.FTAUTH = {**settings.FTAUTH, "TOKEN_KEYS": keys}


def test_configured_keys_pass():
    assert check_token_keys() == []
    refuse_to_start_without_token_keys()  # nothing raised


def test_missing_keys_are_an_error(settings):
    with_keys(settings, [])
    [error] = check_token_keys()
    assert error.id == "ftauth.E020" and error.level == checks.ERROR
    assert "Fernet.generate_key" in error.hint


def test_malformed_key_is_an_error_that_does_not_show_it(settings):
    bad = "this-is-not-a-fernet-key-at-all"
    with_keys(settings, [Fernet.generate_key().decode(), bad])
    [error] = check_token_keys()
    assert error.id == "ftauth.E021"
    assert "[1]" in error.msg and bad not in error.msg and bad not in error.hint


@pytest.mark.parametrize(("keys", "check_id"), [([], "E020"), (["not-a-key"], "E021")])
def test_the_app_refuses_to_start_without_usable_keys(settings, keys, check_id):
    with_keys(settings, keys)
    with pytest.raises(ImproperlyConfigured, match=rf"ftauth\.{check_id}") as excinfo:
        refuse_to_start_without_token_keys()
    assert "TOKEN_KEYS" in str(excinfo.value) and "not-a-key" not in str(excinfo.value)


def load_wsgi_app(**env: str) -> subprocess.CompletedProcess:
    """What gunicorn does first: import the demo's WSGI application."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FT_", "FTAUTH_"))}
    return subprocess.run(
        [sys.executable, "-c", "import demo_site.wsgi"],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "demo_site.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_server_with_a_malformed_key_does_not_start():
    """Under gunicorn a malformed key used to give every user a 503 "momentanément
    indisponible"; now the application does not load, and says why."""
    secret_looking = "Zm9vYmFyLW5vdC1hLWtleQ"
    failed = load_wsgi_app(FTAUTH_TOKEN_KEYS=secret_looking)
    assert failed.returncode != 0
    last_line = failed.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured: ")
    assert "FTAUTH['TOKEN_KEYS'][0] is not a Fernet key" in last_line and "ftauth.E021" in last_line
    assert secret_looking not in failed.stderr
    assert load_wsgi_app(FTAUTH_TOKEN_KEYS=Fernet.generate_key().decode()).returncode == 0


@pytest.mark.django_db
def test_tokens_unreadable_with_the_keys_are_an_error(settings):
    store_tokens(make_account())
    assert check_stored_tokens() == []
    with_keys(settings, [Fernet.generate_key().decode()])
    [error] = check_stored_tokens()
    assert error.id == "ftauth.E022" and error.level == checks.ERROR
    assert "1 of the 1 most recent grants" in error.msg
    assert "ftauth_rotate_keys" in error.hint and "--forget-unreadable" in error.hint


@pytest.mark.django_db
def test_a_plain_check_reports_unreadable_tokens(settings):
    """Not only ``check --database default``: the check every deployment runs."""
    store_tokens(make_account())
    call_command("check", stdout=io.StringIO())  # readable: nothing to say
    with_keys(settings, [Fernet.generate_key().decode()])
    with pytest.raises(SystemCheckError, match=r"ftauth\.E022"):
        call_command("check", stdout=io.StringIO())


def manage_check(database_url: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FT_", "FTAUTH_"))}
    env.update(DJANGO_SETTINGS_MODULE="demo_site.settings", DATABASE_URL=database_url)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_database_not_migrated_or_unreachable_is_no_check_error(tmp_path):
    """The stored-tokens check reads the database, so it must never be the one that
    fails where there is none yet (a build step, a first ``check`` before ``migrate``)."""
    fresh = manage_check(f"sqlite:///{tmp_path / 'new.sqlite3'}")
    assert fresh.returncode == 0, fresh.stderr
    # Nothing listens on port 9: the connection is refused at once.
    unreachable = manage_check("postgres://nobody@127.0.0.1:9/none")
    assert unreachable.returncode == 0, unreachable.stderr
    assert "E022" not in fresh.stderr + unreachable.stderr


def test_middleware_before_authentication_is_a_warning(settings):
    settings.MIDDLEWARE = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "ftauth.middleware.ConsentMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ]
    [warning] = check_middleware_order()
    assert warning.id == "ftauth.W023"


def test_middleware_order_of_the_test_settings_passes():
    assert check_middleware_order() == []
