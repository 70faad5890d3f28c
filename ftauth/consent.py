"""Consent withdrawal: detect it, and act on it.

France Travail sends no signal when a user withdraws the consent given to an
application: the tokens simply stop working. A withdrawal therefore shows up
as a 401 from userinfo or an API, then ``invalid_grant`` when refreshing.
A 401 alone is not enough (the access token may just have expired early):
the tokens are refreshed once, and only ``invalid_grant`` on that refresh,
or a second 401 with the fresh token, counts as a withdrawal. Timeouts, 5xx
and 429 answers say nothing about consent and never count.
"""

from __future__ import annotations

import enum
import logging

from django.db import transaction
from django.utils import timezone

from . import audit, crypto, sessions, vault
from .conf import get_http, get_settings
from .core.errors import (
    ApiError,
    ConsentWithdrawn,
    FTAuthError,
    OAuthError,
    TokenRejected,
    TokenValidationError,
    TransportError,
)
from .core.userinfo import fetch_userinfo
from .models import AuditEvent, LinkedAccount
from .signals import consent_revoked

logger = logging.getLogger("ftauth.consent")


class ConsentCheck(enum.StrEnum):
    VALID = "valid"
    WITHDRAWN = "withdrawn"
    # The identity server could not tell (unreachable, 5xx, 429, misconfigured):
    # ask again later, change nothing.
    UNKNOWN = "unknown"
    # Nothing to check with: no tokens stored, or no refresh token to try.
    NO_TOKENS = "no_tokens"


def check_consent(account: LinkedAccount, *, raise_transient: bool = False) -> ConsentCheck:
    """Ask France Travail whether the user's consent still stands, with the user's token.

    Uses the realm's userinfo when it has one, otherwise a refresh. A
    withdrawal found here is acted on (:func:`withdraw`) before returning.
    A transient failure gives ``UNKNOWN``, or is raised with
    ``raise_transient`` (a bulk check honours ``Retry-After``).
    """
    if account.consent_withdrawn_at is not None:
        return ConsentCheck.WITHDRAWN
    realm = get_settings().realm(account.realm)
    try:
        if realm.fetch_userinfo and realm.userinfo_url:
            result = _check_with_userinfo(account, realm.userinfo_url)
        else:
            vault.refresh_tokens(account, force=True)
            result = ConsentCheck.VALID
    except ConsentWithdrawn:
        return ConsentCheck.WITHDRAWN
    except vault.TokensUnavailable:
        return ConsentCheck.NO_TOKENS
    except TransportError as exc:
        if raise_transient:
            raise
        logger.info("consent check of account %s postponed: %s", account.pk, exc)
        return ConsentCheck.UNKNOWN
    except crypto.TokenDecryptionError as exc:
        logger.error("consent check of account %s impossible: %s", account.pk, exc)
        return ConsentCheck.UNKNOWN
    except (OAuthError, TokenValidationError, ApiError, FTAuthError) as exc:
        # invalid_client, a refreshed ID token that fails validation, a 403...:
        # something to fix, not a sign that the user withdrew consent.
        logger.error(
            "consent check of account %s failed: %s %s",
            account.pk,
            type(exc).__name__,
            getattr(exc, "rule", "") or getattr(exc, "error", ""),
        )
        return ConsentCheck.UNKNOWN
    if result is ConsentCheck.VALID:
        now = timezone.now()
        LinkedAccount.objects.filter(pk=account.pk).update(consent_checked_at=now)
        account.consent_checked_at = now
    return result


def _check_with_userinfo(account: LinkedAccount, userinfo_url: str) -> ConsentCheck:
    http = get_http()
    try:
        fetch_userinfo(http, userinfo_url, vault.get_account_access_token(account))
        return ConsentCheck.VALID
    except TokenRejected:
        pass
    # One refresh: invalid_grant here raises ConsentWithdrawn (already acted on).
    fresh = vault.refresh_tokens(account, force=True)
    try:
        fetch_userinfo(http, userinfo_url, crypto.decrypt(fresh.access_token_ciphertext))
        return ConsentCheck.VALID
    except TokenRejected:
        withdraw(account, reason="userinfo refused a freshly refreshed token")
        return ConsentCheck.WITHDRAWN


def withdraw(account: LinkedAccount, reason: str) -> bool:
    """Act on a withdrawal: forget the tokens, end every session, audit, signal.

    Safe to call more than once (two sessions may notice at the same time):
    only the first call records the withdrawal and sends ``consent_revoked``;
    every call ends whatever sessions remain. Returns True for the first call.
    """
    now = timezone.now()
    with transaction.atomic():
        first = bool(
            LinkedAccount.objects.filter(pk=account.pk, consent_withdrawn_at__isnull=True).update(
                consent_withdrawn_at=now
            )
        )
        vault.forget_tokens(account)
        if first:
            audit.record(AuditEvent.Kind.CONSENT_REVOKED, account, reason=reason)
    # After the commit: session stores (cache, files) are not transactional.
    ended = sessions.end_sessions(account, reason=sessions.ENDED_CONSENT_WITHDRAWN)
    if ended:
        audit.record(AuditEvent.Kind.SESSIONS_ENDED, account, count=ended)
    account.refresh_from_db(fields=["consent_withdrawn_at", "session_generation"])
    if first:
        logger.info("consent withdrawn for %s account %s (%s)", account.realm, account.pk, reason)
        for receiver, response in consent_revoked.send_robust(
            sender=LinkedAccount, account=account, reason=reason
        ):
            if isinstance(response, Exception):
                logger.error(
                    "consent_revoked receiver %r failed: %s",
                    receiver,
                    type(response).__name__,
                )
    return first
