"""Session registry: which Django sessions belong to which grant of which linked account.

Every sign-in through ftauth records an :class:`AccountSession`, bound to the
sign-in's :class:`Grant`, and puts a small marker in the session itself
(account id, grant id, our session id, the time of the last consent check).
The registry row is the session's licence: when it goes (sign-out, refused
grant, back-channel logout, withdrawal, unlink), the session ends, on every
engine:

* server-side engines (db, cache, cached_db, file and any engine that can
  load a session by key): the session's data is also replaced at once by a
  *tombstone* that only says why it ended. The user is signed out on their
  next request, and the middleware turns the tombstone into the clear
  "consentement retiré" page (a deleted session would look like a visitor
  who never signed in). The tombstone is deleted on that request.
* engines that keep the session in the browser (signed_cookies): nothing can
  be deleted; the middleware finds the row gone at its next check of that
  session (at most ``CONSENT_CHECK_INTERVAL`` seconds later).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase, UpdateError
from django.contrib.sessions.backends.signed_cookies import SessionStore as CookieStore
from django.http import HttpRequest

from .. import crypto
from ..models import AccountSession, Grant, LinkedAccount

logger = logging.getLogger("ftauth.sessions")

# The marker ftauth keeps in a session it signed in.
SESSION_KEY = "_ftauth"
# The only content of a session ended server-side: why it ended.
TOMBSTONE_KEY = "_ftauth_ended"
# Beside the tombstone, and in the session left after a withdrawal: the realm
# concerned, so the "consentement retiré" page offers that realm's button only.
ENDED_REALM_KEY = "_ftauth_ended_realm"

ENDED_CONSENT_WITHDRAWN = "consent_withdrawn"
ENDED_SIGNED_OUT = "signed_out"
# France Travail refused this device's grant; the account's consent stands.
ENDED_GRANT_REFUSED = "grant_refused"


def _store_class(engine: str) -> type[SessionBase]:
    return import_module(engine).SessionStore


def is_server_side(engine: str) -> bool:
    """True when the engine keeps sessions on the server, where they can be ended."""
    return not issubclass(_store_class(engine), CookieStore)


def session_marker(request: HttpRequest) -> dict[str, Any] | None:
    """ftauth's marker in this request's session, or ``None`` (reads session data only)."""
    session = getattr(request, "session", None)
    if session is None:
        return None
    marker = session.get(SESSION_KEY)
    return marker if isinstance(marker, dict) else None


def register_session(request: HttpRequest, account: LinkedAccount, grant: Grant) -> None:
    """Record that this session was signed in through ``account`` and uses ``grant``.

    Call right after ``django.contrib.auth.login`` (which cycles the session
    key), inside the sign-in's transaction.
    """
    session = request.session
    engine = settings.SESSION_ENGINE
    server_side = is_server_side(engine)
    if server_side and session.session_key is None:
        session.save()  # get a key now, so the session can be found and ended later
    previous = session_marker(request)
    if previous and isinstance(previous.get("sid"), str):
        # This browser session now belongs to the newer sign-in only.
        AccountSession.objects.filter(sid=previous["sid"]).delete()
    sid = secrets.token_urlsafe(24)
    AccountSession.objects.create(
        account=account,
        grant=grant,
        sid=sid,
        session_key_ciphertext=crypto.encrypt(session.session_key or "") if server_side else "",
        engine=engine,
    )
    session[SESSION_KEY] = {
        "account": account.pk,
        "realm": account.realm,
        "sid": sid,
        "grant": grant.pk,
        "checked_at": time.time(),
        "key": _key_digest(session.session_key) if server_side and session.session_key else "",
    }


def _key_digest(session_key: str) -> str:
    # Only to notice that the key changed, without a query: not a secret.
    return hashlib.sha256(session_key.encode()).hexdigest()[:16]


def follow_session_key(request: HttpRequest) -> None:
    """Keep the registry row in step when the session key changes.

    ``login()`` and ``update_session_auth_hash()`` cycle the key; a row with a
    stale key could not end the session server-side.
    """
    marker = session_marker(request)
    if not marker or not isinstance(marker.get("sid"), str):
        return
    session_key = request.session.session_key
    if not session_key or not is_server_side(settings.SESSION_ENGINE):
        return
    digest = _key_digest(session_key)
    if marker.get("key") == digest:
        return
    AccountSession.objects.filter(sid=marker["sid"]).update(
        session_key_ciphertext=crypto.encrypt(session_key)
    )
    request.session[SESSION_KEY] = {**marker, "key": digest}


@dataclass(frozen=True)
class EndedSession:
    """What is needed to end a session once its registry row is gone."""

    key_ciphertext: str
    engine: str
    # Its realm, left beside the tombstone for the "consentement retiré" page.
    realm: str = ""


def collect(rows: Iterable[AccountSession], realm: str = "") -> list[EndedSession]:
    """The server-side sessions among ``rows`` (of an account of ``realm``), to
    :func:`tombstone` after the rows go."""
    return [
        EndedSession(r.session_key_ciphertext, r.engine, realm)
        for r in rows
        if r.session_key_ciphertext
    ]


def tombstone(sessions: Iterable[EndedSession], reason: str) -> None:
    """Replace each server-side session's data by a tombstone saying why it ended.

    Called after the transaction that deleted the registry rows: session stores
    (cache, files) are not transactional. Best effort: a session that cannot
    be reached now is ended all the same at the middleware's next check, which
    finds its registry row gone.
    """
    for ended in sessions:
        try:
            _tombstone(ended, reason)
        except Exception as exc:
            logger.warning(
                "session store unreachable while ending a session (%s: %s); it ends at its "
                "next consent check",
                type(exc).__name__,
                exc,
            )


def _tombstone(ended: EndedSession, reason: str) -> None:
    try:
        session_key = crypto.decrypt(ended.key_ciphertext)
    except crypto.TokenDecryptionError:
        logger.error("session key of an ftauth session cannot be decrypted; ends at next check")
        return
    if not session_key:
        return
    try:
        store = _store_class(ended.engine or settings.SESSION_ENGINE)(session_key)
    except ImportError:
        logger.error("session engine %s of an ftauth session is gone", ended.engine)
        return
    if not store.exists(session_key):
        return  # expired or signed out already
    store.clear()  # without loading: nothing of the old session is kept
    store[TOMBSTONE_KEY] = reason
    if ended.realm:
        store[ENDED_REALM_KEY] = ended.realm
    # Deleted between exists() and save(): ended all the same.
    with contextlib.suppress(UpdateError):
        store.save()
