"""The token vault: each linked account's tokens, encrypted at rest, kept fresh.

Every read and write of a token goes through here. Tokens are encrypted with
``ftauth.crypto`` before they reach the database and decrypted only when a
caller needs one; they never appear in a ``repr``, a log line or an error.

Concurrent callers that find an access token about to expire cause a single
refresh: the first one takes the token set's refresh lock (a row lock on
PostgreSQL, a lease on SQLite: ``ftauth.refresh_lock``) and re-reads the row;
the others wait for the lock and find the refreshed token when they re-read.
"""

from __future__ import annotations

import enum
import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from . import audit, crypto
from .conf import get_http, get_settings
from .core import tokens as token_endpoint
from .core.errors import ConsentWithdrawn, FTAuthError, InvalidGrant, TransportError
from .core.realms import ACCESS_TOKEN_LIFETIME
from .core.tokens import TokenResponse
from .models import AuditEvent, LinkedAccount, TokenSet
from .refresh_lock import refresh_lock

logger = logging.getLogger("ftauth.vault")

# Claims of an ID token that say who and for whom, kept to check refreshed ID
# tokens (OIDC Core 12.2) and back-channel logout; never the token itself,
# nor ``nonce`` or ``at_hash`` (derived from secrets).
IDENTITY_CLAIMS = ("iss", "sub", "aud", "azp", "sid", "auth_time", "acr", "amr", "iat", "exp")


class TokensUnavailable(FTAuthError):
    """No usable token: the identity is not linked, its tokens were forgotten,
    or they expired with no refresh token. The user must sign in again."""


class TokenStatus(enum.StrEnum):
    VALID = "valid"
    EXPIRING = "expiring"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"
    NONE = "none"


def _expires_at(tokens: TokenResponse) -> datetime:
    # France Travail always sends expires_in; if a server does not, assume the
    # documented 25-minute lifetime rather than "never expires".
    lifetime = tokens.expires_in if tokens.expires_in is not None else ACCESS_TOKEN_LIFETIME
    obtained = datetime.fromtimestamp(tokens.obtained_at, tz=timezone.get_current_timezone())
    return obtained + timedelta(seconds=lifetime)


def identity_claims(claims: dict[str, Any]) -> dict[str, Any]:
    return {name: claims[name] for name in IDENTITY_CLAIMS if name in claims}


def save_tokens(
    account: LinkedAccount, tokens: TokenResponse, id_token_claims: dict[str, Any]
) -> TokenSet:
    """Encrypt and store a fresh token set for ``account``, replacing any previous one.

    Called after a sign-in: new tokens mean the user consented again, so a
    previous withdrawal no longer stands.
    """
    now = timezone.now()
    values = {
        "access_token_ciphertext": crypto.encrypt(tokens.access_token),
        "refresh_token_ciphertext": crypto.encrypt(tokens.refresh_token or ""),
        "id_token_ciphertext": crypto.encrypt(tokens.id_token or ""),
        "expires_at": _expires_at(tokens),
        "scopes": " ".join(tokens.scope),
        "id_token_claims": identity_claims(id_token_claims),
        "obtained_at": now,
        "refreshed_at": None,
    }
    with transaction.atomic():
        token_set, _ = TokenSet.objects.update_or_create(account=account, defaults=values)
        # The sign-in itself just proved consent: the next check can wait.
        LinkedAccount.objects.filter(pk=account.pk).update(
            consent_withdrawn_at=None, consent_checked_at=now
        )
        account.consent_withdrawn_at = None
        account.consent_checked_at = now
    LinkedAccount.token_set.related.set_cached_value(account, token_set)
    return token_set


def forget_tokens(account: LinkedAccount) -> bool:
    """Delete the account's token set; True if there was one."""
    deleted, _ = TokenSet.objects.filter(account=account).delete()
    account._state.fields_cache.pop(LinkedAccount.token_set.related.cache_name, None)
    return bool(deleted)


def get_id_token(account: LinkedAccount) -> str:
    """The last ID token (for ``id_token_hint``), or ``""`` when there is none."""
    token_set = TokenSet.objects.filter(account=account).first()
    if token_set is None:
        return ""
    return crypto.decrypt(token_set.id_token_ciphertext)


def token_status(account: LinkedAccount, *, now: datetime | None = None) -> TokenStatus:
    """Where the account's tokens stand, for the account page and the admin."""
    if account.consent_withdrawn_at is not None:
        return TokenStatus.WITHDRAWN
    try:
        token_set = account.token_set
    except TokenSet.DoesNotExist:
        return TokenStatus.NONE
    return status_of(token_set, now=now)


def status_of(token_set: TokenSet, *, now: datetime | None = None) -> TokenStatus:
    now = now or timezone.now()
    if token_set.expires_at is None or token_set.expires_at <= now:
        return TokenStatus.EXPIRED
    if token_set.expires_at - timedelta(seconds=get_settings().refresh_margin) <= now:
        return TokenStatus.EXPIRING
    return TokenStatus.VALID


def _needs_refresh(token_set: TokenSet, now: datetime) -> bool:
    margin = timedelta(seconds=get_settings().refresh_margin)
    return token_set.expires_at is None or token_set.expires_at - margin <= now


