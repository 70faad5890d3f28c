"""What a professional's identity proves: assurance level, methods, identity provider.

ProConnect (docs/proconnect.md) says which level (``acr``) and which methods
(``amr``) authenticated the person, and through which identity provider
(``idp_id``); it filters nobody, so the site's accepted levels and providers
are checked here, on the validated ID token, before any account is touched.
France Travail's realms accept every level (their ``acr_values`` are empty).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from .errors import FTAuthError


class AssuranceRefused(FTAuthError):
    """The identity was authenticated below the site's level, or by a provider the
    site does not accept. ``rule`` is ``acr`` or ``idp``; the page says which."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{rule}: {message}")
        self.rule = rule


def check_acr(claims: Mapping[str, Any], accepted: Collection[str]) -> None:
    """The ID token's ``acr`` is one the site accepts (none accepted: not checked).

    A missing ``acr`` is refused when levels are required: a level not stated is
    not a level reached (the request's ``claims`` asked for it).
    """
    if not accepted:
        return
    acr = claims.get("acr")
    if not isinstance(acr, str) or acr not in accepted:
        raise AssuranceRefused("acr", f"acr {acr!r} is not among {', '.join(accepted)}")


def check_idp(claims: Mapping[str, Any], allowed: Collection[str]) -> None:
    """The ``idp_id`` (ID token or userinfo) is one the site accepts (none: any)."""
    if not allowed:
        return
    idp = claims.get("idp_id")
    if not isinstance(idp, str) or idp not in allowed:
        raise AssuranceRefused("idp", "identity provider not accepted by this site")


def amr_of(claims: Mapping[str, Any]) -> list[str] | None:
    """The ``amr`` as recorded: a list of strings, or ``None`` (ProConnect was seen
    sending ``null``, or nothing, although asked): never a reason to refuse."""
    amr = claims.get("amr")
    if isinstance(amr, list) and all(isinstance(m, str) for m in amr):
        return list(amr)
    return None
