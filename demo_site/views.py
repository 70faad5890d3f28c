"""The demo site's pages: what a site using ftauth writes.

Every call to France Travail can fail (network, quota, consent withdrawn): the
typed errors of ``ftauth.core.errors`` become a message on the page, never a 500.
"""

import logging
import math
import time
from datetime import UTC, datetime

from django import forms
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ftauth import api, vault
from ftauth.adapter import get_adapter
from ftauth.conf import get_settings
from ftauth.core.errors import (
    ApiError,
    ConfigurationError,
    ConsentWithdrawn,
    FTAuthError,
    OAuthError,
    QuotaExceeded,
    TokenRejected,
    TransportError,
)
from ftauth.models import LinkedAccount

logger = logging.getLogger(__name__)

# The API that tells each realm's user who they are (partenaire has none).
USER_DATA_PATHS = {
    "individu": "peconnect-individu/v1/userinfo",
    "employeur": "peconnect-entreprise/v1/userinfo",
}


# What /profile/ read with the user's token, kept in the session this long (seconds).
USER_DATA_KEY = "demo_user_data"
USER_DATA_TTL = 300


def api_error_message(exc: FTAuthError) -> str:
    """What the visitor reads when a call to France Travail fails."""
    if isinstance(exc, QuotaExceeded):
        if exc.retry_after:
            seconds = math.ceil(exc.retry_after)
            return _("France Travail reçoit trop de demandes : réessayez dans %(seconds)s s.") % {
                "seconds": seconds
            }
        return _("France Travail reçoit trop de demandes : réessayez dans un instant.")
    if isinstance(exc, ConsentWithdrawn | TokenRejected):
        return _("Votre consentement a été retiré ou a expiré : reconnectez-vous.")
    if isinstance(exc, vault.TokensUnavailable):
        return _("Votre connexion France Travail sur cet appareil a pris fin : reconnectez-vous.")
    if isinstance(exc, TransportError):
        return _("France Travail ne répond pas pour le moment. Réessayez plus tard.")
    if isinstance(exc, ApiError):
        return _("France Travail a répondu par une erreur (%(status)s).") % {"status": exc.status}
    # OAuth and configuration errors are the site's to fix: logged for the operator.
    if isinstance(exc, OAuthError | ConfigurationError):
        logger.error("France Travail call refused: %s", exc)
    return _("Le service France Travail est indisponible pour ce site. Réessayez plus tard.")


def home(request):
    return render(request, "home.html", {"realms": list(get_settings().enabled_realms)})


def _identity(request, account: LinkedAccount) -> dict:
    account.user = request.user
    status = vault.account_status(account, vault.session_grant(request, account))
    item = {
        "account": account,
        "claims": sorted(account.claims.items()),
        "token_status": status,
        "token_status_label": status.label,
        "api_path": USER_DATA_PATHS.get(account.realm),
        "can_unlink": get_adapter().can_unlink(request, account),
    }
    if item["api_path"]:
        read_at = account.claims_at.timestamp() if account.claims_at else 0
        if time.time() - read_at < USER_DATA_TTL:
            # The sign-in has just read this API (the realm's userinfo) with this
            # token: show what it read rather than ask France Travail again.
            item["api_data"] = sorted(account.claims.items())
            item["api_data_at"] = account.claims_at
            return item
        kept = request.session.get(USER_DATA_KEY, {}).get(account.realm)
        if isinstance(kept, dict) and time.time() - kept.get("at", 0) < USER_DATA_TTL:
            item["api_data"] = [tuple(pair) for pair in kept["data"]]
            item["api_data_at"] = datetime.fromtimestamp(kept["at"], tz=UTC)
            return item
        try:
            # This device's grant: another device's sign-out never affects this page.
            data = api.for_request(request, account.realm).get(item["api_path"])
        except FTAuthError as exc:
            item["api_error"] = api_error_message(exc)
            # This device's grant cannot serve (ended, or unreadable with the keys
            # configured): a new sign-in gives it a new one.
            item["sign_in_again"] = isinstance(exc, vault.TokensUnavailable)
        else:
            item["api_data"] = sorted(data.items()) if isinstance(data, dict) else []
            item["api_data_at"] = time.time()
            # Kept in this session for a while: a page view must not spend the
            # application's quota (France Travail counts every call).
            request.session[USER_DATA_KEY] = {
                **request.session.get(USER_DATA_KEY, {}),
                account.realm: {"at": item["api_data_at"], "data": item["api_data"]},
            }
    if item.get("api_data_at"):
        item["api_data_at"] = datetime.fromtimestamp(item["api_data_at"], tz=UTC)
    return item


def profile(request):
    if not request.user.is_authenticated:
        return redirect("home")
    accounts = LinkedAccount.objects.filter(user=request.user).order_by("realm")
    identities = [_identity(request, account) for account in accounts]
    return render(request, "profile.html", {"identities": identities})


class OffresSearchForm(forms.Form):
    motsCles = forms.CharField(  # France Travail's parameter name
        label=gettext_lazy("Mots-clés"),
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "cuisinier"}),
    )


def offres(request):
    form = OffresSearchForm(request.GET if "motsCles" in request.GET else None)
    context = {"form": form, "offers": [], "error": None, "searched": False}
    if form.is_bound and form.is_valid():
        params = {"range": "0-19"}
        if form.cleaned_data["motsCles"]:
            params["motsCles"] = form.cleaned_data["motsCles"]
        try:
            data = api.application().get("offresdemploi/v2/offres/search", params=params)
        except FTAuthError as exc:
            context["error"] = api_error_message(exc)
        else:
            # France Travail answers 204 with no body when nothing matches.
            context["offers"] = (data or {}).get("resultats", [])
            context["searched"] = True
    return render(request, "offres.html", context)
