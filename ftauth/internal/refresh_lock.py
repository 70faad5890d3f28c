"""One refresh at a time per grant, across threads and processes.

France Travail rotates refresh tokens: two concurrent refreshes with the same
refresh token would make the second one fail with ``invalid_grant``, which
reads as a withdrawal. So the first caller refreshes and the others wait,
then find the fresh token.

* Databases with row locks (PostgreSQL, MySQL, Oracle): ``SELECT ... FOR
  UPDATE`` on the grant, held during the refresh. Only that row waits,
  and the lock goes with the connection if the process dies.
* SQLite has no row locks: holding its database-wide write lock during an
  HTTP call would stall every write of the site (and the embedded sandbox,
  which must write to answer). A *lease* instead: a conditional UPDATE sets
  ``refresh_lease_until``; the winner refreshes outside any transaction and
  clears it; the others poll until it is cleared or expires. The lease lasts
  longer than the token request can (its timeouts plus a margin).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.db import connections, router, transaction
from django.db.models import Q
from django.utils import timezone

from ..conf import get_settings
from ..models import Grant

LEASE_MARGIN = 5.0


@contextmanager
def refresh_lock(grant: Grant) -> Iterator[Grant | None]:
    """Hold the refresh lock of ``grant``; yields the grant as read under it (None: gone)."""
    database = router.db_for_write(Grant)
    if connections[database].features.has_select_for_update:
        with transaction.atomic(using=database):
            yield Grant.objects.using(database).select_for_update().filter(pk=grant.pk).first()
        return
    with _lease(grant, database) as current:
        yield current


@contextmanager
def _lease(grant: Grant, database: str) -> Iterator[Grant | None]:
    conf = get_settings()
    duration = timedelta(seconds=conf.http_connect_timeout + conf.http_read_timeout + LEASE_MARGIN)
    rows = Grant.objects.using(database).filter(pk=grant.pk)
    delay = 0.02
    while True:
        now = timezone.now()
        until = now + duration
        free = Q(refresh_lease_until__isnull=True) | Q(refresh_lease_until__lt=now)
        if rows.filter(free).update(refresh_lease_until=until):
            break
        if not rows.exists():
            yield None
            return
        time.sleep(delay)  # another caller is refreshing: wait for its result
        delay = min(delay * 2, 0.25)
    try:
        yield rows.first()
    finally:
        # Only our own lease: if it expired and another caller took it, not theirs.
        rows.filter(refresh_lease_until=until).update(refresh_lease_until=None)
