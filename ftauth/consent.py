"""Consent: what a refused grant means, and acting on a withdrawal.

France Travail sends no signal when a user withdraws the consent given to an
application: the tokens simply stop working. But tokens also stop working for
reasons that say nothing about consent: the user signed out on that device
(servers that revoke the ended session's grant), a back-channel logout, a
refresh token whose rotation answer was lost in transit. Each sign-in is its
own grant, so the rule is:

* A **grant** is refused when France Travail answers ``invalid_grant`` to its
  refresh, or 401 to a freshly refreshed access token (a 401 alone is not
  enough: the access token may have expired early). A refused grant is
  forgotten and the sessions bound to it end: that device signs in again.
* The **account** is withdrawn only when *every* grant it has is refused:
  before deciding, each other live grant is probed once. A grant that works,
  or cannot be checked now (timeout, 5xx, 429), keeps the account. On
  withdrawal every session ends, every grant is forgotten, an audit event is
  recorded and ``consent_revoked`` is sent, exactly once.

Timeouts, 5xx and 429 answers never refuse anything.
"""

from __future__ import annotations

import enum
import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from . import crypto, vault
from .api.client import ApiClient, ApiResponse
from .api.clients import build_client
from .api.credentials import GrantCredentials
from .conf import get_settings
from .core.errors import ConsentWithdrawn, FTAuthError, TransportError
from .internal import audit, lifecycle, sessions
from .internal.sessions import ENDED_CONSENT_WITHDRAWN, ENDED_GRANT_REFUSED
from .models import AuditEvent, Grant, LinkedAccount
from .signals import consent_revoked

logger = logging.getLogger("ftauth.consent")


class GrantEnded(vault.TokensUnavailable):
    """France Travail refused this device's grant; the user's consent still stands
    (another grant works, or could not be checked). Sign in again on this device."""


class ConsentCheck(enum.StrEnum):
    VALID = "valid"
    # This grant was refused and forgotten; the account keeps its consent.
    ENDED = "ended"
    WITHDRAWN = "withdrawn"
    # The identity server could not tell (unreachable, 5xx, 429, misconfigured):
    # ask again later, change nothing.
    UNKNOWN = "unknown"
    # Nothing to check with: the grant is gone, or has no usable token left.
    NO_TOKENS = "no_tokens"


class _Probe(enum.Enum):
    VALID = "valid"
    REFUSED = "refused"
    UNKNOWN = "unknown"
    GONE = "gone"


class JudgedClient(ApiClient):
    """An API client with a user's grant whose refusals are judged here: the caller
    gets :class:`ConsentWithdrawn` (the account) or :class:`GrantEnded` (this grant)."""

    def __init__(self, grant: Grant, **kwargs: Any) -> None:
        super().__init__(GrantCredentials(grant), **kwargs)
        self.grant = grant

    def call(self, *args: Any, **kwargs: Any) -> ApiResponse:
        try:
            return super().call(*args, **kwargs)
        except vault.GrantRefused as exc:
            verdict = grant_refused(exc.grant, exc.reason)
        if verdict is ConsentCheck.WITHDRAWN:
            raise ConsentWithdrawn("France Travail refused every grant of this account")
        raise GrantEnded("France Travail refused this grant: sign in again")


def client_for(grant: Grant) -> JudgedClient:
    """The API client calling on behalf of the user with ``grant``."""
    return build_client(get_settings(), lambda **kw: JudgedClient(grant, **kw))


def _probe(grant: Grant, *, raise_transient: bool = False) -> tuple[_Probe, str]:
    """Ask France Travail, with this grant's tokens only, whether it still works.

    Uses the realm's userinfo when it has one (the API client: 401, one
    refresh, 401 again is a refusal), otherwise a refresh.
    """
    realm = get_settings().realm(grant.account.realm)
    try:
        if realm.fetch_userinfo and realm.userinfo_url:
            credentials = GrantCredentials(grant)
            client = build_client(get_settings(), lambda **kw: ApiClient(credentials, **kw))
            client.call_url("GET", realm.userinfo_url)
        else:
            vault.refresh(grant, force=True)
    except vault.GrantRefused as exc:
        return _Probe.REFUSED, exc.reason
    except vault.TokensUnavailable:
        return _Probe.GONE, ""
    except TransportError as exc:
        if raise_transient:
            raise
        logger.info("consent check of grant %s postponed: %s", grant.pk, exc)
        return _Probe.UNKNOWN, ""
    except crypto.TokenDecryptionError as exc:
        logger.error("consent check of grant %s impossible: %s", grant.pk, exc)
        return _Probe.UNKNOWN, ""
    except FTAuthError as exc:
        # invalid_client, a refreshed ID token that fails validation, a 403...:
        # something to fix, not a sign that the user withdrew consent.
        logger.error("consent check of grant %s failed: %s: %s", grant.pk, type(exc).__name__, exc)
        return _Probe.UNKNOWN, ""
    now = timezone.now()
    Grant.objects.filter(pk=grant.pk).update(checked_at=now)
    LinkedAccount.objects.filter(pk=grant.account_id).update(consent_checked_at=now)
    grant.checked_at = now
    return _Probe.VALID, ""


