"""What France Travail vouched for at the end of a sign-in, handed to the account adapter."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .core.tokens import TokenResponse


@dataclass(frozen=True)
class VerifiedIdentity:
    """Everything France Travail vouched for, after every check passed."""

    realm: str
    sub: str
    claims: dict[str, Any]
    tokens: TokenResponse = field(repr=False)
    id_token_claims: dict[str, Any] = field(repr=False, default_factory=dict)
    next_url: str = ""
    # True when this sign-in read the realm's userinfo (``claims`` holds its answer);
    # False when the claims are the ID token's over those stored before.
    userinfo_read: bool = False
    # The identity's linked account as the callback found it (None: a first
    # sign-in), read once for the whole sign-in.
    account: Any = field(default=None, repr=False, compare=False)

    @property
    def email(self) -> str:
        value = self.claims.get("email")
        return value if isinstance(value, str) else ""

    def _text(self, claim: str) -> str:
        value = self.claims.get(claim)
        return value if isinstance(value, str) else ""

    @property
    def family_name(self) -> str:
        """``family_name`` (France Travail), or ProConnect's ``usual_name``."""
        return self._text("family_name") or self._text("usual_name")

    # What ProConnect says of a professional, for the adapter to decide who may sign
    # in (ProConnect filters nobody): empty or None when the provider did not say.
    @property
    def siret(self) -> str:
        return self._text("siret")

    @property
    def idp_id(self) -> str:
        return self._text("idp_id")

    @property
    def roles(self) -> tuple[str, ...]:
        roles = self.claims.get("roles")
        if isinstance(roles, list):
            return tuple(r for r in roles if isinstance(r, str))
        return ()

    @property
    def structure_travail(self) -> str:
        """A France Travail advisor's agency (``custom.structureTravail``)."""
        custom = self.claims.get("custom")
        value = custom.get("structureTravail") if isinstance(custom, dict) else None
        return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""

    @property
    def acr(self) -> str:
        value = self.id_token_claims.get("acr")
        return value if isinstance(value, str) else ""
