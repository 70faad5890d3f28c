"""System checks: misconfiguration reported at ``manage.py check``, not as a 500."""

from django.conf import settings
from django.core import checks

from .conf import get_settings
from .core.errors import ConfigurationError, InsecureTransport
from .core.http import check_secure_url

BACKEND = "ftauth.backends.FranceTravailBackend"


@checks.register(checks.Tags.security)
def check_settings(app_configs=None, **kwargs):
    try:
        conf = get_settings()
    except ConfigurationError as exc:
        return [checks.Error(str(exc), hint="Fix settings.FTAUTH.", id="ftauth.E001")]
    errors = []
    if not conf.sandbox:
        if not conf.client_id:
            errors.append(
                checks.Error(
                    "FTAUTH['CLIENT_ID'] is not set.",
                    hint="Set it from the environment (e.g. FT_CLIENT_ID); never in code.",
                    id="ftauth.E002",
                )
            )
        if not conf.client_secret:
            errors.append(
                checks.Error(
                    "FTAUTH['CLIENT_SECRET'] is not set.",
                    hint="Set it from the environment (e.g. FT_CLIENT_SECRET); never in code.",
                    id="ftauth.E003",
                )
            )
    for realm in conf.realms.values():
        if not realm.enabled and realm.name != "partenaire":
            continue
        urls = {
            "server": realm.server,
            "token_url": realm.token_url,
            "authorize_url": realm.authorize_url,
            "jwks_url": realm.jwks_url,
            "discovery_url": realm.discovery_url,
            "userinfo_url": realm.userinfo_url,
        }
        for key, url in urls.items():
            if not url:
                continue
            try:
                check_secure_url(url)
            except InsecureTransport:
                errors.append(
                    checks.Error(
                        f"FTAUTH['REALMS']['{realm.name}'] {key} {url!r} is not HTTPS.",
                        hint="France Travail requires HTTPS; plain http:// only on loopback.",
                        id="ftauth.E004",
                    )
                )
    try:
        check_secure_url(conf.api_url)
    except InsecureTransport:
        errors.append(
            checks.Error(
                f"FTAUTH['API_URL'] {conf.api_url!r} is not HTTPS.",
                hint="France Travail requires HTTPS; plain http:// only on loopback.",
                id="ftauth.E004",
            )
        )
    if BACKEND not in getattr(settings, "AUTHENTICATION_BACKENDS", []):
        errors.append(
            checks.Error(
                f"{BACKEND} is not in AUTHENTICATION_BACKENDS.",
                hint=f'Add "{BACKEND}" to AUTHENTICATION_BACKENDS.',
                id="ftauth.E005",
            )
        )
    return errors
