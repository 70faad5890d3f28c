"""The sandbox's settings, read from ``settings.FTAUTH_SANDBOX`` at every use.

Read at request time, never cached: tests switch tamper modes and lifetimes
with ``override_settings`` on a live server running in the same process.
``settings.FTAUTH_SANDBOX`` is optional; a non-dict value (the demo site uses
a boolean of that name to switch the sandbox on) counts as "no options".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from ..core.typed import SettingError, as_bool

# Each name makes the sandbox misbehave one way, so that a client's defences
# can be tested over real HTTP (see docs in the module ``tamper``).
TAMPER_MODES = frozenset(
    {
        "iss_param_wrong",
        "iss_param_missing",
        "client_id_param_wrong",
        "id_token_wrong_iss",
        "id_token_wrong_aud",
        "id_token_multi_aud_no_azp",
        "id_token_wrong_azp",
        "id_token_expired",
        "id_token_iat_future",
        "id_token_too_old",
        "id_token_wrong_nonce",
        "token_response_wrong_nonce",
        "id_token_no_sub",
        "id_token_bad_signature",
        "id_token_alg_none",
        "id_token_hs256",
        "id_token_unknown_kid",
        "userinfo_wrong_sub",
        "token_endpoint_500",
        "token_endpoint_429",
        "token_endpoint_slow",
        "token_endpoint_not_json",
    }
)

KNOWN_KEYS = frozenset(
    {
        "CLIENTS",
        "QUOTA_PER_SECOND",
        "CODE_LIFETIME",
        "ACCESS_TOKEN_LIFETIME",
        "ID_TOKEN_LIFETIME",
        "TAMPER",
        "SLOW_SECONDS",
        "ALLOW_WITHOUT_DEBUG",
        "RETIRED_KEY_TTL",
        "BACKCHANNEL_TIMEOUT",
        "ROTATE_REFRESH_TOKENS",
        "REDIRECT_HOSTS",
    }
)


@dataclass(frozen=True)
class SandboxSettings:
    clients: tuple[Mapping[str, Any], ...] = field(default=(), repr=False)
    # France Travail's per-application quota (Offres d'emploi: 4 calls/s).
    quota_per_second: float = 4.0
    code_lifetime: int = 60
    # France Travail answers expires_in=1499 (about 25 minutes).
    access_token_lifetime: int = 1499
    # 2 h 30, the ID token lifetime announced by France Travail.
    id_token_lifetime: int = 9000
    tamper: frozenset[str] = frozenset()
    slow_seconds: float = 3.0
    allow_without_debug: bool = False
    # How long a retired signing key stays in the JWKS after a rotation.
    retired_key_ttl: int = 24 * 3600
    backchannel_timeout: float = 3.0
    # ForgeRock (France Travail's server) issues a new refresh token on refresh.
    rotate_refresh_tokens: bool = True
    # Hosts, besides loopback addresses, the default client may redirect to.
    redirect_hosts: tuple[str, ...] = ("localhost", "testserver")


def _raw() -> Mapping[str, Any]:
    raw = getattr(django_settings, "FTAUTH_SANDBOX", None)
    return raw if isinstance(raw, Mapping) else {}


def get_sandbox_settings() -> SandboxSettings:
    """The sandbox settings as they are now; :class:`ImproperlyConfigured` if invalid."""
    raw = _raw()
    unknown = set(raw) - KNOWN_KEYS
    if unknown:
        raise ImproperlyConfigured(f"FTAUTH_SANDBOX has unknown keys: {', '.join(sorted(unknown))}")
    tamper = raw.get("TAMPER") or ()
    if isinstance(tamper, str):
        tamper = tamper.replace(",", " ").split()
    tamper = frozenset(tamper)
    if tamper - TAMPER_MODES:
        unknown_modes = ", ".join(sorted(tamper - TAMPER_MODES))
        raise ImproperlyConfigured(
            f"FTAUTH_SANDBOX['TAMPER'] has unknown modes: {unknown_modes}; "
            f"known modes: {', '.join(sorted(TAMPER_MODES))}"
        )
    defaults = SandboxSettings()
    try:
        return SandboxSettings(
            clients=tuple(raw.get("CLIENTS") or ()),
            quota_per_second=float(raw.get("QUOTA_PER_SECOND", defaults.quota_per_second)),
            code_lifetime=int(raw.get("CODE_LIFETIME", defaults.code_lifetime)),
            access_token_lifetime=int(
                raw.get("ACCESS_TOKEN_LIFETIME", defaults.access_token_lifetime)
            ),
            id_token_lifetime=int(raw.get("ID_TOKEN_LIFETIME", defaults.id_token_lifetime)),
            tamper=tamper,
            slow_seconds=float(raw.get("SLOW_SECONDS", defaults.slow_seconds)),
            allow_without_debug=bool(raw.get("ALLOW_WITHOUT_DEBUG", False)),
            retired_key_ttl=int(raw.get("RETIRED_KEY_TTL", defaults.retired_key_ttl)),
            backchannel_timeout=float(raw.get("BACKCHANNEL_TIMEOUT", defaults.backchannel_timeout)),
            rotate_refresh_tokens=bool(
                raw.get("ROTATE_REFRESH_TOKENS", defaults.rotate_refresh_tokens)
            ),
            redirect_hosts=tuple(raw.get("REDIRECT_HOSTS", defaults.redirect_hosts)),
        )
    except (TypeError, ValueError) as exc:
        raise ImproperlyConfigured(f"FTAUTH_SANDBOX has an invalid value: {exc}") from None


def tampered(mode: str) -> bool:
    """True when the tamper ``mode`` is switched on now."""
    return mode in get_sandbox_settings().tamper


def check_debug_allowed(settings: Any = django_settings) -> None:
    """Refuse to run the sandbox in production by mistake.

    The sandbox signs anyone in as a test persona: serving it with DEBUG off
    needs an explicit ``FTAUTH["SANDBOX_ALLOW_WITHOUT_DEBUG"]`` or
    ``FTAUTH_SANDBOX["ALLOW_WITHOUT_DEBUG"]``.
    """
    if getattr(settings, "DEBUG", False):
        return
    ftauth = getattr(settings, "FTAUTH", None)
    sandbox = getattr(settings, "FTAUTH_SANDBOX", None)
    # Typed like every FTAUTH value: the string "false" must never allow it.
    flags = [
        ("FTAUTH['SANDBOX_ALLOW_WITHOUT_DEBUG']", ftauth, "SANDBOX_ALLOW_WITHOUT_DEBUG"),
        ("FTAUTH_SANDBOX['ALLOW_WITHOUT_DEBUG']", sandbox, "ALLOW_WITHOUT_DEBUG"),
    ]
    for name, options, key in flags:
        if isinstance(options, Mapping) and options.get(key) is not None:
            try:
                if as_bool(name, options[key]):
                    return
            except SettingError as exc:
                raise ImproperlyConfigured(str(exc)) from None
    raise ImproperlyConfigured(
        "ftauth.sandbox signs anyone in as a test persona and must not run with "
        "DEBUG = False. Remove 'ftauth.sandbox' from INSTALLED_APPS, or, if you really "
        "mean it, set FTAUTH['SANDBOX_ALLOW_WITHOUT_DEBUG'] = True (or "
        "FTAUTH_SANDBOX = {'ALLOW_WITHOUT_DEBUG': True})."
    )
