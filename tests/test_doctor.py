"""``manage.py ftauth_doctor`` against the sandbox, and against a broken set-up."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db(transaction=True)


def doctor(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("ftauth_doctor", *args, stdout=out, no_color=True)
        status = 0
    except SystemExit as exc:
        status = int(exc.code or 0)
    return status, out.getvalue()


def lines(report: str, level: str) -> list[str]:
    return [line for line in report.splitlines() if line.startswith(level)]


def test_a_working_set_up_against_the_sandbox_is_all_ok(sandbox, settings):
    settings.FTAUTH = {**settings.FTAUTH, "APPLICATION_SCOPES": ["api_offresdemploiv2"]}
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "ftauth_doctor_cache",
        }
    }
    call_command("createcachetable", verbosity=0)
    status, report = doctor("--site", sandbox)
    assert status == 0, report
    assert not lines(report, "error") and not lines(report, "warning"), report
    for realm in ("individu", "employeur", "partenaire"):
        for check in ("discovery", "issuer", "JWKS"):
            assert any(f"realm {realm} {check}" in line for line in lines(report, "ok")), report
        assert f"{sandbox}/ftauth/callback/{realm}/" in report
    assert "application token" in report and "obtained for api_offresdemploiv2" in report
    assert "clock" in report and "ftauth tables present" in report
    assert settings.FTAUTH["CLIENT_SECRET"] not in report


def test_a_broken_set_up_is_reported_with_fixes_and_a_failing_status(sandbox, settings):
    conf = {**settings.FTAUTH}
    conf["REALMS"] = {
        # Nothing listens on port 9.
        "individu": {"server": "http://127.0.0.1:9/sandbox/authentification-candidat"},
        "employeur": {"server": f"{sandbox}/sandbox/entreprise", "issuer": "https://wrong.example"},
        "partenaire": {"server": f"{sandbox}/sandbox/entreprise"},
    }
    conf["CLIENT_SECRET"] = "not-the-secret"
    # The identity server knows this client by another secret.
    settings.FTAUTH_SANDBOX = {
        "CLIENTS": [
            {
                "client_id": conf["CLIENT_ID"],
                "client_secret": "the-registered-secret",
                "redirect_uris": [f"{sandbox}/ftauth/callback/individu/"],
            }
        ]
    }
    conf["APPLICATION_SCOPES"] = ["api_offresdemploiv2"]
    settings.FTAUTH = conf
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    settings.ALLOWED_HOSTS = ["emploi.example.fr", "localhost"]
    status, report = doctor("--site", "http://emploi.example.fr")
    assert status == 1, report
    errors = "\n".join(lines(report, "error"))
    assert "realm individu discovery" in errors and "unreachable" in errors
    assert "realm employeur issuer" in errors
    assert "application token" in errors and "invalid_client" in errors, report
    assert "callback individu" in errors and "not HTTPS" in errors
    assert "cache" in errors and "keeps nothing" in errors
    assert report.count("fix:") >= len(lines(report, "error"))
    assert "not-the-secret" not in report


def test_site_is_required_in_production(settings):
    from django.core.management.base import CommandError

    settings.DEBUG = False
    with pytest.raises(CommandError, match="--site"):
        call_command("ftauth_doctor", stdout=io.StringIO())


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_before_the_sandbox_is_up_it_says_start_it(settings):
    """The doctor run before ``runserver``, with the sandbox on the site itself (the
    demo's default): the sandbox is not running; no firewall, no registration to blame."""
    site = f"http://127.0.0.1:{closed_port()}"
    settings.FTAUTH = {
        **{k: v for k, v in settings.FTAUTH.items() if k not in ("REALMS", "API_URL")},
        "REALMS": {"individu": {}, "employeur": {}},
        "APPLICATION_SCOPES": ["api_offresdemploiv2"],
    }
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    status, report = doctor("--site", site)
    assert status == 1, report
    errors = "\n".join(lines(report, "error"))
    for check in ("realm individu discovery", "realm employeur discovery", "application token"):
        assert f"{check}" in errors and f"the sandbox is not running at {site}" in errors, report
    assert "fix: Start the site that serves the sandbox" in report
    assert "firewall" not in report and "francetravail.io" not in report, report
    assert f"{site}/ftauth/callback/individu/ (the sandbox stands in" in report


def test_against_france_travail_an_unreachable_server_points_at_the_network(settings):
    settings.FTAUTH = {
        **settings.FTAUTH,
        "SANDBOX": False,
        "REALMS": {"individu": {"server": f"http://127.0.0.1:{closed_port()}"}},
    }
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    _status, report = doctor("--site", "http://127.0.0.1:8000")
    assert "firewall, proxy, DNS" in report and "sandbox" not in report
    assert "must be registered as a redirect URI on francetravail.io" in report