def get_access_token(user: Any, realm: str) -> str:
    """A valid access token of ``user`` for ``realm``, refreshed if about to expire.

    Raises :class:`TokensUnavailable` (sign in again), :class:`ConsentWithdrawn`
    (``invalid_grant`` on refresh: the account was withdrawn on the way),
    :class:`TransportError` (France Travail unreachable and the token expired),
    :class:`~ftauth.crypto.TokenDecryptionError` (a key is missing).
    """
    account = LinkedAccount.objects.filter(user=user, realm=realm).first()
    if account is None:
        raise TokensUnavailable(f"no {realm} identity linked to this user")
    return get_account_access_token(account)


def get_account_access_token(account: LinkedAccount) -> str:
    """Same as :func:`get_access_token`, for an account already at hand."""
    if account.consent_withdrawn_at is not None:
        raise ConsentWithdrawn("consent was withdrawn for this account")
    token_set = TokenSet.objects.filter(account=account).first()
    if token_set is None:
        raise TokensUnavailable("no tokens stored for this account")
    if not _needs_refresh(token_set, timezone.now()):
        return crypto.decrypt(token_set.access_token_ciphertext)
    return crypto.decrypt(refresh_tokens(account).access_token_ciphertext)


def refresh_tokens(account: LinkedAccount, *, force: bool = False) -> TokenSet:
    """Refresh the account's tokens once, however many callers ask at the same time.

    Without ``force``, a token set that another caller refreshed while this
    one waited for the lock is returned as is. ``invalid_grant`` means consent
    was withdrawn: the account is withdrawn (tokens forgotten, sessions ended)
    and :class:`ConsentWithdrawn` raised. A transient failure (timeout, 5xx,
    429) raises :class:`TransportError`, unless the refresh was not forced and
    the current access token has not actually expired yet: it is then returned.
    """
    asked_at = timezone.now()
    withdrawn = False
    with refresh_lock(account) as token_set:
        # Read under the lock: a caller that waited sees the first one's result.
        if token_set is None:
            raise TokensUnavailable("no tokens stored for this account")
        if not force and token_set.refreshed_at and token_set.refreshed_at >= asked_at:
            return token_set
        if not force and not _needs_refresh(token_set, timezone.now()):
            return token_set
        refresh_token = crypto.decrypt(token_set.refresh_token_ciphertext)
        if not refresh_token:
            if not force and status_of(token_set) is not TokenStatus.EXPIRED:
                return token_set
            raise TokensUnavailable("no refresh token: the user must sign in again")
        conf = get_settings()
        try:
            fresh = token_endpoint.refresh(
                get_http(),
                conf.realm(account.realm),
                conf.client_id,
                conf.client_secret,
                refresh_token=refresh_token,
            )
        except InvalidGrant:
            withdrawn = True
        except TransportError:
            if not force and status_of(token_set) is not TokenStatus.EXPIRED:
                logger.warning(
                    "refresh of %s tokens failed transiently; the current one is still valid",
                    account.realm,
                )
                return token_set
            raise
        else:
            _store_refreshed(account, token_set, fresh)
    if withdrawn:
        # Outside the lock: ending sessions touches session stores that are not
        # transactional (cache, files).
        from .consent import withdraw

        withdraw(account, reason="invalid_grant on refresh")
        raise ConsentWithdrawn("refresh token refused: consent was withdrawn")
    return token_set


def _store_refreshed(account: LinkedAccount, token_set: TokenSet, fresh: TokenResponse) -> None:
    if fresh.id_token:
        claims = _validate_refreshed_id_token(account, token_set, fresh.id_token)
        token_set.id_token_ciphertext = crypto.encrypt(fresh.id_token)
        token_set.id_token_claims = identity_claims(claims)
    token_set.access_token_ciphertext = crypto.encrypt(fresh.access_token)
    if fresh.refresh_token:
        # Refresh token rotation: the old one may already be void.
        token_set.refresh_token_ciphertext = crypto.encrypt(fresh.refresh_token)
    token_set.expires_at = _expires_at(fresh)
    if fresh.scope:
        token_set.scopes = " ".join(fresh.scope)
    token_set.refreshed_at = timezone.now()
    token_set.save()
    audit.record(AuditEvent.Kind.TOKENS_REFRESHED, account)


def _validate_refreshed_id_token(
    account: LinkedAccount, token_set: TokenSet, id_token: str
) -> dict[str, Any]:
    """OIDC Core 12.2: signature and claims like at sign-in (no nonce of ours),
    and the same ``iss``, ``sub`` and ``aud`` as the ID token it replaces."""
    from .core.idtoken import check_refreshed_id_token
    from .provider import get_provider

    provider = get_provider(account.realm)
    claims = provider.validate_id_token(id_token, nonce=None)
    # An account signed in before identity claims were kept: what is known of it.
    previous = token_set.id_token_claims or {
        "iss": provider.metadata().issuer,
        "sub": account.sub,
        "aud": claims.get("aud"),
    }
    check_refreshed_id_token(claims, previous)
    return claims
