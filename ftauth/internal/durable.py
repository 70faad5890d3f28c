"""Transactions of ftauth's own, committed whatever the caller's transaction does.

What France Travail answered must outlive the request that asked: a rotated
refresh token rolled back with a view that failed afterwards (``ATOMIC_REQUESTS``)
leaves the grant with a refresh token France Travail already voided, and its
next refresh reads as a refusal. So the vault's writes (refresh lease, the
"answer awaited" mark, the rotated tokens) and the endings they lead to go
through :func:`own_transaction`:

* outside any transaction of the caller (autocommit, or only the test case's
  own atomic blocks, as ``atomic(durable=True)`` sees them): a plain
  transaction on the caller's connection, committed when the block exits;
* inside a caller's transaction: the same block on a second connection to the
  same database, opened for the occasion and closed after, so that its commit
  does not wait for the caller's. SQLite has one write lock per database,
  which the caller's transaction holds or will take: a second connection would
  wait for it until its busy timeout. There the block joins the caller's
  transaction (a savepoint); ``manage.py check`` warns about ``ATOMIC_REQUESTS``
  on SQLite (ftauth.W041), and docs/security.md says what it costs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connections, router, transaction

from ..models import Grant

logger = logging.getLogger("ftauth.durable")

_local = threading.local()


def in_callers_transaction(using: str) -> bool:
    """True when ``using``'s connection is inside an atomic block of the caller's."""
    connection = connections[using]
    if not connection.in_atomic_block:
        return False
    # The blocks a TestCase (or pytest-django) opens around each test stand for
    # "no transaction" here, as they do for ``atomic(durable=True)``.
    blocks = getattr(connection, "atomic_blocks", None) or [None]
    return not all(getattr(block, "_from_testcase", False) for block in blocks)


@contextmanager
def own_connection(using: str | None = None) -> Iterator[str]:
    """The database alias on which ftauth's own transactions run, for the block's length.

    Re-entrant: nested calls in one thread share the connection the outermost opened.
    """
    using = using or router.db_for_write(Grant)
    current = getattr(_local, "aliases", {}).get(using)
    if current is not None:
        yield current
        return
    if not in_callers_transaction(using) or connections[using].vendor == "sqlite":
        if in_callers_transaction(using):
            logger.warning(
                "ftauth writes inside the caller's transaction on SQLite: a rollback of "
                "that transaction also rolls back what France Travail answered (ftauth.W041)"
            )
        yield from _using(using, using)
        return
    side = f"{using}__ftauth_own"
    connections[side] = connections.create_connection(using)
    try:
        yield from _using(using, side)
    finally:
        connections[side].close()
        del connections[side]


def _using(using: str, alias: str) -> Iterator[str]:
    aliases = getattr(_local, "aliases", None)
    if aliases is None:
        aliases = _local.aliases = {}
    aliases[using] = alias
    try:
        yield alias
    finally:
        del aliases[using]


@contextmanager
def own_transaction(using: str | None = None) -> Iterator[str]:
    """A transaction committed at the end of the block, whatever the caller's
    transaction does afterwards; yields the alias to run its queries on."""
    with own_connection(using) as alias, transaction.atomic(using=alias):
        yield alias


def settle(*instances: Any) -> None:
    """Instances read on ftauth's own connection belong to the caller's afterwards
    (the side connection is closed when its block ends)."""
    home = router.db_for_write(Grant)
    for instance in instances:
        if instance is not None and instance._state.db != home:
            instance._state.db = home
