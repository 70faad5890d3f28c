"""The authorization endpoint: persona choice, consent, redirect with the code.

Plain HTML forms that a scripted client can post: the login page is a form
with one submit button per persona (``persona=<sub>``), the consent page a
form with ``decision=accept`` and ``decision=refuse`` buttons. Both post back
to the authorization URL itself, query string included. A sign-in on a host
is remembered (as single sign-on is on France Travail) and so is a consent,
until withdrawn; ``prompt=login`` and ``prompt=consent`` ask again.
"""

from __future__ import annotations

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import InsecureTransportError, OAuth2Error
from authlib.oidc.core.errors import ConsentRequiredError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, QueryDict
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, ensure_csrf_cookie

from ftauth.internal.framing import no_framing

from ..directory import Persona, get_persona, personas_of, scope_label
from ..models import Consent, LoginSession
from ..server import SandboxRequest, server
from ..sessions import current_login, set_cookie, sign_in
from ..site import RealmSite
from .common import error_page, served_site


def _csrf_refused(request: HttpRequest) -> bool:
    """Django's CSRF check, answered by this view rather than the 403 debug page.

    Two tabs on the login page: once one signs in, Django rotates the CSRF
    token and the other tab's form is stale. It gets the page again, fresh.
    """
    return (
        CsrfViewMiddleware(lambda r: HttpResponse()).process_view(request, None, (), {}) is not None
    )


@no_framing
@never_cache
@csrf_exempt  # checked by _csrf_refused below, with a page of our own
@ensure_csrf_cookie
def authorize(request: HttpRequest, host: str) -> HttpResponse:
    site = served_site(request, host, request.GET.get("realm"))
    request.sandbox_site = site  # type: ignore[attr-defined]
    if request.method not in ("GET", "POST"):
        return error_page(request, _("Méthode non autorisée."), status=405)
    stale_form = request.method == "POST" and _csrf_refused(request)
    stale = request.POST.copy() if stale_form else None
    if stale_form:
        request.method = "GET"  # answered as the page it came from, not acted on
    login = current_login(request, host)
    if login is not None and login.realm != site.realm:
        login = None
    persona = get_persona(login.persona_sub, site.realm) if login else None
    try:
        grant = server.get_consent_grant(request, end_user=persona)
    except InsecureTransportError:
        return error_page(request, _("Le serveur d’identité exige HTTPS."))
    except OAuth2Error as error:
        return _refuse(request, site, error)
    grant.request.login = login
    prompts = set((request.GET.get("prompt") or "").split())

    if stale is not None and login is not None and _made_for_another(stale, login):
        # Another tab signed someone else in since this form was shown: going on as
        # that person would answer this tab's choice with another's identity.
        return _login_page(request, site, grant, status=403, stale_form=True, signed_in=persona)

    if request.method == "POST" and "persona" in request.POST:
        chosen = get_persona(request.POST["persona"], site.realm)
        if chosen is None:
            return _login_page(request, site, grant, status=400)
        login, cookie = sign_in(request, host, chosen)
        grant.request.login = login
        response = _after_login(request, site, grant, login, chosen, prompts - {"login"})
        set_cookie(request, response, host, cookie)
        return response

    if request.method == "POST" and "decision" in request.POST:
        # The decision is that of the persona shown on the consent page.
        if login is None or persona is None or request.POST.get("session") != login.sid:
            return _login_page(request, site, grant, status=400)
        if request.POST["decision"] != "accept":
            return server.create_authorization_response(grant.request, grant_user=None, grant=grant)
        _record_consent(site, persona, grant)
        return _issue(grant, persona)

    if request.method == "POST":
        return _login_page(request, site, grant, status=400)
    if "none" in prompts:
        if login is None or persona is None:
            # authlib has already answered login_required; kept for clarity.
            return _login_page(request, site, grant, status=400)
        return _after_login(request, site, grant, login, persona, prompts)
    if login is None or persona is None or "login" in prompts:
        # A refused form is still a 403, with a fresh form to go on with.
        return _login_page(
            request, site, grant, status=403 if stale_form else 200, stale_form=stale_form
        )
    return _after_login(request, site, grant, login, persona, prompts)


