"""The sandbox's settings, read from ``settings.FTAUTH_SANDBOX`` at every use.

Read at request time, never cached: tests switch hooks and lifetimes
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
from django.utils.module_loading import import_string

from ..core.typed import SettingError, as_bool, as_float, as_int, as_str_tuple
from .hooks import NO_HOOKS, SandboxHooks
from .quota import ALGORITHMS

KNOWN_KEYS = frozenset(
    {
        "CLIENTS",
        "QUOTA_PER_SECOND",
        "QUOTA_ALGORITHM",
        "CODE_LIFETIME",
        "ACCESS_TOKEN_LIFETIME",
        "ID_TOKEN_LIFETIME",
        "HOOKS",
        "ALLOW_WITHOUT_DEBUG",
        "RETIRED_KEY_TTL",
        "BACKCHANNEL_TIMEOUT",
        "ROTATE_REFRESH_TOKENS",
        "REDIRECT_HOSTS",
        "END_SESSION_REVOKES_GRANT",
        "BACKCHANNEL_ON_END_SESSION",
    }
)


@dataclass(frozen=True)
class SandboxSettings:
    clients: tuple[Mapping[str, Any], ...] = field(default=(), repr=False)
    # France Travail's per-application quota (Offres d'emploi: 4 calls/s).
    quota_per_second: float = 4.0
    # How the quota is counted (France Travail does not say): see ftauth.sandbox.quota.
    quota_algorithm: str = "token_bucket"
    code_lifetime: int = 60
    # France Travail answers expires_in=1499 (about 25 minutes).
    access_token_lifetime: int = 1499
    # 2 h 30, the ID token lifetime announced by France Travail.
    id_token_lifetime: int = 9000
    # Extension points for tests of a client's defences (see ``hooks``).
    hooks: SandboxHooks = field(default=NO_HOOKS, repr=False)
    # ALLOW_WITHOUT_DEBUG is read by check_debug_allowed alone, at start-up.
    # How long a retired signing key stays in the JWKS after a rotation.
    retired_key_ttl: int = 24 * 3600
    backchannel_timeout: float = 3.0
    # ForgeRock (France Travail's server) issues a new refresh token on refresh.
    rotate_refresh_tokens: bool = True
    # Hosts, besides loopback addresses, the default client may redirect to.
    redirect_hosts: tuple[str, ...] = ("localhost", "testserver")
    # What ending a login session at the server does to the application's
    # grant is not documented by France Travail: by default nothing (the
    # tokens go on working); the variants of other real servers are settings.
    end_session_revokes_grant: bool = False
    backchannel_on_end_session: bool = False


def _raw() -> Mapping[str, Any]:
    raw = getattr(django_settings, "FTAUTH_SANDBOX", None)
    return raw if isinstance(raw, Mapping) else {}


def _hooks(value: Any) -> SandboxHooks:
    """A :class:`SandboxHooks` instance, given as such or by its dotted path."""
    if value is None:
        return NO_HOOKS
    if isinstance(value, str):
        try:
            value = import_string(value)
        except ImportError as exc:
            raise ImproperlyConfigured(f"FTAUTH_SANDBOX['HOOKS']: {exc}") from None
    if not isinstance(value, SandboxHooks):
        raise ImproperlyConfigured(
            "FTAUTH_SANDBOX['HOOKS'] must be a SandboxHooks instance or its dotted path, "
            f"not {value!r}"
        )
    return value


def _rate(name: str, value: Any) -> float:
    return as_float(name, value, strict=True)


def _lifetime(name: str, value: Any) -> int:
    # Negative is allowed: codes and tokens issued already expired, for tests of expiry.
    return as_int(name, value, minimum=-(2**31))


def get_sandbox_settings() -> SandboxSettings:
    """The sandbox settings as they are now; :class:`ImproperlyConfigured` if invalid."""
    raw = _raw()
    unknown = set(raw) - KNOWN_KEYS
    if unknown:
        raise ImproperlyConfigured(f"FTAUTH_SANDBOX has unknown keys: {', '.join(sorted(unknown))}")
    defaults = SandboxSettings()
    algorithm = str(raw.get("QUOTA_ALGORITHM", defaults.quota_algorithm))
    if algorithm not in ALGORITHMS:
        raise ImproperlyConfigured(
            f"FTAUTH_SANDBOX['QUOTA_ALGORITHM'] is {algorithm!r}; "
            f"choose one of {', '.join(sorted(ALGORITHMS))}"
        )

    def value(key: str, parse: Any, default: Any) -> Any:
        # Typed like every FTAUTH value (ftauth.core.typed): "false" is False.
        return parse(f"FTAUTH_SANDBOX['{key}']", raw[key]) if key in raw else default

    try:
        return SandboxSettings(
            clients=tuple(raw.get("CLIENTS") or ()),
            quota_per_second=value("QUOTA_PER_SECOND", _rate, defaults.quota_per_second),
            quota_algorithm=algorithm,
            code_lifetime=value("CODE_LIFETIME", _lifetime, defaults.code_lifetime),
            access_token_lifetime=value(
                "ACCESS_TOKEN_LIFETIME", _lifetime, defaults.access_token_lifetime
            ),
            id_token_lifetime=value("ID_TOKEN_LIFETIME", _lifetime, defaults.id_token_lifetime),
            hooks=_hooks(raw.get("HOOKS")),
            retired_key_ttl=value("RETIRED_KEY_TTL", as_int, defaults.retired_key_ttl),
            backchannel_timeout=value(
                "BACKCHANNEL_TIMEOUT", as_float, defaults.backchannel_timeout
            ),
            rotate_refresh_tokens=value(
                "ROTATE_REFRESH_TOKENS", as_bool, defaults.rotate_refresh_tokens
            ),
            redirect_hosts=value("REDIRECT_HOSTS", as_str_tuple, defaults.redirect_hosts),
            end_session_revokes_grant=value(
                "END_SESSION_REVOKES_GRANT", as_bool, defaults.end_session_revokes_grant
            ),
            backchannel_on_end_session=value(
                "BACKCHANNEL_ON_END_SESSION", as_bool, defaults.backchannel_on_end_session
            ),
        )
    except SettingError as exc:
        raise ImproperlyConfigured(str(exc)) from None


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
