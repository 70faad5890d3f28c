"""One refresh at a time per grant, across threads, workers and hosts, holding nothing.

France Travail rotates refresh tokens: two concurrent refreshes with the same
refresh token would make the second one fail with ``invalid_grant``. So the
first caller refreshes and the others wait, then find the fresh tokens.

The right to refresh is a *lease* on the grant's row, the same on every
database: a conditional UPDATE sets ``refresh_lease_until``, committed at once
(ftauth's own connection, ``ftauth.internal.durable``); the holder sends its request with no
transaction open and no row locked, so a sign-out, a back-channel logout or an
admin ending that grant proceeds at once instead of waiting for France Travail
(a row lock held across the HTTP call kept them waiting up to the whole read
timeout, and kept a transaction idle during network I/O, which PgBouncer's
transaction pooling and ``idle_in_transaction_session_timeout`` do not allow).
The others poll until the lease is released or expires. The lease outlasts the
token request's wall-clock deadline (``HTTP_DEADLINE``, retries included) by a margin.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from ..conf import get_settings
from ..models import Grant
from .durable import own_connection, settle

LEASE_MARGIN = 5.0


@dataclass(frozen=True)
class Lease:
    """A held lease: the grant as read once it was taken, and the lease's own mark."""

    grant: Grant
    until: datetime


def lease_duration() -> timedelta:
    """Longer than the token request can last: its wall-clock deadline bounds it."""
    return timedelta(seconds=get_settings().http_deadline + LEASE_MARGIN)


@contextmanager
def refresh_lock(grant: Grant) -> Iterator[Lease | None]:
    """Hold the refresh lease of ``grant``; yields it (``None``: the grant is gone)."""
    delay = 0.02
    while True:
        now = timezone.now()
        until = now + lease_duration()
        free = Q(refresh_lease_until__isnull=True) | Q(refresh_lease_until__lt=now)
        with own_connection() as db:
            rows = Grant.objects.using(db).filter(pk=grant.pk)
            taken = rows.filter(free).update(refresh_lease_until=until)
            current = rows.select_related("account").first() if taken else None
            gone = not taken and not rows.exists()
        if current is not None:
            break
        if gone:
            yield None
            return
        time.sleep(delay)  # another caller is refreshing: wait for its result
        delay = min(delay * 2, 0.25)
    settle(current, current.account)
    try:
        yield Lease(current, until)
    finally:
        # Only our own lease: if it expired and another caller took it, not theirs.
        with own_connection() as db:
            Grant.objects.using(db).filter(pk=grant.pk, refresh_lease_until=until).update(
                refresh_lease_until=None
            )
