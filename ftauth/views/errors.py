"""The one place where sign-in errors become pages.

Every failure of the flow ends here with a clear page and a status code,
never a 500, and never with a signed-in session.
"""

from __future__ import annotations

import logging
import math

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from ..core.errors import (
    ConfigurationError,
    FTAuthError,
    InvalidGrant,
    OAuthError,
    QuotaExceeded,
    TransportError,
)
from ..signin import (
    AccountConflict,
    AccountRefused,
    ConsentRefused,
    SignInCancelled,
    StateError,
)

logger = logging.getLogger("ftauth.signin")


def error_page(
    request: HttpRequest,
    *,
    title: str,
    message: str,
    status: int,
    retry_url: str | None = None,
) -> HttpResponse:
    response = TemplateResponse(
        request,
        "ftauth/error.html",
        {"title": title, "message": message, "retry_url": retry_url, "status": status},
        status=status,
    )
    response["Cache-Control"] = "no-store"
    return response


def sign_in_error(request: HttpRequest, realm: str, exc: Exception) -> HttpResponse:
    """Turn what went wrong in the flow into the page the user sees."""
    retry_url = reverse("ftauth:login", args=[realm])
    # Logged by type and rule only: messages never hold tokens, but stay terse.
    logger.warning(
        "sign-in on realm %s failed: %s (%s)",
        realm,
        type(exc).__name__,
        getattr(exc, "rule", "") or getattr(exc, "error", ""),
    )
    if isinstance(exc, StateError):
        return error_page(
            request,
            title=_("Demande de connexion inconnue ou expirée"),
            message=_(
                "Cette demande de connexion est inconnue, a déjà servi ou a expiré. "
                "Recommencez la connexion."
            ),
            status=400,
            retry_url=retry_url,
        )
    if isinstance(exc, SignInCancelled):
        return error_page(
            request,
            title=_("Connexion annulée"),
            message=_("Vous avez annulé la connexion avec France Travail."),
            status=200,
            retry_url=retry_url,
        )
    if isinstance(exc, ConsentRefused):
        return error_page(
            request,
            title=_("Autorisation refusée"),
            message=_(
                "Vous n'avez pas autorisé ce site à accéder à vos informations France Travail. "
                "Vous pouvez réessayer quand vous le souhaitez."
            ),
            status=200,
            retry_url=retry_url,
        )
    if isinstance(exc, InvalidGrant):
        return error_page(
            request,
            title=_("Code expiré ou déjà utilisé"),
            message=_(
                "Le code de connexion de France Travail a expiré ou a déjà été utilisé. "
                "Recommencez la connexion."
            ),
            status=400,
            retry_url=retry_url,
        )
    if isinstance(exc, TransportError | DatabaseError | ConfigurationError):
        retry_after = exc.retry_after if isinstance(exc, QuotaExceeded) else None
        if retry_after:
            message = _(
                "France Travail est momentanément surchargé. Réessayez dans %(seconds)s s."
            ) % {"seconds": math.ceil(retry_after)}
        else:
            message = _("Le service de connexion est momentanément indisponible. Réessayez.")
        response = error_page(
            request,
            title=_("Service indisponible"),
            message=message,
            status=503,
            retry_url=retry_url,
        )
        if retry_after:
            response["Retry-After"] = str(math.ceil(retry_after))
        return response
    if isinstance(exc, AccountConflict):
        return error_page(
            request,
            title=_("Compte déjà lié"),
            message=_(
                "Cette identité France Travail est déjà liée à un autre compte, ou votre compte "
                "est déjà lié à une autre identité France Travail."
            ),
            status=409,
        )
    if isinstance(exc, AccountRefused):
        return error_page(
            request,
            title=_("Connexion refusée"),
            message=_("Ce compte ne peut pas se connecter à ce site."),
            status=403,
        )
    if isinstance(exc, OAuthError | FTAuthError):
        return error_page(
            request,
            title=_("Réponse de France Travail refusée"),
            message=_(
                "La réponse reçue de France Travail n'a pas pu être vérifiée. "
                "Par sécurité, vous n'avez pas été connecté."
            ),
            status=400,
            retry_url=retry_url,
        )
    raise exc
