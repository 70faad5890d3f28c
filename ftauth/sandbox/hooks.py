"""Extension points for tests of a client's defences.

The sandbox does what France Travail documents and nothing more. A test that
must show how a client reacts to a misbehaving identity server (a forged ID
token, a wrong ``iss`` in the callback, a token endpoint answering 500) sets
``FTAUTH_SANDBOX["HOOKS"]`` to a :class:`SandboxHooks` instance that overrides
the step it wants to break. Each method is called at one place, and the base
class changes nothing, so with no hook the sandbox behaves as France Travail.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse

    from .clients import SandboxClient
    from .models import IssuedToken
    from .site import RealmSite


class SandboxHooks:
    """Override the methods for the steps to change; the others keep France Travail's way."""

    def authorization_params(
        self, params: list[tuple[str, str]], *, site: RealmSite, client: SandboxClient
    ) -> list[tuple[str, str]]:
        """The parameters added to the authorization response (``iss``, ``client_id``)."""
        return params

    def id_token_claims(self, claims: dict[str, Any], *, client: SandboxClient) -> dict[str, Any]:
        """The claims of an ID token (code exchange or refresh), just before signing."""
        return claims

    def sign_id_token(
        self, claims: dict[str, Any], *, realm: str, client: SandboxClient
    ) -> str | None:
        """A compact JWT to send instead of the one signed by the realm's key, or ``None``."""
        return None

    def token_endpoint(
        self, request: HttpRequest, answer: Callable[[], HttpResponse]
    ) -> HttpResponse:
        """The token endpoint's response; ``answer()`` runs the sandbox's own handling.

        Called once the realm is known. A hook may answer without calling
        ``answer`` (the request is then not processed), wait first, or
        rewrite the response it returns.
        """
        return answer()

    def api_response(
        self, request: HttpRequest, api: str, answer: Callable[[], HttpResponse]
    ) -> HttpResponse:
        """The answer of an API (``api``: its name, e.g. ``peconnect-statut``, userinfo
        included); ``answer()`` runs the sandbox's own handling (token, scope, quota)."""
        return answer()

    def jwks_response(
        self, request: HttpRequest, realm: str, answer: Callable[[], HttpResponse]
    ) -> HttpResponse:
        """The answer of a realm's JWKS endpoint; ``answer()`` gives the published keys."""
        return answer()

    def userinfo_claims(self, claims: dict[str, str], *, token: IssuedToken) -> dict[str, str]:
        """The claims the userinfo APIs answer for ``token``."""
        return claims


# The hooks in force when ``FTAUTH_SANDBOX["HOOKS"]`` is not set.
NO_HOOKS = SandboxHooks()
