"""The audit trail of linked accounts (shown in the admin, purged after a retention period)."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from ..models import AuditEvent, LinkedAccount

logger = logging.getLogger("ftauth.audit")


def record(
    kind: str,
    account: LinkedAccount | None = None,
    *,
    using: str | None = None,
    realm: str = "",
    user_id: int | None = None,
    **detail: Any,
) -> AuditEvent:
    """Record one event. ``detail`` is for short facts (a reason, a count), never a token.

    ``using``: the database alias of the transaction it belongs to (ftauth's own).
    Without an account, ``realm`` says where it happened and ``user_id`` who was
    signed in, if anyone (a failed sign-in). Once the event's transaction commits,
    ``ftauth.signals.event`` tells the site (never for a rolled-back event).
    """
    event = AuditEvent.objects.using(using).create(
        account=account,
        user_id=account.user_id if account is not None else user_id,
        realm=account.realm if account is not None else realm,
        sub=account.sub if account is not None else "",
        kind=kind,
        detail=detail,
    )
    transaction.on_commit(lambda: _announce(event, account), using=using)
    return event


def _announce(event: AuditEvent, account: LinkedAccount | None) -> None:
    from ..signals import event as event_signal

    for receiver, result in event_signal.send_robust(
        AuditEvent, kind=event.kind, realm=event.realm, account=account, detail=event.detail
    ):
        if isinstance(result, Exception):
            logger.error(
                "receiver %r of ftauth.signals.event failed",
                receiver,
                exc_info=(type(result), result, result.__traceback__),
            )
