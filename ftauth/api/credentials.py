"""Where an API call's bearer token comes from, and what a 401 means for it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import requests

from ftauth.core.errors import ApiError, TokenRejected

from .app_tokens import ApplicationTokens, scope_set
from .client import error_body

if TYPE_CHECKING:
    from ftauth.models import Grant


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


class GrantCredentials:
    """A user's consented token: one grant's, from the vault.

    A 401 is not yet a refusal (the token may have expired early): the grant
    is refreshed once; ``invalid_grant`` there, or the realm's userinfo (its
    witness) answering 401 to the fresh token, is
    :class:`~ftauth.vault.GrantRefused`, which ``ftauth.consent`` judges. Any
    other API's 401 on the fresh token is that API's answer (``ApiError``).
    """

    def __init__(self, grant: Grant) -> None:
        self.grant = grant

    def token(self) -> str:
        from ftauth import vault

        return vault.access_token(self.grant)

    def renew(self, rejected: str) -> str:
        from ftauth import crypto, vault

        account = self.grant.account
        self.grant = vault.refresh(self.grant, force=True)
        self.grant.account = account
        return crypto.decrypt(self.grant.access_token_ciphertext)

    def refused_again(self, response: requests.Response) -> Exception:
        from ftauth import vault
        from ftauth.consent import is_witness

        if is_witness(self.grant.account.realm, response.url or ""):
            # The refresh just stored these tokens: ftauth holds the latest ones.
            return vault.GrantRefused(
                self.grant,
                "userinfo 401 on a freshly refreshed access token",
                certain=True,
                witness=vault.WITNESS_USERINFO,
            )
        return ApiError(401, error_body(response))


class TokenCredentials:
    """A token just received, not stored yet (the sign-in's userinfo call): a 401 on
    it is an answer, nothing to renew."""

    def __init__(self, access_token: str) -> None:
        self.access_token = access_token

    def token(self) -> str:
        return self.access_token

    def renew(self, rejected: str) -> str:
        raise TokenRejected("the identity server refused the access token it just issued")

    def refused_again(self, response: requests.Response) -> Exception:  # pragma: no cover
        return TokenRejected("the identity server refused the access token it just issued")
