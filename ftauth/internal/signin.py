"""The sign-in flow between the two redirects: starting it, and completing it.

``start`` records a pending authorization request; ``complete`` checks the
callback against it, exchanges the code and validates everything France Travail
returned, ending with a :class:`VerifiedIdentity`. ``resolve_user`` (called by
the authentication backend) turns that identity into a Django user.

Pending requests live in the database, keyed by the hash of their ``state``
and deleted when used, so a ``state`` works once even under concurrent
callbacks; the browser's session lists the hashes it started (capped, one per
tab), which binds each request to the browser that made it.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from .. import crypto, vault
from ..adapter import AccountAdapter, get_adapter
from ..api.client import ApiClient
from ..api.clients import build_client
from ..api.credentials import TokenCredentials
from ..conf import get_settings
from ..core import tokens
from ..core.authorize import build_authorization_request, state_hash
from ..core.errors import FTAuthError, InvalidResponse, TokenValidationError
from ..identity import VerifiedIdentity
from ..models import AuditEvent, LinkedAccount, PendingAuthorization
from . import audit
from .provider import Provider, get_provider
from .redirects import safe_url

__all__ = ["VerifiedIdentity", "complete", "resolve_user", "start"]

logger = logging.getLogger("ftauth.signin")

SESSION_PENDING = "ftauth_pending"


class SignInError(FTAuthError):
    """A sign-in that cannot complete; views turn each subclass into a page."""


class StateError(SignInError):
    """Missing, unknown, reused or expired ``state``: no token request is made."""


class SignInExpired(StateError):
    """The pending request outlived ``PENDING_LOGIN_TTL``: the user took too long."""


class SignInCancelled(SignInError):
    """The user cancelled at France Travail (a return with ``state`` only)."""


class ConsentRefused(SignInError):
    """``error=access_denied``: the user refused consent."""


class ProviderErrorResponse(SignInError):
    """Another ``error`` on the callback."""

    def __init__(self, error: str) -> None:
        super().__init__(f"identity server returned error {error!r}")
        self.error = error


class CallbackMismatch(SignInError):
    """The callback's ``iss`` or ``client_id`` parameter is not what it must be."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{rule}: {message}")
        self.rule = rule


class AccountRefused(SignInError):
    """The account adapter refused this user, or the user is inactive."""


class AccountConflict(SignInError):
    """The identity belongs to another user, or the user has another in this realm."""


class StaffLinkRefused(AccountRefused):
    """A staff or superuser account, signed in, met an identity it has not linked.

    Linking from a signed-in session is refused for them outright (docs/security.md,
    "Linking accounts"): whoever gets a France Travail session into an
    administrator's browser must not gain a way to sign in as that administrator.
    """


class LinkOfferExpired(SignInError):
    """The confirmation of a link came too late, from another user, or twice."""


SESSION_LINK_OFFER = "ftauth_link_offer"
# Seconds the signed-in user has to confirm a link: the identity's tokens wait
# that long, encrypted, in the session.
LINK_OFFER_TTL = 300


def callback_uri(request: HttpRequest, realm: str) -> str:
    return request.build_absolute_uri(reverse("ftauth:callback", args=[realm]))


def safe_next_url(request: HttpRequest, next_url: str | None) -> str:
    """``next`` only when it stays on this site; otherwise the configured default."""
    return safe_url(request, next_url, get_settings().login_redirect_url)


def _pending_list(request: HttpRequest) -> list[list[Any]]:
    now = time.time()
    pending = request.session.get(SESSION_PENDING) or []
    return [p for p in pending if isinstance(p, list) and len(p) == 2 and p[1] > now]


def start(request: HttpRequest, realm_name: str, next_url: str | None = None) -> str:
    """Record a pending request for this browser; return the authorize URL."""
    conf = get_settings()
    realm = conf.realm(realm_name)
    auth = build_authorization_request(
        realm, client_id=conf.client_id, redirect_uri=callback_uri(request, realm_name)
    )
    expires_at = timezone.now() + timedelta(seconds=conf.pending_login_ttl)
    digest = state_hash(auth.state)
    pending = _pending_list(request)
    pending.append([digest, expires_at.timestamp()])
    # One pending request per tab, capped: the oldest goes first.
    dropped, pending = pending[: -conf.pending_login_max], pending[-conf.pending_login_max :]
    with transaction.atomic():
        if dropped:
            PendingAuthorization.objects.filter(state_hash__in=[d[0] for d in dropped]).delete()
        PendingAuthorization.objects.create(
            state_hash=digest,
            realm=realm_name,
            nonce=auth.nonce,
            code_verifier=auth.code_verifier,
            redirect_uri=auth.redirect_uri,
            next_url=safe_next_url(request, next_url),
            expires_at=expires_at,
        )
    request.session[SESSION_PENDING] = pending
    return auth.url