def _made_for_another(form: QueryDict, login: LoginSession) -> bool:
    """A form shown before ``login`` began: a persona choice of someone else, or the
    consent page of another sign-in."""
    chosen, session = form.get("persona"), form.get("session")
    return (chosen is not None and chosen != login.persona_sub) or (
        session is not None and session != login.sid
    )


def _refuse(request: HttpRequest, site: RealmSite, error: OAuth2Error) -> HttpResponse:
    """Redirect the error to a validated redirect URI, or show it (RFC 6749 4.1.2.1)."""
    if error.redirect_uri:
        oauth_request = SandboxRequest(request, site)
        return server.handle_error_response(oauth_request, error)
    return error_page(
        request,
        _("La demande d’autorisation est invalide."),
        error=error.error,
        description=error.description,
    )


def _requested_scopes(grant: object) -> list[str]:
    request = grant.request  # type: ignore[attr-defined]
    return (request.scope or request.payload.scope or "").split()


def _after_login(
    request: HttpRequest,
    site: RealmSite,
    grant: object,
    login: LoginSession,
    persona: Persona,
    prompts: set[str],
) -> HttpResponse:
    client = grant.request.client  # type: ignore[attr-defined]
    consent = Consent.objects.filter(
        realm=site.realm,
        persona_sub=persona.sub,
        client_id=client.client_id,
        withdrawn_at__isnull=True,
    ).first()
    remembered = consent is not None and set(_requested_scopes(grant)) <= consent.scopes
    if remembered and "consent" not in prompts:
        return _issue(grant, persona)
    if "none" in prompts:
        error = ConsentRequiredError(redirect_uri=grant.redirect_uri)  # type: ignore[attr-defined]
        error.state = grant.request.payload.state  # type: ignore[attr-defined]
        return server.handle_error_response(grant.request, error)  # type: ignore[attr-defined]
    scopes = _requested_scopes(grant)
    switch_query = request.GET.copy()
    switch_query["prompt"] = "login"
    return render(
        request,
        "ftauth_sandbox/consent.html",
        {
            "site": site,
            "client": client,
            "persona": persona,
            "login": login,
            "scopes": [(s, scope_label(site.realm, s)) for s in scopes],
            "action": request.get_full_path(),
            "switch_url": f"{request.path}?{switch_query.urlencode()}",
        },
    )


def _login_page(
    request: HttpRequest,
    site: RealmSite,
    grant: object,
    status: int = 200,
    *,
    stale_form: bool = False,
    signed_in: Persona | None = None,
):
    oauth_request = grant.request  # type: ignore[attr-defined]
    state = oauth_request.payload.state
    # France Travail's cancel link returns with ``state`` alone, no ``error``.
    cancel_url = add_params_to_uri(grant.redirect_uri, [("state", state)] if state else [])  # type: ignore[attr-defined]
    return render(
        request,
        "ftauth_sandbox/login.html",
        {
            "site": site,
            "client": oauth_request.client,
            "personas": personas_of(site.realm),
            "action": request.get_full_path(),
            "cancel_url": cancel_url,
            "stale_form": stale_form,
            "signed_in": signed_in,
        },
        status=status,
    )


def _record_consent(site: RealmSite, persona: Persona, grant: object) -> None:
    client_id = grant.request.client.client_id  # type: ignore[attr-defined]
    scopes = set(_requested_scopes(grant))
    with transaction.atomic():
        consent, created = Consent.objects.select_for_update().get_or_create(
            realm=site.realm,
            persona_sub=persona.sub,
            client_id=client_id,
            defaults={"scope": " ".join(sorted(scopes))},
        )
        if not created:
            if consent.withdrawn_at is None:
                scopes |= consent.scopes
            consent.scope = " ".join(sorted(scopes))
            consent.withdrawn_at = None
            consent.granted_at = timezone.now()
            consent.save(update_fields=["scope", "withdrawn_at", "granted_at"])


def _issue(grant: object, persona: Persona) -> HttpResponse:
    return server.create_authorization_response(
        grant.request,  # type: ignore[attr-defined]
        grant_user=persona,
        grant=grant,
    )
