"""The grants France Travail's witness answered for while serving this request.

A page's own successful call to the realm's witness (its userinfo) with a
grant, or a successful refresh of it, is that grant's consent check for the
interval: ``ConsentMiddleware``, which runs a due check after the view, does
not ask the same question again (issue 18: one call where one is enough). A
grant judged during the request (refused, ended) is noted too: there is
nothing left to ask about it. Per request (a context variable the middleware
opens); outside a request nothing is noted.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

_noted: contextvars.ContextVar[set[int] | None] = contextvars.ContextVar(
    "ftauth_witnessed", default=None
)


@contextlib.contextmanager
def watching() -> Iterator[set[int]]:
    """Note, for the block, the grants the witness answered for."""
    noted: set[int] = set()
    token = _noted.set(noted)
    try:
        yield noted
    finally:
        _noted.reset(token)


def note(grant_id: int | None) -> None:
    noted = _noted.get()
    if noted is not None and grant_id is not None:
        noted.add(grant_id)


def noted(grant_id: int | None) -> bool:
    return grant_id in (_noted.get() or ())