def take_pending(request: HttpRequest, realm_name: str, state: str | None) -> PendingAuthorization:
    """The pending request this callback answers, removed so it cannot serve twice."""
    if not state:
        raise StateError("the callback carries no state")
    digest = state_hash(state)
    pending = request.session.get(SESSION_PENDING) or []
    mine = [p for p in pending if isinstance(p, list) and len(p) == 2 and p[0] == digest]
    if not mine:
        raise StateError("state unknown to this browser session")
    request.session[SESSION_PENDING] = [p for p in pending if not (p and p[0] == digest)]
    # The browser's own record says when the request expires, even once the
    # row is purged: the user is told it expired, not that it is unknown.
    expired = mine[0][1] <= time.time()
    row = PendingAuthorization.objects.filter(state_hash=digest, realm=realm_name).first()
    # Only the request whose delete removes the row goes on: a state is
    # single-use even when two callbacks with it race each other.
    if row is None or PendingAuthorization.objects.filter(pk=row.pk).delete()[0] != 1:
        if expired:
            raise SignInExpired("the sign-in request expired")
        raise StateError("state already used or unknown")
    if expired or row.expires_at <= timezone.now():
        raise SignInExpired("the sign-in request expired")
    return row


def check_callback_parameters(params: Any, provider: Provider) -> None:
    """RFC 9207 ``iss`` and France Travail's ``client_id`` on the callback.

    A present ``iss`` or ``client_id`` must be right on every callback, errors and
    cancellations included (RFC 9207 section 2): a foreign server's error must not
    pass for ours. A missing ``iss`` is refused only with a ``code``, the one answer
    that sends anything to a token endpoint; France Travail's cancel button comes
    back with the ``state`` alone.
    """
    metadata = provider.metadata()
    iss = params.get("iss")
    if iss is not None:
        if iss != metadata.issuer:
            raise CallbackMismatch("iss_parameter", "iss parameter is not the realm's issuer")
    elif metadata.iss_parameter_supported and params.get("code"):
        raise CallbackMismatch(
            "iss_parameter", "iss parameter missing although the server announces it"
        )
    client_id = params.get("client_id")
    if client_id is not None and client_id != provider.conf.client_id:
        raise CallbackMismatch("client_id_parameter", "client_id parameter is not ours")


def complete(request: HttpRequest, realm_name: str) -> VerifiedIdentity:
    """Check the callback, exchange the code, validate the tokens and userinfo."""
    params = request.GET
    pending = take_pending(request, realm_name, params.get("state"))
    provider = get_provider(realm_name)
    check_callback_parameters(params, provider)
    error = params.get("error")
    if error == "access_denied":
        raise ConsentRefused("the user refused consent")
    if error:
        raise ProviderErrorResponse(error[:64])
    code = params.get("code")
    if not code:
        # France Travail's cancel button sends the user back with the state only.
        raise SignInCancelled("the user cancelled at France Travail")
    conf = provider.conf
    token_response = tokens.exchange_code(
        provider.http,
        provider.realm,
        conf.client_id,
        conf.client_secret,
        code=code,
        redirect_uri=pending.redirect_uri,
        code_verifier=pending.code_verifier,
    )
    if not token_response.id_token:
        raise InvalidResponse("the token response has no id_token")
    id_claims = provider.validate_id_token(
        token_response.id_token,
        nonce=pending.nonce,
        token_response_nonce=token_response.nonce,
    )
    claims = dict(id_claims)
    if provider.realm.fetch_userinfo:
        userinfo = _userinfo(provider, token_response.access_token)
        # OIDC Core 5.3.2: a userinfo answer for another subject must be refused.
        if userinfo.get("sub") != id_claims["sub"]:
            raise TokenValidationError("userinfo_sub", "userinfo sub differs from the ID token's")
        claims.update(userinfo)
    for technical in ("nonce", "at_hash", "c_hash", "aud", "azp", "exp", "iat", "auth_time"):
        claims.pop(technical, None)
    return VerifiedIdentity(
        realm=realm_name,
        sub=id_claims["sub"],
        claims=claims,
        tokens=token_response,
        id_token_claims=dict(id_claims),
        next_url=pending.next_url,
    )


def _userinfo(provider: Provider, access_token: str) -> dict[str, Any]:
    """Userinfo through the API client, like every call with a user's token (same
    pacing, quota and 429 handling)."""
    credentials = TokenCredentials(access_token)
    client = build_client(provider.conf, lambda **kw: ApiClient(credentials, **kw))
    data = client.call_url("GET", provider.realm.userinfo_url).data
    if not isinstance(data, dict):
        raise InvalidResponse("userinfo answer is not a JSON object")
    return data


def _linked_account(identity: VerifiedIdentity) -> LinkedAccount | None:
    return (
        LinkedAccount.objects.select_related("user")
        .filter(realm=identity.realm, sub=identity.sub)
        .first()
    )


