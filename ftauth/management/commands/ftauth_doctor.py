"""``manage.py ftauth_doctor``: is this deployment able to sign people in?

Goes further than ``manage.py check``: it talks to France Travail (discovery,
JWKS, an application token), compares clocks, and looks at the cache and the
database. One line per check, ``ok``, ``warning`` or ``error``, each problem
with its fix; the exit status is 1 when there is an error, so a deployment
pipeline can stop on it. Nothing secret is printed: no secret, no token.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks as django_checks
from django.core.cache import caches
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connections
from django.urls import NoReverseMatch, reverse

from ...conf import FTAuthSettings, get_settings, is_site_relative, serving_origin
from ...core import tokens
from ...core.discovery import _parse_discovery
from ...core.errors import ConfigurationError, FTAuthError, TransportError
from ...core.http import HttpClient, check_secure_url, is_loopback_host
from ...core.realms import PARTENAIRE, Realm
from ...internal.cache import is_per_process

OK, WARNING, ERROR = "ok", "warning", "error"


@dataclass(frozen=True)
class Finding:
    level: str
    check: str
    message: str
    fix: str = ""


class Doctor:
    def __init__(self, conf: FTAuthSettings, http: HttpClient, site: str) -> None:
        self.conf, self.http, self.site = conf, http, site
        self.findings: list[Finding] = []
        self.clock_checked = False

    def add(self, level: str, check: str, message: str, fix: str = "") -> None:
        self.findings.append(Finding(level, check, message, fix))

    def unreachable(self, check: str, realm: Realm, url: str, exc: Exception) -> None:
        """Nothing answered at ``url``. With the sandbox on, that is the sandbox: it is
        served by a running site (often this one, not started yet), not by France
        Travail, so no firewall or registration is to blame."""
        if self.conf.sandbox:
            parts = urlsplit(url)
            origin = f"{parts.scheme}://{parts.netloc}"
            self.add(
                ERROR,
                check,
                f"the sandbox is not running at {origin} ({url} unreachable: {exc})",
                f"Start the site that serves the sandbox (python manage.py runserver, or "
                f"make demo) at {origin}, then run ftauth_doctor again.",
            )
            return
        self.add(
            ERROR,
            check,
            f"{url} unreachable: {exc}",
            f"Check FTAUTH['REALMS']['{realm.name}']['server'] and that this host may "
            "reach it (firewall, proxy, DNS).",
        )

    # -- checks ---------------------------------------------------------------

    def system_checks(self) -> None:
        """ftauth's own ``manage.py check`` messages, one finding each."""
        messages = [
            m
            for m in django_checks.run_checks(include_deployment_checks=False)
            if (m.id or "").startswith("ftauth.")
        ]
        for message in messages:
            level = ERROR if message.level >= django_checks.ERROR else WARNING
            self.add(level, f"settings {message.id}", message.msg, message.hint or "")
        if not messages:
            self.add(OK, "settings", "manage.py check finds nothing wrong with FTAUTH")

    def realm(self, realm: Realm) -> None:
        check = f"realm {realm.name}"
        try:
            response = self.http.get(realm.discovery_url, headers={"Accept": "application/json"})
        except FTAuthError as exc:
            self.unreachable(f"{check} discovery", realm, realm.discovery_url, exc)
            return
        self.clock(response, realm.discovery_url)
        try:
            if response.status_code != 200:
                raise ValueError(f"answered {response.status_code}")
            metadata = _parse_discovery(realm, response.json(), realm.issuer_is_configured)
            announced = response.json().get("issuer")
        except (ValueError, FTAuthError) as exc:
            self.add(
                ERROR,
                f"{check} discovery",
                f"{realm.discovery_url}: no usable discovery document ({exc})",
                f"Is FTAUTH['REALMS']['{realm.name}']['server'] a France Travail identity "
                "server base URL (without /connexion/...)?",
            )
            return
        self.add(OK, f"{check} discovery", realm.discovery_url)
        if realm.issuer_is_configured and announced != realm.issuer:
            self.add(
                ERROR,
                f"{check} issuer",
                f"configured issuer {realm.issuer!r} differs from the announced {announced!r}",
                "Every ID token would be refused: remove the 'issuer' option or correct it.",
            )
        elif announced != realm.issuer:
            self.add(
                WARNING,
                f"{check} issuer",
                f"the server announces {announced!r}, not the usual {realm.issuer!r}",
                "ftauth follows the discovery document; check the server is the right one.",
            )
        else:
            self.add(OK, f"{check} issuer", announced)
        self.jwks(realm, metadata.jwks_uri)
        if realm.current_server:
            self.add(
                WARNING,
                f"{check} server",
                f"{realm.server} is the former Pôle emploi name of this server",
                f"Use {realm.current_server}.",
            )

    def jwks(self, realm: Realm, url: str) -> None:
        check = f"realm {realm.name} JWKS"
        try:
            response = self.http.get(url, headers={"Accept": "application/json"})
            keys = response.json().get("keys") if response.status_code == 200 else None
        except (FTAuthError, ValueError, AttributeError) as exc:
            keys, response = None, exc
        usable = [k for k in keys or [] if isinstance(k, dict) and k.get("alg", "RS256") != "none"]
        if not usable:
            self.add(
                ERROR,
                check,
                f"{url}: no signing key ({getattr(response, 'status_code', response)})",
                "Without keys no ID token can be verified: check the server URL.",
            )
            return
        algorithms = {k.get("alg") for k in usable if k.get("alg")}
        if algorithms and not algorithms & set(realm.id_token_algorithms):
            self.add(
                ERROR,
                check,
                f"keys are for {', '.join(sorted(algorithms))}, the realm accepts "
                f"{', '.join(realm.id_token_algorithms)}",
                f"Set FTAUTH['REALMS']['{realm.name}']['id_token_algorithms'].",
            )
            return
        self.add(OK, check, f"{len(usable)} key(s) at {url}")

    def clock(self, response: Any, url: str) -> None:
        if self.clock_checked:
            return
        date = response.headers.get("Date")
        if not date:
            return
        self.clock_checked = True
        try:
            server_time = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            return
        # The Date header has a one-second resolution.
        skew = time.time() - server_time
        leeway = self.conf.clock_leeway
        host = urlsplit(url).netloc
        if abs(skew) > leeway:
            level = ERROR
        elif abs(skew) > max(5, leeway / 2):
            level = WARNING
        else:
            self.add(OK, "clock", f"{skew:+.0f} s from {host}")
            return
        self.add(
            level,
            "clock",
            f"this host's clock is {skew:+.0f} s from {host} (CLOCK_LEEWAY is {leeway} s)",
            "ID tokens are refused as not yet valid or expired: synchronise the clock (NTP).",
        )

    def application_token(self) -> None:
        raw = getattr(settings, "FTAUTH", {}) or {}
        if not self.conf.application_scopes or "APPLICATION_SCOPES" not in raw:
            self.add(OK, "application token", "skipped: FTAUTH['APPLICATION_SCOPES'] not set")
            return
        realm = self.conf.realm(PARTENAIRE)
        scopes = list(self.conf.application_scopes)
        try:
            answer = tokens.client_credentials(
                self.http, realm, self.conf.client_id, self.conf.client_secret, scopes=scopes
            )
        except TransportError as exc:
            self.unreachable("application token", realm, realm.token_url, exc)
            return
        except FTAuthError as exc:
            error = getattr(exc, "error", "") or type(exc).__name__
            self.add(
                ERROR,
                "application token",
                f"client credentials for {' '.join(scopes)} refused: {error}",
                "invalid_client: check FT_CLIENT_ID / FT_CLIENT_SECRET; invalid_scope: "
                "subscribe the application to these APIs on francetravail.io, or change "
                "FTAUTH['APPLICATION_SCOPES'].",
            )
            return
        self.add(
            OK,
            "application token",
            f"obtained for {' '.join(scopes)} (expires in {answer.expires_in} s)",
        )

    def callbacks(self) -> None:
        hosts = settings.ALLOWED_HOSTS or (["localhost", "127.0.0.1"] if settings.DEBUG else [])
        parts = urlsplit(self.site)
        for name in self.conf.enabled_realms:
            try:
                url = self.site + reverse("ftauth:callback", args=[name])
            except NoReverseMatch:
                self.add(
                    ERROR,
                    "callback",
                    "ftauth's URLs are not included",
                    'Add path("ftauth/", include("ftauth.urls")) to your urlpatterns.',
                )
                return
            problems = []
            if parts.scheme != "https" and not is_loopback_host(parts.hostname):
                problems.append("not HTTPS")
            host_ok = "*" in hosts or any(
                h == parts.hostname or (h.startswith(".") and (parts.hostname or "").endswith(h))
                for h in hosts
            )
            if not host_ok:
                problems.append(f"{parts.hostname} is not in ALLOWED_HOSTS")
            if problems:
                self.add(
                    ERROR,
                    f"callback {name}",
                    f"{url}: {', '.join(problems)}",
                    "Pass --site with the site's public address, fix ALLOWED_HOSTS, and "
                    "register that exact URL as a redirect URI of your application.",
                )
            elif self.conf.sandbox:
                self.add(
                    OK, f"callback {name}", f"{url} (the sandbox stands in for France Travail)"
                )
            else:
                self.add(
                    OK,
                    f"callback {name}",
                    f"{url} (must be registered as a redirect URI on francetravail.io)",
                )

    def cache(self) -> None:
        alias = self.conf.cache_alias
        try:
            cache = caches[alias]
        except Exception as exc:  # InvalidCacheBackendError and import errors alike
            self.add(ERROR, "cache", f"cache {alias!r} unusable: {exc}", "Fix CACHES.")
            return
        backend = type(cache).__name__
        key = f"ftauth:doctor:{time.time_ns()}"
        try:
            cache.set(key, "1", 30)
            stored = cache.get(key) == "1"
            cache.delete(key)
        except Exception as exc:  # a cache server down: every backend raises its own
            self.add(ERROR, "cache", f"cache {alias!r} ({backend}) failed: {exc}", "Fix CACHES.")
            return
        if not stored:
            self.add(
                ERROR,
                "cache",
                f"cache {alias!r} ({backend}) keeps nothing",
                "ftauth caches keys and application tokens: use a real cache.",
            )
        elif is_per_process(type(cache)):
            self.add(
                WARNING,
                "cache",
                f"cache {alias!r} ({backend}) is per process",
                "With several processes (gunicorn workers), quotas and application tokens "
                "are not shared: use Redis or Memcached (CACHE_URL in the demo).",
            )
        else:
            self.add(OK, "cache", f"cache {alias!r} ({backend}) is shared")

    def database(self) -> None:
        from django.apps import apps

        expected = {m._meta.db_table for m in apps.get_app_config("ftauth").get_models()}
        try:
            with connections["default"].cursor() as cursor:
                present = set(connections["default"].introspection.table_names(cursor))
        except DatabaseError as exc:
            self.add(ERROR, "database", f"unreachable: {exc}", "Check DATABASES.")
            return
        missing = sorted(expected - present)
        if missing:
            self.add(
                ERROR,
                "database",
                f"missing tables: {', '.join(missing)}",
                "Run python manage.py migrate.",
            )
        else:
            self.add(OK, "database", f"{len(expected)} ftauth tables present")


