"""The token vault: each grant's tokens, encrypted at rest, kept fresh.

Every read and write of a token goes through here. Tokens are encrypted with
``ftauth.crypto`` before they reach the database and decrypted only when a
caller needs one; they never appear in a ``repr``, a log line or an error.

The vault hands out tokens and says when France Travail refused a grant
(:class:`GrantRefused`); what a refusal means for the user's consent is the
business of ``ftauth.consent`` alone.

Concurrent callers that find an access token about to expire cause a single
refresh: the first one takes the grant's refresh lease
(``ftauth.internal.refresh_lock``) and re-reads the row; the others wait for
the lease and find the refreshed token when they re-read. No transaction or
lock is held while France Travail answers, and what it answers is committed
at once, in a transaction of ftauth's own (``ftauth.internal.durable``).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import crypto
from .conf import get_settings
from .core import tokens as token_endpoint
from .core.errors import (
    FTAuthError,
    InvalidGrant,
    InvalidResponse,
    OAuthError,
    QuotaExceeded,
    TokenValidationError,
    TransportError,
)
from .core.realms import ACCESS_TOKEN_LIFETIME
from .core.tokens import TokenResponse
from .internal import audit, witness
from .internal.durable import own_connection, own_transaction
from .internal.provider import get_provider
from .internal.refresh_lock import Lease, refresh_lock
from .models import AuditEvent, Grant, LinkedAccount

logger = logging.getLogger("ftauth.vault")

# Claims of an ID token that say who and for whom, kept to check refreshed ID
# tokens (OIDC Core 12.2) and back-channel logout; never the token itself,
# nor ``nonce`` or ``at_hash`` (derived from secrets).
IDENTITY_CLAIMS = ("iss", "sub", "aud", "azp", "sid", "auth_time", "acr", "amr", "iat", "exp")


class TokensUnavailable(FTAuthError):
    """No usable token: the identity is not linked, its grant was forgotten,
    or the tokens expired with no refresh token. The user must sign in again."""


class TokensUnreadable(TokensUnavailable, crypto.TokenDecryptionError):
    """This grant's tokens cannot be decrypted with any key of ``FTAUTH["TOKEN_KEYS"]``
    (the key they were encrypted with was removed or changed).

    The grant cannot serve, so this device signs in again (a new grant, under the
    current key); the ciphertext is left untouched, and putting the key back
    recovers it. ``manage.py check`` reports such grants (ftauth.E022).
    """


def _decrypt(ciphertext: str) -> str:
    try:
        return crypto.decrypt(ciphertext)
    except crypto.TokenDecryptionError:
        raise TokensUnreadable() from None


def is_readable(grant: Grant) -> bool:
    """Whether the configured keys decrypt the grant's tokens (the access and refresh
    tokens: what the grant serves with)."""
    try:
        for ciphertext in (grant.access_token_ciphertext, grant.refresh_token_ciphertext):
            crypto.decrypt(ciphertext)
    except crypto.TokenDecryptionError:
        return False
    return True


class GrantInvalidated(TokensUnavailable):
    """France Travail's refreshed ID token for this grant is invalid: the grant was
    ended (that device signs in again). Says nothing about consent. ``rule``
    names the check that failed."""

    def __init__(self, rule: str) -> None:
        super().__init__(f"the refreshed ID token is invalid ({rule}): sign in again")
        self.rule = rule


# The realm's witness of a grant, the only answers that can refuse one
# (docs/security.md, "A verdict needs evidence").
WITNESS_REFRESH = "refresh"
WITNESS_USERINFO = "userinfo"


class GrantRefused(FTAuthError):
    """The realm's witness refused this grant: ``invalid_grant`` on its refresh, or
    the realm's userinfo answering 401 to a freshly refreshed access token.

    ``certain`` is False when ftauth may not hold the grant's latest tokens (the
    answer to an earlier refresh was never stored): the refusal then ends that
    grant only, never the account's consent. Raised by the vault and the API
    client, judged by ``ftauth.consent``.
    """

    def __init__(self, grant: Grant, reason: str, *, certain: bool, witness: str) -> None:
        super().__init__(reason)
        self.grant = grant
        self.reason = reason
        self.certain = certain
        self.witness = witness


class TokenStatus(enum.StrEnum):
    VALID = "valid"
    EXPIRING = "expiring"
    EXPIRED = "expired"
    UNREADABLE = "unreadable"
    WITHDRAWN = "withdrawn"
    NONE = "none"

    @property
    def label(self) -> str:
        return str(STATUS_LABELS[self])


STATUS_LABELS = {
    TokenStatus.VALID: _("valides"),
    TokenStatus.EXPIRING: _("bientôt expirés"),
    TokenStatus.EXPIRED: _("expirés"),
    TokenStatus.UNREADABLE: _("illisibles : reconnectez-vous"),
    TokenStatus.WITHDRAWN: _("consentement retiré"),
    TokenStatus.NONE: _("aucun jeton"),
}


def _expires_at(tokens: TokenResponse) -> datetime:
    # France Travail always sends expires_in; if a server does not, assume the
    # documented 25-minute lifetime rather than "never expires".
    lifetime = tokens.expires_in if tokens.expires_in is not None else ACCESS_TOKEN_LIFETIME
    obtained = datetime.fromtimestamp(tokens.obtained_at, tz=timezone.get_current_timezone())
    return obtained + timedelta(seconds=lifetime)


def identity_claims(claims: dict[str, Any]) -> dict[str, Any]:
    return {name: claims[name] for name in IDENTITY_CLAIMS if name in claims}


def device_of(request: HttpRequest | None) -> str:
    """A short, non-identifying name for the browser ("Firefox 128 · Linux"), shown in
    the admin; the ``User-Agent`` itself is not kept."""
    from .internal.devices import describe

    if request is None:
        return ""
    return describe(request.headers.get("User-Agent", "")[:1000])


def new_grant(
    account: LinkedAccount,
    tokens: TokenResponse,
    id_token_claims: dict[str, Any],
    *,
    device: str = "",
) -> Grant:
    """Encrypt and store the tokens of one completed sign-in as a new grant.

    The caller holds the transaction (the sign-in's), in which the account's
    withdrawal, if any, is cleared: new tokens mean the user consented again.
    """
    sid = id_token_claims.get("sid")
    now = timezone.now()
    return Grant.objects.create(
        account=account,
        access_token_ciphertext=crypto.encrypt(tokens.access_token),
        refresh_token_ciphertext=crypto.encrypt(tokens.refresh_token or ""),
        id_token_ciphertext=crypto.encrypt(tokens.id_token or ""),
        expires_at=_expires_at(tokens),
        scopes=" ".join(tokens.scope),
        id_token_claims=identity_claims(id_token_claims),
        op_sid=sid[:255] if isinstance(sid, str) else "",
        device=device[:200],
        obtained_at=now,
        # The sign-in itself just proved consent: the next check can wait.
        checked_at=now,
    )


def live_grants(account: LinkedAccount) -> Iterable[Grant]:
    """The account's grants, latest first (``Grant.objects.latest_first``)."""
    return Grant.objects.filter(account=account).latest_first()


def latest_grant(account: LinkedAccount) -> Grant | None:
    """The grant to use outside a request (jobs, commands): the most recently refreshed."""
    return live_grants(account).first()


def session_grant(request: HttpRequest, account: LinkedAccount) -> Grant | None:
    """The grant this request's session signed in with, when it is one of ``account``'s.

    Only the session's own sign-in: a session signed in on another realm, or
    whose grant was ended, gets no grant (never another device's tokens).
    """
    from .internal.sessions import session_marker

    marker = session_marker(request)
    if not marker or marker.get("account") != account.pk:
        return None
    grant_id = marker.get("grant")
    if not isinstance(grant_id, int):
        return None
    return Grant.objects.filter(pk=grant_id, account=account).first()


def get_id_token(grant: Grant | None) -> str:
    """The grant's last ID token (for ``id_token_hint``), or ``""``."""
    if grant is None:
        return ""
    return _decrypt(grant.id_token_ciphertext)


def status_of(grant: Grant | None, *, now: datetime | None = None) -> TokenStatus:
    """Where a grant's tokens stand, for the account page and the admin.

    Tokens the configured keys cannot decrypt are ``UNREADABLE`` whatever their
    expiry says: they serve no call until their key is back.
    """
    if grant is None:
        return TokenStatus.NONE
    if not is_readable(grant):
        return TokenStatus.UNREADABLE
    now = now or timezone.now()
    if grant.expires_at is None or grant.expires_at <= now:
        # Expired access tokens are renewed on use while a refresh token exists.
        return TokenStatus.EXPIRED
    if grant.expires_at - timedelta(seconds=get_settings().refresh_margin) <= now:
        return TokenStatus.EXPIRING
    return TokenStatus.VALID


def account_status(account: LinkedAccount, grant: Grant | None = None) -> TokenStatus:
    """The account's status: withdrawn, or that of ``grant`` (default: the latest)."""
    if account.consent_withdrawn_at is not None:
        return TokenStatus.WITHDRAWN
    return status_of(grant if grant is not None else latest_grant(account))


def _needs_refresh(grant: Grant, now: datetime) -> bool:
    margin = timedelta(seconds=get_settings().refresh_margin)
    return grant.expires_at is None or grant.expires_at - margin <= now


def access_token(grant: Grant) -> str:
    """A valid access token of ``grant``, refreshed first if about to expire.

    Raises :class:`GrantRefused` (France Travail refused the refresh),
    :class:`TokensUnavailable` (forgotten, or expired without a refresh token),
    :class:`TransportError` (France Travail unreachable and the token expired),
    :class:`TokensUnreadable` (a key is missing: sign in again).
    """
    if not _needs_refresh(grant, timezone.now()):
        return _decrypt(grant.access_token_ciphertext)
    return _decrypt(refresh(grant).access_token_ciphertext)


def refresh(grant: Grant, *, force: bool = False) -> Grant:
    """Refresh the grant's tokens once, however many callers ask at the same time.

    Without ``force``, a grant that another caller refreshed while this one
    waited for the lease is returned as is. ``invalid_grant`` raises
    :class:`GrantRefused` (certain only if ftauth held the grant's latest
    tokens). A transient failure (timeout, 5xx, 429) raises
    :class:`TransportError`, unless the refresh was not forced and the current
    access token has not actually expired yet: it is then returned.

    What France Travail answers is committed before anything else can fail
    (ftauth's own transaction, whatever the caller's does): the refreshed ID
    token is validated after the tokens it came with are safe.
    """
    asked_at = timezone.now()
    with refresh_lock(grant) as lease:
        # Read under the lease: a caller that waited sees the first one's result.
        if lease is None:
            raise TokensUnavailable("this grant was forgotten: the user must sign in again")
        current = lease.grant
        validate_pending_id_token(current)
        if not force and current.refreshed_at and current.refreshed_at >= asked_at:
            return current
        if not force and not _needs_refresh(current, timezone.now()):
            return current
        refresh_token = _decrypt(current.refresh_token_ciphertext)
        if not refresh_token:
            if not force and status_of(current) is not TokenStatus.EXPIRED:
                return current
            raise TokensUnavailable("no refresh token: the user must sign in again")
        # Did ftauth store the answer to every refresh it sent for this grant?
        certain = current.rotation_uncertain_since is None
        _await_answer(lease, current)
        provider = get_provider(current.account.realm)
        try:
            fresh = token_endpoint.refresh(
                provider.http,
                provider.endpoints(),
                provider.client_id,
                provider.client_secret,
                refresh_token=refresh_token,
            )
        except InvalidGrant:
            if certain:
                # An answer: France Travail refused the latest refresh token, rotated nothing.
                _answer_settled(current)
            raise GrantRefused(
                current, "invalid_grant on refresh", certain=certain, witness=WITNESS_REFRESH
            ) from None
        except (OAuthError, QuotaExceeded):
            # An answer that says the request was not carried out: nothing rotated.
            if certain:
                _answer_settled(current)
            raise
        except TransportError:
            if not force and status_of(current) is not TokenStatus.EXPIRED:
                logger.warning(
                    "refresh of %s tokens failed transiently; the current one is still valid",
                    current.account.realm,
                )
                return current
            raise
        _store_refreshed(current, fresh)
    validate_pending_id_token(current)
    return current


def _await_answer(lease: Lease, grant: Grant) -> None:
    """Mark, committed, that a refresh request is about to go out (the mark stays if
    its answer never gets stored)."""
    since = grant.rotation_uncertain_since or timezone.now()
    with own_connection() as db:
        marked = (
            Grant.objects.using(db)
            .filter(pk=grant.pk, refresh_lease_until=lease.until)
            .update(rotation_uncertain_since=since)
        )
    if not marked:
        raise TokensUnavailable("this grant was forgotten: the user must sign in again")
    grant.rotation_uncertain_since = since


def _answer_settled(grant: Grant) -> None:
    with own_connection() as db:
        Grant.objects.using(db).filter(pk=grant.pk).update(rotation_uncertain_since=None)
    grant.rotation_uncertain_since = None


def _store_refreshed(grant: Grant, fresh: TokenResponse) -> None:
    """Store a refresh's answer in a transaction of its own, before anything can fail.

    Compare-and-set on the refresh token that was used: a grant ended while the
    request was in flight is not brought back by its late answer.
    """
    now = timezone.now()
    values: dict[str, Any] = {
        "access_token_ciphertext": crypto.encrypt(fresh.access_token),
        "expires_at": _expires_at(fresh),
        "refreshed_at": now,
        "rotation_uncertain_since": None,
        # The refresh is the realm's witness too: France Travail just vouched for
        # this grant, which is its consent check for the interval.
        "checked_at": now,
    }
    if fresh.refresh_token:
        # Refresh token rotation: the old one may already be void.
        values["refresh_token_ciphertext"] = crypto.encrypt(fresh.refresh_token)
    if fresh.scope:
        values["scopes"] = " ".join(fresh.scope)
    if fresh.id_token:
        values["pending_id_token_ciphertext"] = crypto.encrypt(fresh.id_token)
    with own_transaction() as db:
        stored = (
            Grant.objects.using(db)
            .filter(pk=grant.pk, refresh_token_ciphertext=grant.refresh_token_ciphertext)
            .update(**values)
        )
    if not stored:
        raise TokensUnavailable("this grant was ended while it was being refreshed")
    for name, value in values.items():
        setattr(grant, name, value)
    witness.note(grant.pk)
    try:
        with own_transaction() as db:
            audit.record(AuditEvent.Kind.TOKENS_REFRESHED, grant.account, using=db, grant=grant.pk)
    except DatabaseError as exc:
        # The tokens are stored; only the trail misses a line.
        logger.error("audit of a refresh not recorded: %s: %s", type(exc).__name__, exc)


# Checks of a token's times: a refused one may be this server's clock, not the token.
CLOCK_RULES = frozenset({"iat", "exp"})


def validate_pending_id_token(grant: Grant) -> None:
    """Validate a refreshed ID token stored but not validated yet (OIDC Core 12.2).

    The JWKS unreachable: kept for later, the tokens serve meanwhile. Its times
    refused (``iat`` in the future, ``exp`` past): kept too, never accepted, and
    the next refresh brings another; that is this server's clock against France
    Travail's as often as the token's fault, and says nothing about the grant.
    Invalid otherwise (another ``sub``, a bad signature...): the grant is ended,
    its sessions sign in again (:class:`GrantInvalidated`).
    """
    ciphertext = grant.pending_id_token_ciphertext
    if not ciphertext:
        return
    try:
        claims = _validate_refreshed_id_token(grant.account, grant, _decrypt(ciphertext))
    except (TransportError, InvalidResponse) as exc:
        # The JWKS (or discovery) unreachable or garbled: France Travail's trouble, not
        # the token's. Kept for later; the tokens it came with serve meanwhile.
        logger.warning("refreshed ID token of grant %s not validated yet: %s", grant.pk, exc)
        return
    except TokenValidationError as exc:
        from .internal import lifecycle
        from .internal.sessions import ENDED_GRANT_REFUSED

        rule = exc.rule
        if rule == "jwks":  # an unusable key set: the server's, as above
            logger.warning("refreshed ID token of grant %s not validated yet: %s", grant.pk, exc)
            return
        if rule in CLOCK_RULES:
            logger.warning(
                "refreshed ID token of grant %s not accepted (%s): check this server's clock; "
                "the tokens serve meanwhile",
                grant.pk,
                exc,
            )
            return
        logger.error("refreshed ID token of grant %s refused (%s): grant ended", grant.pk, rule)
        lifecycle.end_grants(
            grant.account,
            [grant.pk],
            kind=AuditEvent.Kind.GRANT_ENDED,
            reason=ENDED_GRANT_REFUSED,
            own=True,
            why=f"refreshed ID token refused ({rule})",
        )
        raise GrantInvalidated(rule) from None
    values = {
        "id_token_ciphertext": ciphertext,
        "id_token_claims": identity_claims(claims),
        "pending_id_token_ciphertext": "",
    }
    with own_transaction() as db:
        Grant.objects.using(db).filter(pk=grant.pk, pending_id_token_ciphertext=ciphertext).update(
            **values
        )
    for name, value in values.items():
        setattr(grant, name, value)


def _validate_refreshed_id_token(
    account: LinkedAccount, grant: Grant, id_token: str
) -> dict[str, Any]:
    """OIDC Core 12.2: signature and claims like at sign-in (no nonce of ours),
    and the same ``iss``, ``sub``, ``aud``, ``azp`` and ``auth_time`` as the ID token
    it replaces."""
    from .core.idtoken import check_refreshed_id_token
    from .internal.provider import get_provider

    provider = get_provider(account.realm)
    claims = provider.validate_id_token(id_token, nonce=None)
    # A grant stored before identity claims were kept: what is known of it.
    previous = grant.id_token_claims or {
        "iss": provider.metadata().issuer,
        "sub": account.sub,
        "aud": claims.get("aud"),
        "azp": claims.get("azp"),
    }
    check_refreshed_id_token(claims, previous)
    return claims
