"""The audit trail of linked accounts (shown in the admin, purged after a retention period)."""

from __future__ import annotations

from typing import Any

from ..models import AuditEvent, LinkedAccount


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
    signed in, if anyone (a failed sign-in).
    """
    return AuditEvent.objects.using(using).create(
        account=account,
        user_id=account.user_id if account is not None else user_id,
        realm=account.realm if account is not None else realm,
        sub=account.sub if account is not None else "",
        kind=kind,
        detail=detail,
    )