class Command(BaseCommand):
    help = (
        "Check that ftauth can sign people in here: settings, each enabled realm's "
        "discovery, JWKS and issuer, an application token, callback URLs, clock, cache, "
        "database. Exits with status 1 on an error."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--site",
            help=(
                "The site's public address, e.g. https://emploi.example.fr: callback URLs "
                "are built on it (and the sandbox's, when its URLs are site-relative). "
                "Default: http://127.0.0.1:8000 with DEBUG on."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        site = (options.get("site") or "").rstrip("/")
        if not site:
            if not settings.DEBUG:
                raise CommandError("pass --site https://your.site (the address users reach)")
            site = "http://127.0.0.1:8000"
        if not urlsplit(site).scheme or not urlsplit(site).netloc:
            raise CommandError(f"--site must be an absolute URL, not {site!r}")
        with serving_origin(site):
            findings = self.examine(site)
        width = max(len(f.check) for f in findings)
        for f in findings:
            style = {OK: self.style.SUCCESS, WARNING: self.style.WARNING}.get(
                f.level, self.style.ERROR
            )
            self.stdout.write(f"{style(f'{f.level:<7}')} {f.check:<{width}}  {f.message}")
            if f.fix and f.level != OK:
                self.stdout.write(f"{'':<7} {'':<{width}}  fix: {f.fix}")
        errors = sum(f.level == ERROR for f in findings)
        warnings = sum(f.level == WARNING for f in findings)
        self.stdout.write(f"{errors} error(s), {warnings} warning(s)")
        if errors:
            raise SystemExit(1)

    def examine(self, site: str) -> list[Finding]:
        from ...conf import get_http

        try:
            conf = get_settings()
        except ConfigurationError as exc:
            return [Finding(ERROR, "settings", str(exc), "Fix settings.FTAUTH.")]
        doctor = Doctor(conf, get_http(), site)
        doctor.system_checks()
        doctor.database()
        doctor.cache()
        for realm in conf.enabled_realms.values():
            if is_site_relative(realm.server):
                doctor.add(ERROR, f"realm {realm.name}", "server URL is still a path")
                continue
            try:
                check_secure_url(realm.discovery_url)
            except FTAuthError as exc:
                doctor.add(ERROR, f"realm {realm.name}", str(exc), "Use HTTPS.")
                continue
            doctor.realm(realm)
        doctor.application_token()
        doctor.callbacks()
        return doctor.findings
