"""The API host (api.francetravail.io): userinfo, status, job offers.

Every call needs ``Authorization: Bearer``; a token in the query string is
refused (RFC 6750 allows it, France Travail does not). authlib's resource
protector turns an unknown, expired or revoked token into 401 with
``WWW-Authenticate: Bearer error="invalid_token"``. Then the per-application
quota applies, answering 429 with ``Retry-After``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from authlib.integrations.django_oauth2 import ResourceProtector
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import MissingAuthorizationError
from authlib.oauth2.rfc6750 import BearerTokenValidator
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from ..conf import get_sandbox_settings
from ..directory import get_persona
from ..models import IssuedToken, digest
from ..offers import InvalidSearch, get_offer, parse_range, search
from ..quota import buckets
from .common import json_response

# France Travail's status API: 1 = registered job seeker.
_STATUTS = {
    "sandbox-individu-camille": ("1", "Demandeur d'emploi"),
    "sandbox-individu-karim": ("0", "Non demandeur d'emploi"),
    "sandbox-individu-lea": ("1", "Demandeur d'emploi"),
}


class _DigestBearerValidator(BearerTokenValidator):
    def authenticate_token(self, token_string: str) -> IssuedToken | None:
        return IssuedToken.objects.filter(access_token_hash=digest(token_string)).first()


_protector = ResourceProtector()
_protector.register_token_validator(_DigestBearerValidator())

ApiView = Callable[..., HttpResponse]


def _bearer_error(error: str, description: str, status: int) -> HttpResponse:
    return json_response(
        {"error": error, "error_description": description},
        status,
        {"WWW-Authenticate": f'Bearer error="{error}", error_description="{description}"'},
    )


def protected(
    api: str, scope: str, *, user_realm: str | None = None
) -> Callable[[ApiView], ApiView]:
    """Bearer token with ``scope``; a user's token of ``user_realm``, else an application's."""

    def decorator(view: ApiView) -> ApiView:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, **kwargs: str) -> HttpResponse:
            hooks = get_sandbox_settings().hooks
            return hooks.api_response(request, api, lambda: answer(request, **kwargs))

        def answer(request: HttpRequest, **kwargs: str) -> HttpResponse:
            if request.method != "GET":
                return json_response({"message": "Method not allowed"}, 405)
            if "access_token" in request.GET:
                return _bearer_error(
                    "invalid_request", "Send the token in the Authorization header only", 400
                )
            try:
                token: IssuedToken = _protector.acquire_token(request, scopes=[scope])
            except MissingAuthorizationError:
                # RFC 6750 3.1: no error code when the request has no credentials.
                return json_response(
                    {"error": "invalid_request", "error_description": "Missing bearer token"},
                    401,
                    {"WWW-Authenticate": 'Bearer realm="api"'},
                )
            except OAuth2Error as error:
                return _bearer_error(error.error, error.get_error_description(), error.status_code)
            wants_user = user_realm is not None
            if wants_user != bool(token.persona_sub) or (wants_user and token.realm != user_realm):
                kind = (
                    f"a user token of realm /{user_realm}" if wants_user else "an application token"
                )
                return _bearer_error("insufficient_scope", f"This API needs {kind}", 403)
            sandbox = get_sandbox_settings()
            decision = buckets.take(
                token.client_id, api, sandbox.quota_per_second, sandbox.quota_algorithm
            )
            if not decision.allowed:
                return json_response(
                    {"message": "Limite de requêtes par seconde atteinte"}, 429, decision.headers()
                )
            response = view(request, token, **kwargs)
            for name, value in decision.headers().items():
                response[name] = value
            return response

        return wrapper

    return decorator


def _user_claims(token: IssuedToken) -> dict[str, str]:
    persona = get_persona(token.persona_sub, token.realm)
    claims = persona.claims_for(token.scopes) if persona else {"sub": token.persona_sub}
    return get_sandbox_settings().hooks.userinfo_claims(claims, token=token)


@protected("peconnect-individu", "api_peconnect-individuv1", user_realm="individu")
def userinfo_individu(request: HttpRequest, token: IssuedToken) -> HttpResponse:
    # ``?schema=openid`` (used by integrators) and the bare call answer alike.
    return json_response(_user_claims(token))


@protected("peconnect-entreprise", "api_peconnect-entreprisev1", user_realm="employeur")
def userinfo_entreprise(request: HttpRequest, token: IssuedToken) -> HttpResponse:
    return json_response(_user_claims(token))


@protected("peconnect-statut", "api_peconnect-statutv1", user_realm="individu")
def statut(request: HttpRequest, token: IssuedToken) -> HttpResponse:
    code, label = _STATUTS.get(token.persona_sub, ("0", "Non demandeur d'emploi"))
    return json_response({"codeStatutIndividu": code, "libelleStatutIndividu": label})


@protected("offresdemploi", "api_offresdemploiv2")
def offres_search(request: HttpRequest, token: IssuedToken) -> HttpResponse:
    try:
        first, last = parse_range(request.GET.get("range"))
    except InvalidSearch as exc:
        return json_response({"codeHttp": 400, "message": str(exc)}, 400)
    found = search(request.GET.get("motsCles"), request.GET.get("typeContrat"))
    if not found or first >= len(found):
        return HttpResponse(status=204)
    page = found[first : last + 1]
    end = first + len(page) - 1
    status = 200 if len(page) == len(found) else 206
    return json_response(
        {"resultats": page},
        status,
        {"Content-Range": f"offres {first}-{end}/{len(found)}", "Accept-Range": "offres 150"},
    )


@protected("offresdemploi", "api_offresdemploiv2")
def offre_detail(request: HttpRequest, token: IssuedToken, offre_id: str) -> HttpResponse:
    offer = get_offer(offre_id)
    if offer is None:
        return HttpResponse(status=204)
    return json_response(offer)


@csrf_exempt
def unknown_api(request: HttpRequest, rest: str) -> HttpResponse:
    return json_response({"codeHttp": 404, "message": "Ressource inconnue"}, 404)
