"""The one place where sign-in errors become pages.

Every failure of the flow ends here with a clear page and a status code,
never a 500, and never with a signed-in session.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.db import DatabaseError, transaction
from django.http import Http404, HttpRequest, HttpResponse, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ..conf import check_sandbox_allowed, get_settings
from ..core.assurance import AssuranceRefused
from ..core.errors import (
    ConfigurationError,
    FTAuthError,
    InvalidClient,
    InvalidGrant,
    QuotaExceeded,
    TokenValidationError,
    TransportError,
)
from ..core.realms import REALM_NAMES
from ..internal import audit
from ..internal.debug import secret_free_errors
from ..internal.framing import no_framing
from ..internal.signin import (
    AccountConflict,
    AccountRefused,
    AuthorizeRefusedSite,
    AuthorizeUnavailable,
    CallbackMismatch,
    ConsentRefused,
    InteractionRequired,
    LinkOfferExpired,
    SignInCancelled,
    SignInExpired,
    StaffLinkRefused,
    StateError,
)
from ..models import AuditEvent

logger = logging.getLogger("ftauth.signin")


def error_page(
    request: HttpRequest,
    *,
    title: str,
    message: str,
    status: int,
    retry_url: str | None = None,
    home_url: str | None = None,
) -> HttpResponse:
    response = TemplateResponse(
        request,
        "ftauth/error.html",
        {
            "title": title,
            "message": message,
            "retry_url": retry_url,
            "status": status,
            "home_url": home_url,
        },
        status=status,
    )
    response["Cache-Control"] = "no-store"
    return response


# What each failure shows, most specific first: (errors, title, message, status, retry).
# A "transient" failure (no answer, 5xx, 429, database) is a 503 and says when to retry.
PAGES: list[tuple[tuple[type[BaseException], ...], Any, Any, int, bool]] = [
    (
        (SignInExpired,),
        _("Demande de connexion expirée"),
        # The message is completed with the time limit (PENDING_LOGIN_TTL) below.
        "",
        400,
        True,
    ),
    (
        (StateError,),
        _("Demande de connexion inconnue ou expirée"),
        _(
            "Cette demande de connexion est inconnue, a déjà servi ou a expiré. "
            "Recommencez la connexion."
        ),
        400,
        True,
    ),
    (
        (SignInCancelled,),
        _("Connexion annulée"),
        _("Vous avez annulé la connexion avec France Travail."),
        200,
        True,
    ),
    (
        (ConsentRefused,),
        _("Autorisation refusée"),
        _(
            "Vous n’avez pas autorisé ce site à accéder à vos informations France Travail. "
            "Vous pouvez réessayer quand vous le souhaitez."
        ),
        200,
        True,
    ),
    (
        (InvalidGrant,),
        _("Code expiré ou déjà utilisé"),
        _(
            "Le code de connexion de France Travail a expiré ou a déjà été utilisé. "
            "Recommencez la connexion."
        ),
        400,
        True,
    ),
    (
        # invalid_client: our credentials are wrong, not the user's doing.
        (TransportError, DatabaseError, ConfigurationError, InvalidClient),
        _("Service indisponible"),
        _("Le service de connexion est momentanément indisponible. Réessayez."),
        503,
        True,
    ),
    (
        (AccountConflict,),
        _("Compte déjà lié"),
        _(
            "Cette identité France Travail est déjà liée à un autre compte, ou votre compte "
            "est déjà lié à une autre identité France Travail."
        ),
        409,
        False,
    ),
    (
        # ProConnect: a level below the site's, or an identity provider it does not
        # accept. No retry link: the same account would only come back the same way.
        (AssuranceRefused,),
        _("Niveau de sécurité insuffisant"),
        _(
            "Votre compte professionnel n’a pas été authentifié avec le niveau de sécurité "
            "que ce site demande (par exemple une double authentification), ou il vient "
            "d’un fournisseur d’identité que ce site n’accepte pas. Contactez votre "
            "fournisseur d’identité, ou connectez-vous avec un autre compte."
        ),
        403,
        False,
    ),
    (
        (StaffLinkRefused,),
        _("Liaison refusée"),
        _(
            "Un compte d’administration ne peut pas être lié à une identité France Travail "
            "depuis une session ouverte. Déconnectez-vous d’abord, ou demandez à un autre "
            "administrateur."
        ),
        403,
        False,
    ),
    (
        (LinkOfferExpired,),
        _("Liaison expirée"),
        _(
            "Cette demande de liaison a expiré ou a déjà servi. Rien n’a été lié : "
            "recommencez la connexion avec France Travail."
        ),
        400,
        False,
    ),
    (
        (AccountRefused,),
        _("Connexion refusée"),
        _("Ce compte ne peut pas se connecter à ce site."),
        403,
        False,
    ),
    (
        (AuthorizeRefusedSite,),
        _("Connexion impossible depuis ce site"),
        _(
            "France Travail a refusé la demande de connexion de ce site : le problème vient "
            "de sa configuration, pas de vous. Revenez plus tard."
        ),
        502,
        False,
    ),
    (
        (AuthorizeUnavailable,),
        _("Service indisponible"),
        _("Le service de connexion est momentanément indisponible. Réessayez."),
        503,
        True,
    ),
    (
        (InteractionRequired,),
        _("Connexion nécessaire"),
        _("France Travail demande que vous vous connectiez vous-même. Recommencez la connexion."),
        200,
        True,
    ),
    (
        (FTAuthError,),
        _("Réponse de France Travail refusée"),
        _(
            "La réponse reçue de France Travail n’a pas pu être vérifiée. "
            "Par sécurité, la connexion n’a pas eu lieu."
        ),
        400,
        True,
    ),
]


# Callback parameters that are the identity server's words, logged as they are.
SPOKEN = frozenset({"error", "error_description"})
# A JWS/JWT in compact form (an ID, access or logout token), wherever it appears.
_COMPACT_JWT = re.compile(r"eyJ[\w-]*\.[\w-]*\.[\w-]*")
REDACTED = "[redacted]"


def loggable(exc: BaseException, request: HttpRequest) -> str:
    """``Type: message`` for the log, without what must never be logged.

    ftauth's own messages hold no token, code or secret, but a message may quote
    what a server or a browser sent (an ``error_description`` echoing the code, a
    database error quoting a value): every parameter of this request, the client
    secret and anything shaped like a JWT are masked.
    """
    message = " ".join(str(exc).split())
    try:
        secret = get_settings().client_secret
    except FTAuthError:
        secret = ""
    # The callback's ``error`` and ``error_description`` are what an operator needs
    # to read; any other parameter echoed in them (the state) is still masked.
    sent = [v for name, values in request.GET.lists() if name not in SPOKEN for v in values]
    for value in sorted({secret, *sent}, key=len, reverse=True):
        if len(value) >= 6:
            message = message.replace(value, REDACTED)
    message = _COMPACT_JWT.sub(REDACTED, message)[:300]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def record_failed_sign_in(request: HttpRequest, realm: str, exc: Exception) -> None:
    """Put a callback's failure in the audit trail, for the operator: realm and reason.

    Only a callback that took its pending sign-in (a ``state`` this browser was
    given, used now and never again): each sign-in started records at most one
    failure, and callbacks with made-up, reused or expired states, which anyone
    can send at any rate, write nothing (they are logged). Which identity failed
    is not known here, so no account is named; the reason is the error's type
    and, for a refused token or callback, the rule it broke, never a value sent.
    """
    if getattr(request.resolver_match, "url_name", None) != "callback":
        return
    if isinstance(exc, StateError):
        return
    detail = {"reason": type(exc).__name__}
    if isinstance(exc, TokenValidationError | CallbackMismatch):
        detail["rule"] = exc.rule
    user = getattr(request, "user", None)
    user_id = user.pk if user is not None and user.is_authenticated else None
    try:
        # A savepoint: under ATOMIC_REQUESTS the page is still served if this fails.
        with transaction.atomic():
            audit.record(AuditEvent.Kind.SIGN_IN_FAILED, realm=realm, user_id=user_id, **detail)
    except DatabaseError as db_exc:
        logger.error("failed sign-in on realm %s not recorded: %s", realm, type(db_exc).__name__)


def sign_in_error(request: HttpRequest, realm: str, exc: Exception) -> HttpResponse:
    """Turn what went wrong in the flow into the page the user sees."""
    # The message tells an operator what happened (a locked database from a
    # missing table); loggable() keeps tokens, codes and the secret out of it.
    logger.warning("sign-in on realm %s failed: %s", realm, loggable(exc, request))
    if isinstance(exc, AuthorizeRefusedSite):
        logger.error(
            "France Travail refused this site's authorization request (%s): check the "
            "realm's client id, scopes and redirect URI at francetravail.io",
            exc.error,
        )
    if isinstance(exc, InvalidClient):
        logger.error(
            "France Travail refused our client credentials: check FTAUTH['CLIENT_ID'] and "
            "FTAUTH['CLIENT_SECRET']"
        )
    page = next((page for page in PAGES if isinstance(exc, page[0])), None)
    if page is None:
        raise exc
    _errors, title, message, status, retry = page
    record_failed_sign_in(request, realm, exc)
    retry_after = exc.retry_after if isinstance(exc, QuotaExceeded) else None
    if retry_after:
        message = _("France Travail est momentanément surchargé. Réessayez dans %(seconds)s s.") % {
            "seconds": math.ceil(retry_after)
        }
    if isinstance(exc, SignInExpired):
        minutes = max(1, round(get_settings().pending_login_ttl / 60))
        message = ngettext(
            "Une connexion doit être terminée dans la minute qui suit son début. "
            "Recommencez la connexion.",
            "Une connexion doit être terminée dans les %(minutes)s minutes qui suivent son "
            "début. Recommencez la connexion.",
            minutes,
        ) % {"minutes": minutes}
    response = error_page(
        request,
        title=str(title),
        message=str(message),
        status=status,
        retry_url=reverse("ftauth:login", args=[realm]) if retry else None,
    )
    if retry_after:
        response["Retry-After"] = str(math.ceil(retry_after))
    return response


def service_unavailable(request: HttpRequest, action: str, exc: Exception) -> HttpResponse:
    """A database (or session store) failure outside the sign-in: nothing was
    changed, and the same action can be tried again."""
    logger.error("%s failed, nothing changed: %s: %s", action, type(exc).__name__, exc)
    return error_page(
        request,
        title=str(_("Service indisponible")),
        message=str(
            _("Le service est momentanément indisponible. Rien n’a été modifié : réessayez.")
        ),
        status=503,
    )


# What a request can be that no view of ftauth can read: a body cut short, a broken
# multipart body, too many fields, too large.
UNREADABLE = (UnreadablePostError, MultiPartParserError, TooManyFieldsSent, RequestDataTooBig)


def ftauth_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """What every ftauth view shares, so that no request can make it answer 500.

    A ``realm`` in the URL that names no realm is a 404 before anything looks it up
    (no NUL byte or megabyte reaches a query); a request whose body cannot be read
    is a 400; settings that cannot be loaded (reported by ``manage.py check``) are
    a 503 page and one error line, not a traceback per request. Every answer
    refuses to be framed (``internal.framing``), and the report of an error that
    escapes anyway carries no secret (``internal.debug``).
    """

    @wraps(view)
    @no_framing
    @secret_free_errors
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if "realm" in kwargs and kwargs["realm"] not in REALM_NAMES:
            raise Http404("unknown realm")
        try:
            check_sandbox_allowed()
            return view(request, *args, **kwargs)
        except UNREADABLE as exc:
            logger.info("unreadable request to %s: %s", request.path, type(exc).__name__)
            return error_page(
                request,
                title=str(_("Requête illisible")),
                message=str(_("Cette requête n’a pas pu être lue. Réessayez.")),
                status=400,
            )
        except ConfigurationError as exc:
            logger.error("FTAUTH settings cannot be loaded (run manage.py check): %s", exc)
            return error_page(
                request,
                title=str(_("Service indisponible")),
                message=str(
                    _("Le service de connexion est momentanément indisponible. Réessayez.")
                ),
                status=503,
            )

    return wrapped
