"""Consent withdrawal (what a persona does on "Mes consentements"), and the
back-channel logout tokens the sandbox can send.

Withdrawing revokes at once every access and refresh token of that
(persona, application) and every code not yet exchanged, and, as France
Travail documents, sends no signal: the application finds out when its
tokens stop working.

Back-channel logout (OpenID Connect Back-Channel Logout 1.0) is something
France Travail's documentation does not mention; servers that implement it
send it when a session ends at the server. The sandbox does so only when
``FTAUTH_SANDBOX["BACKCHANNEL_ON_END_SESSION"]`` asks (see ``end_session``).
Delivery is best effort: bounded timeouts, failures logged and reported,
never raised.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from ftauth.core.errors import FTAuthError
from ftauth.core.http import HttpClient, HttpConfig

from .clients import get_client
from .conf import get_sandbox_settings
from .jwts import build_logout_token
from .models import AuthorizationCode, Consent, IssuedToken

logger = logging.getLogger("ftauth.sandbox")


@dataclass(frozen=True)
class LogoutDelivery:
    """One back-channel logout POST and how it went."""

    uri: str
    sid: str
    status: int | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass(frozen=True)
class Withdrawal:
    withdrawn: bool
    revoked_tokens: int


def withdraw_consent(persona_sub: str, client_id: str) -> Withdrawal:
    """Withdraw ``persona_sub``'s consent to ``client_id`` and revoke its tokens at once."""
    now = timezone.now()
    with transaction.atomic():
        withdrawn = Consent.objects.filter(
            persona_sub=persona_sub, client_id=client_id, withdrawn_at__isnull=True
        ).update(withdrawn_at=now)
        live = IssuedToken.objects.filter(
            persona_sub=persona_sub, client_id=client_id, revoked_at__isnull=True
        )
        revoked = live.update(revoked_at=now)
        AuthorizationCode.objects.filter(
            persona_sub=persona_sub, client_id=client_id, used_at__isnull=True
        ).update(used_at=now)
    return Withdrawal(bool(withdrawn), revoked)


def end_login_session(sid: str, client_id: str) -> list[LogoutDelivery]:
    """What the server does to ``client_id``'s grant when the login session ``sid`` ends.

    France Travail's behaviour is not documented; the variants real servers
    show are settings, so that clients can be tested under each:
    ``END_SESSION_REVOKES_GRANT`` (certified servers such as oidc-provider
    revoke the tokens issued in that session) and ``BACKCHANNEL_ON_END_SESSION``
    (a logout token with ``sid`` to the client's back-channel URI).
    """
    conf = get_sandbox_settings()
    tokens = IssuedToken.objects.filter(sid=sid, client_id=client_id, revoked_at__isnull=True)
    sessions = set(tokens.values_list("realm", "issuer", "backchannel_logout_uri", "persona_sub"))
    if conf.end_session_revokes_grant:
        tokens.update(revoked_at=timezone.now())
    if not conf.backchannel_on_end_session:
        return []
    return [
        send_logout_token(realm, issuer, uri, client_id, sub, sid)
        for realm, issuer, uri, sub in sorted(sessions)
        if uri
    ]


def send_logout_token(
    realm: str, issuer: str, uri: str, client_id: str, sub: str, sid: str
) -> LogoutDelivery:
    client = get_client(client_id)
    if client is None:
        return LogoutDelivery(uri, sid, error="client no longer registered")
    token = build_logout_token(realm=realm, issuer=issuer, client=client, sub=sub, sid=sid)
    timeout = get_sandbox_settings().backchannel_timeout
    http = HttpClient(HttpConfig(connect_timeout=timeout, read_timeout=timeout, retries=0))
    try:
        response = http.post(uri, data={"logout_token": token})
    except FTAuthError as exc:
        logger.warning("sandbox back-channel logout to %s failed: %s", uri, exc)
        return LogoutDelivery(uri, sid, error=str(exc))
    if response.status_code != 200:
        logger.warning("sandbox back-channel logout to %s answered %s", uri, response.status_code)
    return LogoutDelivery(uri, sid, status=response.status_code)