def check_grant(grant: Grant, *, raise_transient: bool = False) -> ConsentCheck:
    """Check one grant with France Travail and act on a refusal (:func:`grant_refused`).

    A transient failure gives ``UNKNOWN``, or is raised with ``raise_transient``
    (a bulk check honours ``Retry-After``).
    """
    if grant.account.consent_withdrawn_at is not None:
        return ConsentCheck.WITHDRAWN
    result, reason = _probe(grant, raise_transient=raise_transient)
    if result is _Probe.REFUSED:
        return grant_refused(grant, reason)
    return {
        _Probe.VALID: ConsentCheck.VALID,
        _Probe.UNKNOWN: ConsentCheck.UNKNOWN,
        _Probe.GONE: ConsentCheck.NO_TOKENS,
    }[result]


def grant_refused(grant: Grant, reason: str) -> ConsentCheck:
    """France Travail refused ``grant``: judge the account, then act.

    Every other live grant is probed once first. If one works or cannot be
    checked now, the refused grants are forgotten and their sessions end:
    ``ENDED`` (those devices sign in again). If every grant is refused, the
    account is withdrawn: ``WITHDRAWN``.
    """
    account = grant.account
    refused = {grant.pk: reason}
    verdict = ConsentCheck.WITHDRAWN
    for other in vault.live_grants(account):
        if other.pk in refused:
            continue
        other.account = account
        result, other_reason = _probe(other)
        if result is _Probe.REFUSED:
            refused[other.pk] = other_reason
        elif result is not _Probe.GONE:  # GONE: forgotten meanwhile (signed out elsewhere)
            verdict = ConsentCheck.ENDED
            break
    if verdict is ConsentCheck.WITHDRAWN:
        withdraw(account, reason=f"every grant refused ({reason})")
        return verdict
    for grant_id, why in refused.items():
        lifecycle.end_grants(
            account,
            [grant_id],
            kind=AuditEvent.Kind.GRANT_ENDED,
            reason=ENDED_GRANT_REFUSED,
            why=why,
        )
    return verdict


def withdraw(account: LinkedAccount, reason: str) -> bool:
    """Act on a withdrawal: forget every grant, end every session, audit, signal.

    Safe to call more than once (two devices may notice at the same time):
    only the first call records the withdrawal; every call ends whatever
    sessions remain; ``consent_revoked`` is sent once, by whichever call
    finds it still due (a call that stopped halfway leaves it due). Returns
    True for the first call.
    """
    now = timezone.now()
    with transaction.atomic():
        first = bool(
            LinkedAccount.objects.filter(pk=account.pk, consent_withdrawn_at__isnull=True).update(
                consent_withdrawn_at=now, consent_revoked_pending=True
            )
        )
        ended = lifecycle.forget(account)
        if first or ended.rows or ended.grants:
            audit.record(
                AuditEvent.Kind.CONSENT_REVOKED if first else AuditEvent.Kind.SESSIONS_ENDED,
                account,
                reason=reason,
                grants=ended.grants,
                sessions=ended.rows,
            )
    # After the commit: session stores (cache, files) are not transactional.
    sessions.tombstone(ended.sessions, ENDED_CONSENT_WITHDRAWN)
    account.refresh_from_db(fields=["consent_withdrawn_at"])
    if first:
        logger.info("consent withdrawn for %s account %s (%s)", account.realm, account.pk, reason)
    send_pending_revocation(account, reason)
    return first


def send_pending_revocation(account: LinkedAccount, reason: str = "") -> bool:
    """Send ``consent_revoked`` if a withdrawal of ``account`` still owes it; once.

    The conditional update elects one sender among concurrent callers.
    """
    if not LinkedAccount.objects.filter(pk=account.pk, consent_revoked_pending=True).update(
        consent_revoked_pending=False
    ):
        return False
    for receiver, response in consent_revoked.send_robust(
        sender=LinkedAccount, account=account, reason=reason
    ):
        if isinstance(response, Exception):
            logger.error("consent_revoked receiver %r failed", receiver, exc_info=response)
    return True
