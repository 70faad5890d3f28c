"""The sign-in flow between the two redirects: starting it, and completing it.

``start`` records a pending authorization request; ``complete`` checks the
callback against it, exchanges the code and validates everything France Travail
returned, ending with a :class:`VerifiedIdentity`. ``resolve_user`` (called by
the authentication backend) turns that identity into a Django user.

Pending requests live in a signed cookie of the browser that made them (capped,
one per tab), until the callback: a sign-in start writes nothing on the server.
The nonce and PKCE verifier are derived from the ``state`` with a keyed hash, so
they are stored nowhere. The callback records the consumed state's hash (unique),
so a ``state`` works once even under concurrent callbacks.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from django.core import signing
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from .. import crypto, vault
from ..adapter import AccountAdapter, get_adapter
from ..api.client import ApiClient
from ..api.clients import build_client
from ..api.credentials import TokenCredentials
from ..conf import get_settings
from ..core import assurance, tokens
from ..core.authorize import build_authorization_request, state_hash
from ..core.errors import FTAuthError, InvalidResponse, TransportError
from ..identity import VerifiedIdentity
from ..models import AuditEvent, LinkedAccount, PendingAuthorization
from . import audit
from . import claims as claims_of
from .provider import Provider, get_provider
from .redirects import callback_uri, safe_url

__all__ = ["VerifiedIdentity", "complete", "resolve_user", "start"]

logger = logging.getLogger("ftauth.signin")

PENDING_COOKIE = "ftauth_pending"
PENDING_SALT = "ftauth.signin.pending"
# Browsers keep cookies of 4096 bytes; the oldest tabs give way beyond this.
PENDING_COOKIE_BYTES = 3800
# The cookie outlives its requests by this much, so that a browser coming back
# late is told its sign-in expired rather than that it is unknown.
PENDING_COOKIE_GRACE = 3600
# A longer next URL is replaced by the default (it would not fit in the cookie).
MAX_NEXT_URL = 1000


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
    """Another ``error`` on the callback (RFC 6749 4.1.2.1, OIDC Core 3.1.2.6).

    ``error`` is one of the codes the specifications define (anything else is
    ``"other"``); ``error_description``, France Travail's words for the operator
    ("Unknown/invalid scope(s): [...]"), goes to the log only, masked by
    ``views.errors.loggable`` like every message.
    """

    def __init__(self, error: str, description: str = "") -> None:
        self.error = error if error in AUTHORIZE_ERRORS else "other"
        message = f"identity server returned error {self.error}"
        super().__init__(f"{message}: {description[:200]}" if description else message)


class AuthorizeRefusedSite(ProviderErrorResponse):
    """France Travail refused this site's request itself (its client id, scopes,
    parameters): nothing the person can fix, the operator must."""


class AuthorizeUnavailable(ProviderErrorResponse):
    """``server_error`` or ``temporarily_unavailable``: try again later."""


class InteractionRequired(ProviderErrorResponse):
    """A silent request (``prompt=none``) needs the person: ftauth never sends one, so
    the page offers an ordinary sign-in, never an automatic retry (no loop)."""


# RFC 6749 4.1.2.1 and OIDC Core 3.1.2.6 codes, by what they mean for the person.
_AUTHORIZE_ERROR_CLASSES: dict[str, type[ProviderErrorResponse]] = {
    **dict.fromkeys(
        (
            "invalid_request",
            "invalid_client",
            "unauthorized_client",
            "invalid_scope",
            "unsupported_response_type",
            "invalid_request_uri",
            "invalid_request_object",
            "request_not_supported",
            "request_uri_not_supported",
            "registration_not_supported",
        ),
        AuthorizeRefusedSite,
    ),
    **dict.fromkeys(("server_error", "temporarily_unavailable"), AuthorizeUnavailable),
    **dict.fromkeys(
        (
            "login_required",
            "interaction_required",
            "consent_required",
            "account_selection_required",
        ),
        InteractionRequired,
    ),
}
AUTHORIZE_ERRORS = frozenset({"access_denied", *_AUTHORIZE_ERROR_CLASSES})


def authorize_error(error: str, description: str = "") -> ProviderErrorResponse:
    """The error a callback's ``error`` parameter stands for."""
    cls = _AUTHORIZE_ERROR_CLASSES.get(error, ProviderErrorResponse)
    return cls(error, description)


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


def safe_next_url(request: HttpRequest, next_url: str | None) -> str:
    """``next`` only when it stays on this site; otherwise the configured default."""
    return safe_url(request, next_url, get_settings().login_redirect_url)


