"""Counts the database work of each request, for the sign-in benchmark only.

``QueryCount`` (first in ``MIDDLEWARE`` of the bench settings, so the session
save is counted too) answers with ``X-Bench-DB: <queries> <commits>`` and
``X-Bench-DB-Control: <statements>``.

A query is a statement that reads or writes data (``SELECT``, ``INSERT``,
``UPDATE``, ``DELETE``...). Transaction control (``BEGIN``, ``SAVEPOINT``,
``RELEASE``, ``ROLLBACK``) is counted apart, in ``X-Bench-DB-Control``: which
backend sends it through a cursor differs (SQLite's ``BEGIN IMMEDIATE`` does,
PostgreSQL's implicit ``BEGIN`` does not), so counting it as queries would
compare backends rather than sites. A commit is a transaction made durable: an
explicit ``COMMIT`` (the end of an outermost ``atomic`` block) or a write
statement run in autocommit mode, outside any transaction, which commits on its
own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connection
from django.http import HttpRequest, HttpResponse

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
CONTROL = ("BEGIN", "SAVEPOINT", "RELEASE", "ROLLBACK", "COMMIT")


class QueryCount:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        counts = {"queries": 0, "commits": 0, "control": 0}

        def execute(run: Callable[..., Any], sql: str, params: Any, many: bool, context: Any):
            statement = sql.lstrip().upper()
            if statement.startswith(CONTROL):
                counts["control"] += 1
            else:
                counts["queries"] += 1
                if not connection.in_atomic_block and statement.startswith(WRITES):
                    counts["commits"] += 1
            return run(sql, params, many, context)

        original_commit = connection.commit

        def commit() -> None:
            counts["commits"] += 1
            original_commit()

        connection.commit = commit
        try:
            with connection.execute_wrapper(execute):
                response = self.get_response(request)
        finally:
            del connection.commit  # back to the class's method
        response["X-Bench-DB"] = f"{counts['queries']} {counts['commits']}"
        response["X-Bench-DB-Control"] = str(counts["control"])
        return response