def _link(
    request: HttpRequest, identity: VerifiedIdentity, current: Any, adapter: AccountAdapter
) -> LinkedAccount:
    """A first sign-in with this identity: the signed-in user, or the one the
    adapter finds (``LINK_BY_EMAIL``), or a new one; never a user by its username."""
    if current is not None:
        user = current
    else:
        user = adapter.find_user_by_email(request, identity)
        if user is None:
            user = adapter.create_user(request, identity)
    if LinkedAccount.objects.filter(user=user, realm=identity.realm).exists():
        raise AccountConflict("this account is already linked to another identity here")
    return LinkedAccount.objects.create(user=user, realm=identity.realm, sub=identity.sub)


def needs_link_confirmation(request: HttpRequest, identity: VerifiedIdentity) -> bool:
    """A signed-in user met an identity linked to no one: it is linked only once they
    confirm it (a cross-site link to the login URL must not link whatever France
    Travail session the browser holds). Staff accounts cannot link this way."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or _linked_account(identity) is not None:
        return False
    if user.is_staff or user.is_superuser:
        raise StaffLinkRefused("staff accounts are not linked from a signed-in session")
    return True


def offer_link(request: HttpRequest, identity: VerifiedIdentity) -> None:
    """Keep the verified identity, encrypted, in the session until the user confirms."""
    t = identity.tokens
    offer = {
        "user": request.user.pk,
        "until": time.time() + LINK_OFFER_TTL,
        "realm": identity.realm,
        "sub": identity.sub,
        "claims": identity.claims,
        "id_token_claims": identity.id_token_claims,
        "next_url": identity.next_url,
        "tokens": {
            "access_token": t.access_token,
            "token_type": t.token_type,
            "expires_in": t.expires_in,
            "scope": list(t.scope),
            "refresh_token": t.refresh_token,
            "id_token": t.id_token,
            "obtained_at": t.obtained_at,
        },
    }
    request.session[SESSION_LINK_OFFER] = crypto.encrypt(json.dumps(offer))


def take_link_offer(request: HttpRequest) -> VerifiedIdentity:
    """The identity offered to this user, removed from the session (single use)."""
    sealed = request.session.pop(SESSION_LINK_OFFER, None)
    if not isinstance(sealed, str):
        raise LinkOfferExpired("no link to confirm")
    try:
        offer = json.loads(crypto.decrypt(sealed))
    except (FTAuthError, ValueError):
        raise LinkOfferExpired("the link offer cannot be read") from None
    if offer.get("user") != request.user.pk or offer.get("until", 0) <= time.time():
        raise LinkOfferExpired("the link offer expired or is another user's")
    t = offer["tokens"]
    return VerifiedIdentity(
        realm=offer["realm"],
        sub=offer["sub"],
        claims=offer["claims"],
        tokens=tokens.TokenResponse(
            access_token=t["access_token"],
            token_type=t["token_type"],
            expires_in=t["expires_in"],
            scope=tuple(t["scope"]),
            refresh_token=t["refresh_token"],
            id_token=t["id_token"],
            obtained_at=t["obtained_at"],
        ),
        id_token_claims=offer["id_token_claims"],
        next_url=offer["next_url"],
    )


def resolve_user(request: HttpRequest, identity: VerifiedIdentity) -> Any:
    """The Django user for this identity (linked, newly linked, or newly created),
    with a new grant holding this sign-in's tokens.

    Runs inside the caller's transaction: any failure leaves nothing behind.
    After an unlink, the identity is unknown again: its next sign-in is a
    first sign-in (docs/security.md, "Linking accounts").
    """
    adapter = get_adapter()
    user = getattr(request, "user", None)
    current = user if user is not None and user.is_authenticated else None
    account = _linked_account(identity)
    kind = AuditEvent.Kind.SIGNED_IN
    if account is None:
        try:
            with transaction.atomic():
                account = _link(request, identity, current, adapter)
            kind = AuditEvent.Kind.LINKED
        except IntegrityError:
            # The same identity's first sign-in on another device won the race:
            # both devices sign in, as one user.
            account = _linked_account(identity)
            if account is None:
                raise
    if current is not None and account.user_id != current.pk:
        raise AccountConflict("this France Travail identity is linked to another account")
    user = account.user
    if not user.is_active or not adapter.can_sign_in(request, user, identity):
        raise AccountRefused("this account may not sign in")
    adapter.update_user(request, user, identity)
    account.claims = identity.claims
    account.email = identity.email
    account.last_login_at = timezone.now()
    # New tokens mean the user consented again: a previous withdrawal no longer stands.
    account.consent_withdrawn_at = None
    account.consent_checked_at = account.last_login_at
    account.save(
        update_fields=[
            "claims",
            "email",
            "last_login_at",
            "consent_withdrawn_at",
            "consent_checked_at",
        ]
    )
    grant = vault.new_grant(
        account, identity.tokens, identity.id_token_claims, device=vault.device_of(request)
    )
    audit.record(kind, account, grant=grant.pk)
    user.ftauth_account = account
    user.ftauth_grant = grant
    return user
