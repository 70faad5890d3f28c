"""Session registry: which Django sessions belong to which linked account.

Every sign-in through ftauth records an :class:`AccountSession` and puts a
small marker in the session itself (account id, our session id, the
account's session generation, the time of the last consent check). That lets
ftauth end every session of an account, on every device:

* server-side engines (db, cache, cached_db, file and any engine that can
  load a session by key): the session's data is replaced at once by a
  *tombstone* that only says why it ended. The user is signed out on their
  next request, and the middleware turns the tombstone into the clear
  "consentement retiré" page (a deleted session would look like a visitor
  who never signed in). The tombstone is deleted on that request.
* engines that keep the session in the browser (signed_cookies): nothing can
  be deleted; the account's ``session_generation`` is bumped and the
  ``AccountSession`` row removed, which the middleware notices at its next
  check of that session (at most ``CONSENT_CHECK_INTERVAL`` seconds later).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
import time
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase, UpdateError
from django.contrib.sessions.backends.signed_cookies import SessionStore as CookieStore
from django.db.models import F
from django.http import HttpRequest

from . import crypto
from .models import AccountSession, LinkedAccount

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


def register_session(request: HttpRequest, account: LinkedAccount, op_sid: str | None) -> None:
    """Record that this session was signed in through ``account``.

    Call right after ``django.contrib.auth.login`` (which cycles the session
    key). ``op_sid`` is the identity server's ``sid`` claim, for back-channel
    logout by session.
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
    generation = (
        LinkedAccount.objects.filter(pk=account.pk)
        .values_list("session_generation", flat=True)
        .get()
    )
    sid = secrets.token_urlsafe(24)
    AccountSession.objects.create(
        account=account,
        sid=sid,
        session_key_ciphertext=crypto.encrypt(session.session_key or "") if server_side else "",
        engine=engine,
        op_sid=op_sid or "",
    )
    session[SESSION_KEY] = {
        "account": account.pk,
        "realm": account.realm,
        "sid": sid,
        "generation": generation,
        "checked_at": time.time(),
        "key": _key_digest(session.session_key) if server_side and session.session_key else "",
    }


def forget_session(request: HttpRequest) -> None:
    """Drop the registry row of this session (it is being signed out)."""
    marker = session_marker(request)
    if marker and isinstance(marker.get("sid"), str):
        AccountSession.objects.filter(sid=marker["sid"]).delete()


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


def _tombstone(row: AccountSession, reason: str, realm: str) -> None:
    """Replace a server-side session's data by a tombstone saying why it ended."""
    try:
        session_key = crypto.decrypt(row.session_key_ciphertext)
    except crypto.TokenDecryptionError:
        logger.error("session key of an ftauth session cannot be decrypted; generation bump only")
        return
    if not session_key:
        return
    try:
        store = _store_class(row.engine or settings.SESSION_ENGINE)(session_key)
    except ImportError:
        logger.error("session engine %s of an ftauth session is gone", row.engine)
        return
    if not store.exists(session_key):
        return  # expired or signed out already
    store.clear()  # without loading: nothing of the old session is kept
    store[TOMBSTONE_KEY] = reason
    store[ENDED_REALM_KEY] = realm
    # Deleted between exists() and save(): ended all the same.
    with contextlib.suppress(UpdateError):
        store.save()


def end_sessions(
    account: LinkedAccount,
    *,
    reason: str,
    op_sid: str | None = None,
    except_sid: str | None = None,
) -> int:
    """End the sessions of ``account`` (only those of ``op_sid`` when given).

    Returns how many registered sessions were ended. Ending them all also
    bumps the account's session generation, which ends the sessions no server
    can delete (signed cookies) at their next check.
    """
    rows = AccountSession.objects.filter(account=account)
    if op_sid is not None:
        rows = rows.filter(op_sid=op_sid)
    if except_sid is not None:
        rows = rows.exclude(sid=except_sid)
    ended = 0
    for row in rows:
        if row.session_key_ciphertext:
            _tombstone(row, reason, account.realm)
        ended += 1
    AccountSession.objects.filter(pk__in=[row.pk for row in rows]).delete()
    if op_sid is None and except_sid is None:
        LinkedAccount.objects.filter(pk=account.pk).update(
            session_generation=F("session_generation") + 1
        )
        account.refresh_from_db(fields=["session_generation"])
    return ended
