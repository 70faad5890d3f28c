"""Where an API call's bearer token comes from, and what a 401 means for it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import requests

from ftauth.core.errors import ApiError, ConsentWithdrawn

from .app_tokens import ApplicationTokens, scope_set
from .client import error_body

if TYPE_CHECKING:
    from ftauth.models import LinkedAccount


class ApplicationCredentials:
    """The application's own token (client credentials), shared by all processes."""

    def __init__(self, tokens: ApplicationTokens, scopes: Iterable[str]) -> None:
        self.tokens = tokens
        self.scopes = scope_set(scopes)

    def token(self) -> str:
        return self.tokens.get(self.scopes)

    def renew(self, rejected: str) -> str:
        # Revoked or expired early at France Travail: drop it for every process.
        self.tokens.discard(self.scopes, rejected)
        return self.tokens.get(self.scopes)

    def refused_again(self, response: requests.Response) -> Exception:
        return ApiError(401, error_body(response))


class UserCredentials:
    """A user's consented token, from the vault.

    A 401 is not yet a withdrawal (the token may have expired early): the
    tokens are refreshed once (``invalid_grant`` there is a withdrawal, acted on
    by the vault); a 401 on the fresh token is a withdrawal, acted on here.
    """

    def __init__(self, account: LinkedAccount) -> None:
        self.account = account

    def token(self) -> str:
        from ftauth import vault

        return vault.get_account_access_token(self.account)

    def renew(self, rejected: str) -> str:
        from ftauth import crypto, vault

        fresh = vault.refresh_tokens(self.account, force=True)
        return crypto.decrypt(fresh.access_token_ciphertext)

    def refused_again(self, response: requests.Response) -> Exception:
        from ftauth import consent

        consent.withdraw(self.account, reason="an API refused a freshly refreshed token")
        return ConsentWithdrawn("France Travail refused the user's fresh token")
