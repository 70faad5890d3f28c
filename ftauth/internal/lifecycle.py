"""Ending what a sign-in started: one path for sign-out, refusals, logout, unlink, delete.

Every ending follows the same steps, so none can leave half of itself behind:

1. in one database transaction (the caller's for a person's or an operator's
   action; ftauth's own for a verdict on France Travail's answers, committed
   whatever the caller's transaction does: ``ftauth.internal.durable``): delete
   the grants (their tokens are forgotten) and the registry rows of the
   sessions bound to them (or the whole linked account), and record the audit
   event;
2. after it: put a tombstone in each server-side session, so the user sees
   why on their very next request. If a session store cannot be reached, the
   session ends all the same at the middleware's next check, which finds its
   registry row gone.

A database error in step 1 changes nothing; the caller shows a 503 and the
same call can be made again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from ..models import AccountSession, AuditEvent, Grant, LinkedAccount
from . import audit, sessions
from .durable import own_transaction


@contextmanager
def _transaction(own: bool) -> Iterator[str | None]:
    if own:
        with own_transaction() as db:
            yield db
    else:
        with transaction.atomic():
            yield None


@dataclass(frozen=True)
class Ended:
    """What step 1 removed, and the sessions step 2 must tombstone."""

    grants: int
    sessions: list[sessions.EndedSession]
    rows: int


def forget(
    account: LinkedAccount, grant_ids: Iterable[int] | None = None, *, using: str | None = None
) -> Ended:
    """Step 1 without its transaction (the caller's, on ``using``): delete the grants
    ``grant_ids`` of ``account`` (all: ``None``) and the registry rows of their sessions."""
    grants = Grant.objects.using(using).filter(account=account)
    rows = AccountSession.objects.using(using).filter(account=account)
    if grant_ids is not None:
        grant_ids = list(grant_ids)
        grants = grants.filter(pk__in=grant_ids)
        rows = rows.filter(grant_id__in=grant_ids)
    rows = list(rows)
    AccountSession.objects.using(using).filter(pk__in=[r.pk for r in rows]).delete()
    forgotten = grants.delete()[1].get(Grant._meta.label, 0)
    return Ended(grants=forgotten, sessions=sessions.collect(rows, account.realm), rows=len(rows))


def end_grants(
    account: LinkedAccount,
    grant_ids: Iterable[int] | None = None,
    *,
    kind: str,
    reason: str = sessions.ENDED_SIGNED_OUT,
    own: bool = False,
    **detail: Any,
) -> int:
    """Forget the grants ``grant_ids`` of ``account`` (all of them: ``None``) and end
    the sessions bound to them (all its sessions: ``None``).

    Returns how many sessions were ended. The audit event ``kind`` is recorded
    when anything was there to end: two callers ending the same grant at the
    same moment record it once. ``own``: a verdict on France Travail's answer,
    committed in ftauth's own transaction whatever the caller's does; otherwise
    (a person's or an operator's action) part of the caller's transaction.
    """
    with _transaction(own) as db:
        ended = forget(account, grant_ids, using=db)
        if ended.grants or ended.rows:
            audit.record(
                kind, account, using=db, grants=ended.grants, sessions=ended.rows, **detail
            )
    sessions.tombstone(ended.sessions, reason)
    return ended.rows


def sign_out_session(request: Any) -> None:
    """This session is signing out: forget its grant, end the other sessions bound to it.

    Called for every sign-out, ftauth's or ``django.contrib.auth``'s (signal
    ``user_logged_out``), before the session is flushed.
    """
    marker = sessions.session_marker(request)
    if not marker or not isinstance(marker.get("sid"), str):
        return
    row = AccountSession.objects.select_related("account").filter(sid=marker["sid"]).first()
    if row is None:
        return  # ended already (another device's action, a back-channel logout)
    if row.grant_id is None:
        row.delete()
        return
    end_grants(row.account, [row.grant_id], kind=AuditEvent.Kind.SIGNED_OUT)


def remove_account(
    account: LinkedAccount, *, kind: str, keep_sid: str | None = None, **detail: Any
) -> int:
    """Unlink or delete ``account``: every grant forgotten, every session ended
    (but ``keep_sid``, the session doing the unlinking, which stays signed in)."""
    with _transaction(own=False) as db:
        rows = list(AccountSession.objects.using(db).filter(account=account))
        ended = sessions.collect((r for r in rows if r.sid != keep_sid), account.realm)
        forgotten = Grant.objects.using(db).filter(account=account).count()
        audit.record(kind, account, using=db, grants=forgotten, sessions=len(rows), **detail)
        # Cascades to grants and registry rows; the audit trail keeps realm and sub.
        account.delete(using=db)
    sessions.tombstone(ended, sessions.ENDED_SIGNED_OUT)
    return len(ended)
