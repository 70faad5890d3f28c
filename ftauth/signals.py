"""Signals ftauth sends, and its receivers of Django's auth signals.

``consent_revoked`` is sent exactly once per withdrawal, after the
transaction that forgot the tokens and ended the sessions has committed, with ``account`` (the
:class:`~ftauth.models.LinkedAccount`), ``reason`` (a short text for
logs: ``"every grant refused (invalid_grant on refresh)"``...) and
``evidence`` (a dict: ``witness``, ``"refresh"`` or ``"userinfo"``, the answer
that refused; ``grants_refused``, how many of the account's grants were
refused, each with certainty; ``refusals``, what each said). It is sent only on
evidence nothing but a withdrawal produces, as far as France Travail's
interface lets ftauth tell (docs/security.md, "A verdict needs evidence").
Receivers run synchronously; an exception in one of them
does not stop the others (``send_robust``) and is logged.

Three more signals let a site route what ftauth does to its own monitoring
(``ftauth.metrics`` turns them into Prometheus metrics when ``prometheus_client``
is installed):

- ``event``: each audit event, once its transaction committed, with ``kind`` (an
  :class:`~ftauth.models.AuditEvent.Kind` value: ``linked`` is a first sign-in,
  ``signed_in`` a returning one, ``sign_in_failed``, ``tokens_refreshed``,
  ``grant_ended``, ``consent_revoked``, ``backchannel_logout``...), ``realm``,
  ``account`` (or ``None``) and ``detail`` (the event's short facts, never a token);
- ``france_travail_call``: each call ftauth made to France Travail, with ``kind``
  (``discovery``, ``jwks``, ``token``, ``userinfo``, ``api``), ``status`` (the HTTP
  status, ``None`` when no answer came) and ``seconds`` (the call's duration);
- ``quota_refused``: each API call ftauth did not make, or gave up, because of
  France Travail's quota (each is also logged once), with ``api`` (the quota's API
  name), ``reason`` (``"429"``: France Travail's answer; ``"turn"``: no turn within
  the call's budget; ``"waiting"``: this host's waiting room was full,
  ``API_MAX_WAITING``; ``"background"``: a consent check that found no free turn and
  was postponed), ``wait`` (seconds until the schedule has a turn) and
  ``background``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.dispatch import Signal, receiver

consent_revoked = Signal()
event = Signal()
france_travail_call = Signal()
quota_refused = Signal()


@receiver(user_logged_out, dispatch_uid="ftauth.forget_session")
def _forget_session(sender: Any, request: Any = None, **kwargs: Any) -> None:
    # Any sign-out (ours or django.contrib.auth's) forgets the session's grant:
    # no tokens are kept for a device nobody is signed in on.
    if request is not None and hasattr(request, "session"):
        from .internal.lifecycle import sign_out_session

        sign_out_session(request)


@receiver(user_logged_in, dispatch_uid="ftauth.follow_session_key")
def _follow_session_key(sender: Any, request: Any = None, **kwargs: Any) -> None:
    # login() cycles the session key; a session signed in through ftauth that
    # logs in again (same user) keeps its marker but gets a new key.
    if request is not None and hasattr(request, "session"):
        from .internal.sessions import follow_session_key

        follow_session_key(request)
