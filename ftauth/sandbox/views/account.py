"""« Mes consentements »: the signed-in persona reviews and withdraws consents."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect

from ftauth.internal.framing import no_framing

from ..clients import registered_clients
from ..consents import withdraw_consent
from ..directory import HOST_REALMS, get_persona, personas_of, scope_label
from ..models import Consent
from ..sessions import current_login, set_cookie, sign_in, sign_out
from .common import error_page


@no_framing
@never_cache
@csrf_protect
def consents(request: HttpRequest, host: str) -> HttpResponse:
    login = current_login(request, host)
    persona = get_persona(login.persona_sub) if login else None

    if request.method == "POST":
        if "persona" in request.POST:
            chosen = get_persona(request.POST["persona"])
            if chosen is None or chosen.realm not in HOST_REALMS[host]:
                return error_page(request, _("Compte de test inconnu."))
            response = HttpResponseRedirect(request.path)
            cookie = sign_in(request, host, chosen)[1]
            set_cookie(request, response, host, cookie)
            return response
        if "logout" in request.POST:
            response = HttpResponseRedirect(request.path)
            sign_out(request, response, host)
            return response
        if "client_id" in request.POST and persona is not None:
            client_id = request.POST["client_id"]
            withdraw_consent(persona.sub, client_id)
            return HttpResponseRedirect(f"{request.path}?retire=1")
        return error_page(request, _("Demande invalide."))
    if request.method != "GET":
        return error_page(request, _("Méthode non autorisée."), status=405)

    if persona is None:
        personas = [p for realm in HOST_REALMS[host] for p in personas_of(realm)]
        return render(request, "ftauth_sandbox/consents_login.html", {"personas": personas})
    clients = registered_clients()
    rows = Consent.objects.filter(persona_sub=persona.sub, withdrawn_at__isnull=True).order_by(
        "client_id"
    )
    consents_list = [
        {
            "client_id": row.client_id,
            "name": (clients[row.client_id].name if row.client_id in clients else "")
            or row.client_id,
            "granted_at": row.granted_at,
            "scopes": [scope_label(row.realm, s) for s in sorted(row.scopes)],
        }
        for row in rows
    ]
    return render(
        request,
        "ftauth_sandbox/consents.html",
        {
            "persona": persona,
            "consents": consents_list,
            "withdrawn": request.GET.get("retire") == "1",
        },
    )
