"""Consent withdrawal: what a persona does on "Mes consentements".

Withdrawing revokes at once every access and refresh token of that
(persona, application) and every code not yet exchanged. France Travail sends
no signal on withdrawal; the sandbox, like an identity server implementing
OpenID Connect Back-Channel Logout 1.0, also POSTs a logout token to the
application's back-channel logout URI, once per session (``sid``). Delivery
is best effort: bounded timeouts, failures logged and reported, never raised.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

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
    deliveries: list[LogoutDelivery] = field(default_factory=list)


def withdraw_consent(persona_sub: str, client_id: str) -> Withdrawal:
    """Withdraw ``persona_sub``'s consent to ``client_id``, revoke, notify."""
    now = timezone.now()
    with transaction.atomic():
        withdrawn = Consent.objects.filter(
            persona_sub=persona_sub, client_id=client_id, withdrawn_at__isnull=True
        ).update(withdrawn_at=now)
        live = IssuedToken.objects.filter(
            persona_sub=persona_sub, client_id=client_id, revoked_at__isnull=True
        )
        sessions = set(live.values_list("realm", "issuer", "backchannel_logout_uri", "sid"))
        revoked = live.update(revoked_at=now)
        AuthorizationCode.objects.filter(
            persona_sub=persona_sub, client_id=client_id, used_at__isnull=True
        ).update(used_at=now)
    deliveries = [
        _send_logout_token(realm, issuer, uri, client_id, persona_sub, sid)
        for realm, issuer, uri, sid in sorted(sessions)
        if uri
    ]
    return Withdrawal(bool(withdrawn), revoked, deliveries)


def _send_logout_token(
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