def derive_secret(state: str, purpose: str) -> str:
    """The nonce (``purpose="nonce"``) or PKCE verifier (``"pkce"``) of the request
    whose state is ``state``: a keyed hash (HMAC-SHA256 under ``SECRET_KEY``), 256
    bits, 43 characters of RFC 7636's unreserved set. Derived again at the callback,
    so neither is stored anywhere: not in the database, not in the cookie."""
    digest = salted_hmac(f"ftauth.signin.{purpose}", state, algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _cookie_path() -> str:
    """The path common to ftauth's login and callback URLs (``/ftauth/``)."""
    login = reverse("ftauth:login", args=["individu"])
    callback = reverse("ftauth:callback", args=["individu"])
    return os.path.commonpath([login, callback]).rstrip("/") + "/"


def _read_pending(request: HttpRequest) -> list[list[Any]]:
    """This browser's pending requests: ``[state hash, realm, expires at, redirect
    URI, next URL]`` each, and the ``acr`` levels a view required when it asked for
    them (``decorators.acr_required``), from its signed cookie (an unreadable one is
    none)."""
    cached = getattr(request, "_ftauth_pending", None)
    if cached is not None:
        return cached
    raw = request.COOKIES.get(PENDING_COOKIE)
    pending: list[list[Any]] = []
    if raw:
        try:
            data = signing.loads(raw, salt=PENDING_SALT)
        except (signing.BadSignature, ValueError):
            data = []
        if isinstance(data, list):
            pending = [
                p
                for p in data
                if isinstance(p, list)
                and len(p) in (5, 6)
                and all(isinstance(x, str) for x in (p[0], p[1], p[3], p[4]))
                and (len(p) == 5 or _is_levels(p[5]))
                and isinstance(p[2], int | float)
                and not isinstance(p[2], bool)
            ]
    request._ftauth_pending = pending  # type: ignore[attr-defined]
    return pending


def _is_levels(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(level, str) for level in value)


def _write_pending(request: HttpRequest, pending: list[list[Any]]) -> None:
    request._ftauth_pending = pending  # type: ignore[attr-defined]
    request._ftauth_pending_changed = True  # type: ignore[attr-defined]


def save_pending(request: HttpRequest, response: Any) -> Any:
    """Set (or clear) the pending cookie on ``response`` when this request changed it.

    Signed (its content is this site's), HttpOnly, SameSite=Lax (France Travail's
    redirect back is a top-level GET), Secure over HTTPS, scoped to ftauth's URLs,
    living an hour longer than a sign-in may take (an expired
    request is then reported as expired). It holds no secret: state hashes, realms,
    expiry times, the redirect URI and where to go next.
    """
    if not getattr(request, "_ftauth_pending_changed", False):
        return response
    pending = request._ftauth_pending  # type: ignore[attr-defined]
    path = _cookie_path()
    if not pending:
        response.delete_cookie(PENDING_COOKIE, path=path, samesite="Lax")
        return response
    value = signing.dumps(pending, salt=PENDING_SALT, compress=True)
    while len(value) > PENDING_COOKIE_BYTES and len(pending) > 1:
        pending = pending[1:]  # the oldest tab gives way
        value = signing.dumps(pending, salt=PENDING_SALT, compress=True)
    response.set_cookie(
        PENDING_COOKIE,
        value,
        max_age=get_settings().pending_login_ttl + PENDING_COOKIE_GRACE,
        path=path,
        secure=request.is_secure(),
        httponly=True,
        samesite="Lax",
    )
    return response


def start(
    request: HttpRequest,
    realm_name: str,
    next_url: str | None = None,
    *,
    acr: str | None = None,
) -> str:
    """Record a pending request in this browser's cookie; return the authorize URL.

    Nothing is written on the server: a browser without a session that starts any
    number of sign-ins grows no table (issue 14). The view sets the cookie
    (:func:`save_pending`). ``acr``, one of the realm's accepted levels, narrows
    this sign-in to that level (a view that needs more than the session has): it
    is asked for, and checked at the callback.
    """
    conf = get_settings()
    provider = get_provider(realm_name)
    realm = provider.endpoints()
    levels: list[str] = []
    if acr and acr in realm.acr_values:
        levels = [acr]
        realm = replace(realm, acr_values=(acr,))
    auth = build_authorization_request(
        realm,
        client_id=provider.client_id,
        redirect_uri=callback_uri(request, realm_name),
        derive=derive_secret,
    )
    next_target = safe_next_url(request, next_url)
    if len(next_target) > MAX_NEXT_URL:
        next_target = safe_next_url(request, None)
    now = time.time()
    pending = [p for p in _read_pending(request) if p[2] > now]
    pending.append(
        [
            state_hash(auth.state),
            realm_name,
            now + conf.pending_login_ttl,
            auth.redirect_uri,
            next_target,
            *([levels] if levels else []),
        ]
    )
    # One pending request per tab, capped: the oldest goes first.
    _write_pending(request, pending[-conf.pending_login_max :])
    return auth.url


def take_pending(request: HttpRequest, realm_name: str, state: str | None) -> PendingRequest:
    """The pending request this callback answers, consumed so it cannot serve twice.

    The cookie binds the request to this browser; the consumed state's hash, written
    now in ``PendingAuthorization`` (unique), makes it single-use even when two
    callbacks with the same cookie race each other or one is replayed: only the
    callback whose insert succeeds goes on. That row holds no secret and is removed
    by ``ftauth_purge`` once the request would have expired anyway.
    """
    if not state:
        raise StateError("the callback carries no state")
    digest = state_hash(state)
    pending = _read_pending(request)
    mine = [p for p in pending if p[0] == digest]
    if not mine:
        raise StateError("state unknown to this browser")
    _write_pending(request, [p for p in pending if p[0] != digest])
    entry = mine[0]
    if entry[1] != realm_name:
        raise StateError("state of another realm")
    if entry[2] <= time.time():
        raise SignInExpired("the sign-in request expired")
    try:
        with transaction.atomic():
            PendingAuthorization.objects.create(
                state_hash=digest,
                realm=realm_name,
                nonce="",
                code_verifier="",
                redirect_uri=entry[3][:2000],
                next_url="",
                expires_at=datetime.fromtimestamp(entry[2], tz=UTC),
            )
    except IntegrityError:
        raise StateError("state already used") from None
    return PendingRequest(
        realm=realm_name,
        redirect_uri=entry[3],
        next_url=entry[4],
        acr_values=tuple(entry[5]) if len(entry) == 6 else (),
        nonce=derive_secret(state, "nonce"),
        code_verifier=derive_secret(state, "pkce"),
    )


@dataclass(frozen=True)
class PendingRequest:
    """What the callback needs of the request it answers (nonce and verifier derived)."""

    realm: str
    redirect_uri: str
    next_url: str
    # The levels this sign-in was narrowed to (empty: the realm's).
    acr_values: tuple[str, ...] = ()
    nonce: str = field(repr=False, default="")
    code_verifier: str = field(repr=False, default="")


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
    if client_id is not None and client_id != provider.client_id:
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
        raise authorize_error(error, params.get("error_description", ""))
    code = params.get("code")
    if not code:
        if provider.realm.acr_essential:
            # ProConnect comes back without a code when the level asked as essential
            # cannot be reached (les-emplois): say so, never start again by itself.
            raise assurance.AssuranceRefused("acr", "the callback has no code: level not met")
        # France Travail's cancel button sends the user back with the state only.
        raise SignInCancelled("the user cancelled at France Travail")
    token_response = tokens.exchange_code(
        provider.http,
        provider.endpoints(),
        provider.client_id,
        provider.client_secret,
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
    assurance.check_acr(id_claims, pending.acr_values or provider.realm.acr_values)
    account = _linked_account(realm_name, id_claims["sub"])
    claims = claims_of.about_the_person(id_claims)
    userinfo = None
    if provider.realm.fetch_userinfo and _wants_userinfo(request, account, id_claims):
        # OIDC Core 5.3.2: an answer about another subject is refused (userinfo_claims).
        userinfo = _userinfo_if_in_time(provider, token_response.access_token, id_claims["sub"])
    if userinfo is not None:
        claims.update(claims_of.about_the_person(userinfo))
    elif account is not None:
        # What was read before, with what this sign-in's ID token says now.
        claims = {**account.claims, **claims}
    assurance.check_idp(claims, provider.realm.allowed_idps)
    if provider.realm.request_amr:
        claims["amr"] = assurance.amr_of(id_claims)
    return VerifiedIdentity(
        realm=realm_name,
        sub=id_claims["sub"],
        claims=claims,
        tokens=token_response,
        id_token_claims=dict(id_claims),
        next_url=pending.next_url,
        userinfo_read=userinfo is not None,
        account=account,
    )


def _wants_userinfo(
    request: HttpRequest, account: LinkedAccount | None, id_claims: dict[str, Any]
) -> bool:
    """A returning sign-in makes one call (the code exchange): userinfo is read at an
    identity's first sign-in, when the stored claims are older than
    ``CLAIMS_MAX_AGE``, or when the account adapter asks for fresh ones."""
    if account is None or claims_of.stale(account):
        return True
    return bool(get_adapter().wants_fresh_claims(request, account, dict(id_claims)))


def _userinfo_if_in_time(provider: Provider, access_token: str, sub: str) -> dict[str, Any] | None:
    """The sign-in's userinfo, or ``None`` when France Travail cannot answer it in
    time (its quota, or no answer): the code is exchanged already, and a sign-in
    must not fail for want of claims the ID token mostly has. The grant's next
    successful witness call (a userinfo answer) completes the stored claims."""
    try:
        answer = _userinfo(provider, access_token)
    except TransportError as exc:
        logger.warning(
            "sign-in on realm %s completes with the ID token's claims; userinfo is read at "
            "the next consent check (%s: %s)",
            provider.realm.name,
            type(exc).__name__,
            exc,
        )
        return None
    return provider.userinfo_claims(answer, sub=sub)


def _userinfo(provider: Provider, access_token: str) -> Any:
    """Userinfo through the API client, like every call with a user's token (same
    pacing, quota and 429 handling): JSON, or a JWT's text (``Provider.userinfo_claims``
    reads either)."""
    credentials = TokenCredentials(access_token)
    client = build_client(
        provider.conf,
        lambda **kw: ApiClient(credentials, **kw),
        # The sign-in's own budget, apart from the pages' (and counted from the
        # callback's arrival, like theirs).
        time_budget=provider.conf.sign_in_time_budget,
    )
    return client.call_url("GET", provider.endpoints().userinfo_url).data


def _linked_account(realm: str, sub: str) -> LinkedAccount | None:
    return LinkedAccount.objects.select_related("user").filter(realm=realm, sub=sub).first()


def _link(
    request: HttpRequest,
    identity: VerifiedIdentity,
    current: Any,
    adapter: AccountAdapter,
    fields: dict[str, Any],
) -> LinkedAccount:
    """A first sign-in with this identity: the signed-in user, or the one the
    adapter finds (``LINK_BY_EMAIL``), or a new one; never a user by its username.
    The account is written once, with ``fields`` (what the sign-in records)."""
    if current is not None:
        user = current
    else:
        user = adapter.find_user_by_email(request, identity)
        if user is None:
            user = adapter.create_user(request, identity)
    if LinkedAccount.objects.filter(user=user, realm=identity.realm).exists():
        raise AccountConflict("this account is already linked to another identity here")
    return LinkedAccount.objects.create(user=user, realm=identity.realm, sub=identity.sub, **fields)


def needs_link_confirmation(request: HttpRequest, identity: VerifiedIdentity) -> bool:
    """A signed-in user met an identity linked to no one: it is linked only once they
    confirm it (a cross-site link to the login URL must not link whatever France
    Travail session the browser holds). Staff accounts cannot link this way."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or identity.account is not None:
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
        "userinfo_read": identity.userinfo_read,
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
        userinfo_read=bool(offer.get("userinfo_read")),
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
    # As the callback found it (one query for the whole sign-in).
    account = identity.account
    kind = AuditEvent.Kind.SIGNED_IN
    # What every sign-in records on the account. New tokens mean the user consented
    # again: a previous withdrawal no longer stands.
    now = timezone.now()
    fields: dict[str, Any] = {
        "claims": identity.claims,
        "email": identity.email,
        "last_login_at": now,
        "consent_withdrawn_at": None,
    }
    if identity.userinfo_read:
        fields["claims_at"] = now
    linked = False
    if account is None:
        try:
            with transaction.atomic():
                account = _link(request, identity, current, adapter, {**fields, "linked_at": now})
            kind = AuditEvent.Kind.LINKED
            linked = True
        except IntegrityError:
            # The same identity's first sign-in on another device won the race:
            # both devices sign in, as one user.
            account = _linked_account(identity.realm, identity.sub)
            if account is None:
                raise
    if current is not None and account.user_id != current.pk:
        raise AccountConflict("this France Travail identity is linked to another account")
    user = account.user
    if not user.is_active or not adapter.can_sign_in(request, user, identity):
        raise AccountRefused("this account may not sign in")
    adapter.update_user(request, user, identity)
    if not linked:
        for name, value in fields.items():
            setattr(account, name, value)
        account.save(update_fields=list(fields))
    grant = vault.new_grant(
        account, identity.tokens, identity.id_token_claims, device=vault.device_of(request)
    )
    audit.record(kind, account, grant=grant.pk)
    user.ftauth_account = account
    user.ftauth_grant = grant
    return user
