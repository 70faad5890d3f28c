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
    allow_without_debug: bool = False
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
    try:
        return SandboxSettings(
            clients=tuple(raw.get("CLIENTS") or ()),
            quota_per_second=float(raw.get("QUOTA_PER_SECOND", defaults.quota_per_second)),
            quota_algorithm=algorithm,
            code_lifetime=int(raw.get("CODE_LIFETIME", defaults.code_lifetime)),
            access_token_lifetime=int(
                raw.get("ACCESS_TOKEN_LIFETIME", defaults.access_token_lifetime)
            ),
            id_token_lifetime=int(raw.get("ID_TOKEN_LIFETIME", defaults.id_token_lifetime)),
            hooks=_hooks(raw.get("HOOKS")),
            allow_without_debug=bool(raw.get("ALLOW_WITHOUT_DEBUG", False)),
            retired_key_ttl=int(raw.get("RETIRED_KEY_TTL", defaults.retired_key_ttl)),
            backchannel_timeout=float(raw.get("BACKCHANNEL_TIMEOUT", defaults.backchannel_timeout)),
            rotate_refresh_tokens=bool(
                raw.get("ROTATE_REFRESH_TOKENS", defaults.rotate_refresh_tokens)
            ),
            redirect_hosts=tuple(raw.get("REDIRECT_HOSTS", defaults.redirect_hosts)),
            end_session_revokes_grant=bool(raw.get("END_SESSION_REVOKES_GRANT", False)),
            backchannel_on_end_session=bool(raw.get("BACKCHANNEL_ON_END_SESSION", False)),
        )
    except (TypeError, ValueError) as exc:
        raise ImproperlyConfigured(f"FTAUTH_SANDBOX has an invalid value: {exc}") from None


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
    if isinstance(ftauth, Mapping) and ftauth.get("SANDBOX_ALLOW_WITHOUT_DEBUG"):
        return
    if isinstance(sandbox, Mapping) and sandbox.get("ALLOW_WITHOUT_DEBUG"):
        return
    raise ImproperlyConfigured(
        "ftauth.sandbox signs anyone in as a test persona and must not run with "
        "DEBUG = False. Remove 'ftauth.sandbox' from INSTALLED_APPS, or, if you really "
        "mean it, set FTAUTH['SANDBOX_ALLOW_WITHOUT_DEBUG'] = True (or "
        "FTAUTH_SANDBOX = {'ALLOW_WITHOUT_DEBUG': True})."
    )
