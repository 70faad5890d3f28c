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

    @property
    def email(self) -> str:
        value = self.claims.get("email")
        return value if isinstance(value, str) else ""
