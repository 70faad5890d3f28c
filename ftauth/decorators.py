"""Views that need more than a signed-in session: an assurance level (``acr``).

ProConnect says at which level each sign-in was made (docs/proconnect.md). A
view decorated with :func:`acr_required` is served only to a session signed in
through the realm at one of the levels named; any other session signs in again,
that sign-in narrowed to the level (asked for, then checked at the callback, so
a provider that cannot reach it ends on the "level too low" page, never back
here in a loop).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from .conf import get_settings
from .core.assurance import AssuranceRefused
from .core.realms import PROCONNECT
from .internal.sessions import session_marker
from .models import Grant

logger = logging.getLogger("ftauth.signin")


def session_acr(request: HttpRequest, realm: str = PROCONNECT) -> str:
    """The ``acr`` of the sign-in this session made through ``realm`` ("" if none)."""
    marker = session_marker(request)
    user = getattr(request, "user", None)
    if not marker or user is None or not user.is_authenticated:
        return ""
    grant_id = marker.get("grant")
    if not isinstance(grant_id, int):
        return ""
    grant = Grant.objects.filter(pk=grant_id, account__user=user, account__realm=realm).first()
    acr = grant.id_token_claims.get("acr") if grant is not None else None
    return acr if isinstance(acr, str) else ""


def acr_required(
    *levels: str, realm: str = PROCONNECT
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Serve the view only to a session signed in through ``realm`` at one of ``levels``.

    The levels must be among the realm's ``acr_values`` (the site accepts them):
    otherwise no sign-in could be narrowed to them, and the view answers the
    "level too low" page instead of sending the person round in circles.
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if session_acr(request, realm) in levels:
                return view(request, *args, **kwargs)
            accepted = get_settings().realm(realm).acr_values
            level = next((level for level in levels if level in accepted), None)
            if level is None:
                from .views.errors import sign_in_error

                logger.error(
                    "acr_required(%s): none of these levels is in FTAUTH['REALMS']['%s']"
                    "['acr_values']",
                    ", ".join(levels),
                    realm,
                )
                return sign_in_error(
                    request, realm, AssuranceRefused("acr", "level not accepted by the site")
                )
            query = urlencode({"next": request.get_full_path(), "acr": level})
            return HttpResponseRedirect(f"{reverse('ftauth:login', args=[realm])}?{query}")

        return wrapped

    return decorator
