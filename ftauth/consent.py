"""Consent: what France Travail's answers prove, and acting on a withdrawal.

France Travail sends no signal when a user withdraws the consent given to an
application: the tokens simply stop working. A site acts on ftauth's verdict
(``consent_revoked``) by deleting what it holds, so a verdict is taken only on
evidence nothing else produces (docs/security.md, "A verdict needs evidence"):

* **The witness.** Only the realm's witness can refuse a grant: its refresh
  (``invalid_grant``), or, on realms with a userinfo API, that userinfo
  answering 401 to an access token refreshed just before. Any other API's 401
  is that API's answer (a subscription the application lacks, a gateway's
  whim): raised to the caller as an ``ApiError``; it triggers a probe of the
  witness, never a verdict by itself. Timeouts, 5xx and 429 refuse nothing.
* **Latest tokens.** A refusal counts only when ftauth holds the grant's
  latest tokens: after a refresh whose answer was never stored (lost in
  transit, a failure before it was committed), France Travail may have rotated
  the refresh token away from us. Such a grant is *uncertain*
  (``Grant.rotation_uncertain_since``) until a refresh is stored again, and its
  refusal ends that grant only: that device signs in again, no withdrawal.
* **Every grant.** Each sign-in is its own grant. A certain refusal ends that
  grant; the account is withdrawn only when every grant it has is refused
  with certainty: each other live grant is probed first, and one that works,
  cannot be checked now, or is uncertain keeps the account. On withdrawal
  every session ends, every grant is forgotten, an audit event is recorded and
  ``consent_revoked`` is sent exactly once, with the reason and the evidence.
"""

from __future__ import annotations

import enum
import logging
from datetime import timedelta
from typing import Any

from django.utils import timezone

from . import vault
from .api.client import ApiClient, ApiResponse
from .api.clients import build_client
from .api.credentials import GrantCredentials
from .conf import get_settings
from .core.errors import ApiError, ConsentWithdrawn, FTAuthError, TransportError
from .internal import audit, claims, lifecycle, sessions, witness
from .internal.durable import own_connection, own_transaction
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
    # The grant was ended while being checked (its refreshed ID token is invalid).
    ENDED = "ended"


def witness_url(realm_name: str) -> str | None:
    """The realm's userinfo, when it is the realm's witness (else the refresh is)."""
    realm = get_settings().realm(realm_name)
    return realm.userinfo_url if realm.fetch_userinfo and realm.userinfo_url else None


def is_witness(realm_name: str, url: str) -> bool:
    """True when ``url`` (an answer's) is the realm's userinfo witness."""
    expected = witness_url(realm_name)
    return expected is not None and url.split("?", 1)[0] == expected.split("?", 1)[0]


class JudgedClient(ApiClient):
    """An API client with a user's grant whose refusals are judged here: the caller
    gets :class:`ConsentWithdrawn` (the account) or :class:`GrantEnded` (this grant)."""

    credentials: GrantCredentials

    def __init__(self, grant: Grant, **kwargs: Any) -> None:
        super().__init__(GrantCredentials(grant), **kwargs)
        self.grant = grant

    def call(self, method: str, url: str, api: str, **kwargs: Any) -> ApiResponse:
        try:
            response = super().call(method, url, api, **kwargs)
        except vault.GrantRefused as exc:
            verdict = grant_refused(exc)
        except vault.GrantInvalidated:
            raise GrantEnded("the refreshed ID token was refused: sign in again") from None
        except ApiError as exc:
            if exc.status != 401 or witness_url(self.grant.account.realm) is None:
                raise
            # Another API refused a token just refreshed: not evidence, but worth
            # asking the witness, which alone can refuse the grant.
            verdict = check_grant(self.credentials.grant)
            if verdict not in (ConsentCheck.WITHDRAWN, ConsentCheck.ENDED):
                raise
        else:
            if is_witness(self.grant.account.realm, url):
                # The page's own call is the witness: that is this grant's check.
                witnessed(self.credentials.grant, response.data)
            return response
        if verdict is ConsentCheck.WITHDRAWN:
            raise ConsentWithdrawn("France Travail refused every grant of this account")
        raise GrantEnded("France Travail refused this grant: sign in again")


