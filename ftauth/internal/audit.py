"""The audit trail of linked accounts (shown in the admin, purged after a retention period)."""

from __future__ import annotations

from typing import Any

from ..models import AuditEvent, LinkedAccount


def record(
    kind: str, account: LinkedAccount | None = None, *, using: str | None = None, **detail: Any
) -> AuditEvent:
    """Record one event. ``detail`` is for short facts (a reason, a count), never a token.

    ``using``: the database alias of the transaction it belongs to (ftauth's own).
    """
    return AuditEvent.objects.using(using).create(
        account=account,
        user_id=account.user_id if account is not None else None,
        realm=account.realm if account is not None else "",
        sub=account.sub if account is not None else "",
        kind=kind,
        detail=detail,
    )
