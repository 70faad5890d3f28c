"""The sandbox's own sign-in, one per host, kept apart from Django's session.

France Travail's servers live on their own hosts, so the sign-in on
``authentification-candidat`` knows nothing of the site that uses it (nor of
``entreprise``). The sandbox shares a host with that site, so it keeps its
sign-in in its own cookie, scoped by path to the sandbox host: signing out of
the demo site (which flushes Django's session) leaves the identity server's
sign-in alone, exactly as with the real servers.
"""

from __future__ import annotations

import secrets
import time

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone

from .directory import Persona
from .models import LoginSession, digest


def cookie_name(host: str) -> str:
    return f"ftauth_sandbox_{host.replace('-', '_')}"


def _cookie_path(host: str) -> str:
    return reverse("ftauth_sandbox:host_home", args=[host])


def current_login(request: HttpRequest, host: str) -> LoginSession | None:
    value = request.COOKIES.get(cookie_name(host))
    if not value:
        return None
    return LoginSession.objects.filter(
        key_hash=digest(value), host=host, ended_at__isnull=True
    ).first()


def sign_in(request: HttpRequest, host: str, persona: Persona) -> tuple[LoginSession, str]:
    """Sign ``persona`` in on ``host``, ending any previous sign-in there.

    Returns the session and the cookie value to give with :func:`set_cookie`.
    """
    previous = current_login(request, host)
    if previous is not None:
        LoginSession.objects.filter(pk=previous.pk).update(ended_at=timezone.now())
    value = secrets.token_urlsafe(32)
    login = LoginSession.objects.create(
        key_hash=digest(value),
        host=host,
        realm=persona.realm,
        persona_sub=persona.sub,
        sid=secrets.token_urlsafe(16),
        auth_time=int(time.time()),
    )
    return login, value


def set_cookie(request: HttpRequest, response: HttpResponse, host: str, value: str) -> None:
    response.set_cookie(
        cookie_name(host),
        value,
        path=_cookie_path(host),
        secure=request.is_secure(),
        httponly=True,
        samesite="Lax",
    )


def sign_out(request: HttpRequest, response: HttpResponse, host: str) -> LoginSession | None:
    """End the sign-in on ``host``, if any; return it."""
    login = current_login(request, host)
    if login is not None:
        LoginSession.objects.filter(pk=login.pk).update(ended_at=timezone.now())
    if cookie_name(host) in request.COOKIES:
        response.delete_cookie(cookie_name(host), path=_cookie_path(host), samesite="Lax")
    return login