def witnessed(grant: Grant, userinfo: Any = None) -> None:
    """The realm's witness just accepted ``grant`` (its userinfo answered its
    token, or, on a realm without userinfo, its refresh succeeded): that is its
    consent check for the interval, whoever asked (a page, the middleware, a
    command). The account's checks go by its latest one, so the
    account's other devices need not ask either. A userinfo answer also
    completes the account's claims when they are stale (``internal.claims``).

    Recorded on ftauth's own connection: a check that happened stays checked
    whatever the caller's transaction does. A grant confirmed within the last
    half interval is not written again (pages may call userinfo often).
    """
    witness.note(grant.pk)
    now = timezone.now()
    half = timedelta(seconds=get_settings().consent_check_interval / 2)
    if grant.checked_at is None or grant.checked_at <= now - half:
        with own_connection() as db:
            Grant.objects.using(db).filter(pk=grant.pk).update(checked_at=now)
        grant.checked_at = now
    if userinfo is not None:
        claims.complete_from_userinfo(grant.account, userinfo)


def client_for(grant: Grant) -> JudgedClient:
    """The API client calling on behalf of the user with ``grant``."""
    return build_client(get_settings(), lambda **kw: JudgedClient(grant, **kw))


def _probe(
    grant: Grant, *, raise_transient: bool = False, background: bool = False
) -> tuple[_Probe, vault.GrantRefused | None]:
    """Ask the realm's witness, with this grant's tokens only, whether it still works.

    Its userinfo when it has one (the API client: 401, one refresh, 401 again
    is a refusal), otherwise a refresh. A ``background`` probe (a check ftauth
    makes of its own accord) takes only a turn under the quota that is free now.
    """
    userinfo = None
    try:
        vault.validate_pending_id_token(grant)
        url = witness_url(grant.account.realm)
        if url:
            credentials = GrantCredentials(grant)
            client = build_client(
                get_settings(),
                lambda **kw: ApiClient(credentials, **kw),
                background=background,
            )
            userinfo = client.call_url("GET", url).data
            grant = credentials.grant
        else:
            grant = vault.refresh(grant, force=True)
    except vault.GrantRefused as exc:
        return _Probe.REFUSED, exc
    except vault.GrantInvalidated:
        return _Probe.ENDED, None
    except vault.TokensUnreadable as exc:
        # A key is missing: the grant cannot be checked, which proves nothing (it
        # keeps the account, like any grant that cannot be checked now).
        logger.error("consent check of grant %s impossible: %s", grant.pk, exc)
        return _Probe.UNKNOWN, None
    except vault.TokensUnavailable:
        return _Probe.GONE, None
    except TransportError as exc:
        if raise_transient:
            raise
        logger.info("consent check of grant %s postponed: %s", grant.pk, exc)
        return _Probe.UNKNOWN, None
    except FTAuthError as exc:
        # invalid_client, a 403 from userinfo...: something to fix, not a sign
        # that the user withdrew consent.
        logger.error("consent check of grant %s failed: %s: %s", grant.pk, type(exc).__name__, exc)
        return _Probe.UNKNOWN, None
    witnessed(grant, userinfo)
    return _Probe.VALID, None


def check_grant(
    grant: Grant, *, raise_transient: bool = False, background: bool = False
) -> ConsentCheck:
    """Check one grant with the realm's witness and act on a refusal (:func:`grant_refused`).

    A transient failure gives ``UNKNOWN``, or is raised with ``raise_transient``
    (a bulk check honours ``Retry-After``). ``background``: the check is
    ftauth's own idea (the middleware, ``ftauth_check_consent``): it takes only a
    turn under the quota that is free now, and is postponed (``UNKNOWN``) otherwise,
    so pages and sign-ins come first.
    """
    if grant.account.consent_withdrawn_at is not None:
        return ConsentCheck.WITHDRAWN
    result, refusal = _probe(grant, raise_transient=raise_transient, background=background)
    if refusal is not None:
        return grant_refused(refusal)
    return {
        _Probe.VALID: ConsentCheck.VALID,
        _Probe.UNKNOWN: ConsentCheck.UNKNOWN,
        _Probe.GONE: ConsentCheck.NO_TOKENS,
        _Probe.ENDED: ConsentCheck.ENDED,
    }[result]


def _why(refusal: vault.GrantRefused) -> str:
    if refusal.certain:
        return refusal.reason
    return f"{refusal.reason}, after a refresh whose answer was never stored"


