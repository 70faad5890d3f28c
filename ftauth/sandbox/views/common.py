"""Small pieces shared by the sandbox's views."""

from __future__ import annotations

import json
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from ..directory import HOST_REALMS, parse_realm
from ..site import RealmSite, realm_site


def served_site(request: HttpRequest, host: str, realm_value: str | None) -> RealmSite:
    """The realm named by ``realm_value`` as served on ``host``; 404 elsewhere.

    As on France Travail, a realm asked of the wrong server does not exist there.
    """
    realm = parse_realm(realm_value)
    if realm is None or realm not in HOST_REALMS.get(host, ()):
        raise Http404("unknown realm on this server")
    return realm_site(request, host, realm)


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> HttpResponse:
    response = HttpResponse(
        json.dumps(payload, ensure_ascii=False),
        status=status,
        content_type="application/json",
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def oauth_error(
    error: str, description: str, status: int = 400, headers: dict[str, str] | None = None
) -> HttpResponse:
    """An RFC 6749 5.2 error answer."""
    base = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    base.update(headers or {})
    return json_response({"error": error, "error_description": description}, status, base)


def error_page(request: HttpRequest, message: str, status: int = 400, **extra: Any) -> HttpResponse:
    return render(
        request,
        "ftauth_sandbox/error.html",
        {"message": message, **extra},
        status=status,
    )
