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