def grant_refused(refusal: vault.GrantRefused) -> ConsentCheck:
    """The witness refused a grant: judge the account, then act.

    An uncertain refusal ends that grant only. Otherwise every other live grant
    is probed once first. If one works, cannot be checked now, is refused
    without certainty, or was ended by ftauth itself (a refreshed ID token it
    refuses: not France Travail's refusal), the refused grants are forgotten and their sessions
    end: ``ENDED`` (those devices sign in again). If every grant is refused
    with certainty, the account is withdrawn: ``WITHDRAWN``.
    """
    grant = refusal.grant
    account = grant.account
    witness.note(grant.pk)
    refused = {grant.pk: _why(refusal)}
    verdict = ConsentCheck.WITHDRAWN if refusal.certain else ConsentCheck.ENDED
    for other in vault.live_grants(account) if refusal.certain else ():
        if other.pk in refused:
            continue
        other.account = account
        result, other_refusal = _probe(other)
        if other_refusal is not None:
            refused[other.pk] = _why(other_refusal)
            if not other_refusal.certain:
                verdict = ConsentCheck.ENDED
        elif result is not _Probe.GONE:  # gone: ended meanwhile elsewhere
            # Working, not checkable now, or ended by ftauth itself (its refreshed ID
            # token refused: France Travail had just refreshed it, refusing nothing).
            verdict = ConsentCheck.ENDED
            break
    if verdict is ConsentCheck.WITHDRAWN:
        evidence = {
            "witness": refusal.witness,
            "grants_refused": len(refused),
            "refusals": sorted(set(refused.values())),
        }
        withdraw(account, reason=f"every grant refused ({refusal.reason})", evidence=evidence)
        return verdict
    for grant_id, why in refused.items():
        lifecycle.end_grants(
            account,
            [grant_id],
            kind=AuditEvent.Kind.GRANT_ENDED,
            reason=ENDED_GRANT_REFUSED,
            own=True,
            why=why,
        )
    return verdict


def withdraw(account: LinkedAccount, reason: str, evidence: dict[str, Any] | None = None) -> bool:
    """Act on a withdrawal: forget every grant, end every session, audit, signal.

    Safe to call more than once (two devices may notice at the same time):
    only the first call records the withdrawal; every call ends whatever
    sessions remain; ``consent_revoked`` is sent once, by whichever call
    finds it still due (a call that stopped halfway leaves it due). Returns
    True for the first call. Committed in ftauth's own transaction, whatever
    the caller's does: the signal never announces what a rollback undid.
    """
    now = timezone.now()
    evidence = evidence or {}
    with own_transaction() as db:
        first = bool(
            LinkedAccount.objects.using(db)
            .filter(pk=account.pk, consent_withdrawn_at__isnull=True)
            .update(consent_withdrawn_at=now, consent_revoked_pending=True)
        )
        ended = lifecycle.forget(account, using=db)
        if first or ended.rows or ended.grants:
            audit.record(
                AuditEvent.Kind.CONSENT_REVOKED if first else AuditEvent.Kind.SESSIONS_ENDED,
                account,
                using=db,
                reason=reason,
                evidence=evidence,
                grants=ended.grants,
                sessions=ended.rows,
            )
    # After the commit: session stores (cache, files) are not transactional.
    sessions.tombstone(ended.sessions, ENDED_CONSENT_WITHDRAWN)
    account.refresh_from_db(fields=["consent_withdrawn_at"])
    if first:
        logger.info("consent withdrawn for %s account %s (%s)", account.realm, account.pk, reason)
    send_pending_revocation(account)
    return first


def send_pending_revocation(account: LinkedAccount) -> bool:
    """Send ``consent_revoked`` if a withdrawal of ``account`` still owes it; once.

    The conditional update elects one sender among concurrent callers. The
    reason and the evidence come from the withdrawal's audit event, so a
    sender that is not the one that noticed sends them too.
    """
    with own_transaction() as db:
        elected = (
            LinkedAccount.objects.using(db)
            .filter(pk=account.pk, consent_revoked_pending=True)
            .update(consent_revoked_pending=False)
        )
        event = (
            AuditEvent.objects.using(db)
            .filter(account_id=account.pk, kind=AuditEvent.Kind.CONSENT_REVOKED)
            .order_by("-created_at", "-pk")
            .first()
            if elected
            else None
        )
    if not elected:
        return False
    detail = event.detail if event is not None else {}
    for receiver, response in consent_revoked.send_robust(
        sender=LinkedAccount,
        account=account,
        reason=detail.get("reason", ""),
        evidence=detail.get("evidence", {}),
    ):
        if isinstance(response, Exception):
            logger.error("consent_revoked receiver %r failed", receiver, exc_info=response)
    return True
