"""Typed errors of the protocol core.

Each error is raised where the problem is detected and turned into a page or a
status code in one place (``ftauth.views.errors``). Messages never contain a
token, a code or the client secret: they may end up in logs.
"""

from __future__ import annotations


class FTAuthError(Exception):
    """Base of every error ftauth raises on purpose."""


class ConfigurationError(FTAuthError):
    """The settings are wrong; the message names the setting to fix."""


class InsecureTransport(FTAuthError):
    """An outbound URL is not HTTPS (and not on a loopback address)."""


class TransportError(FTAuthError):
    """The server could not be reached, timed out, or answered 5xx.

    Transient by nature: never a reason to treat consent as withdrawn.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class QuotaExceeded(TransportError):
    """No call now: France Travail answered 429, or ftauth's pacing cannot give this
    call a turn in time. Come back in ``retry_after`` seconds.

    ``reason`` says which: ``"429"`` (France Travail's own answer), ``"turn"`` (no
    turn under the quota within the call's budget), ``"waiting"`` (the host's
    callers allowed to wait for a turn, ``API_MAX_WAITING``, are all waiting),
    ``"background"`` (a check ftauth makes of its own accord takes only a turn
    that is free now).
    """

    def __init__(
        self,
        message: str = "quota exceeded",
        *,
        retry_after: float | None = None,
        reason: str = "429",
    ):
        super().__init__(message, status=429)
        self.retry_after = retry_after
        self.reason = reason


class OAuthError(FTAuthError):
    """The identity server answered with an OAuth error (RFC 6749 section 5.2)."""

    def __init__(self, error: str, description: str = "", *, status: int | None = None) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.status = status


class InvalidGrant(OAuthError):
    """``invalid_grant``: code expired or reused, or refresh token revoked."""


class InvalidClient(OAuthError):
    """``invalid_client``: client id or secret wrong (fix FTAUTH CLIENT_ID / CLIENT_SECRET)."""


class InvalidScope(OAuthError):
    """``invalid_scope``: a scope is not granted to this application."""


class InvalidResponse(FTAuthError):
    """The identity server's answer is malformed (not JSON, a field missing)."""


class TokenValidationError(FTAuthError):
    """A JWT (ID token, logout token) failed a validation rule.

    ``rule`` names the check that failed, for logs and tests.
    """

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{rule}: {message}")
        self.rule = rule


class TokenRejected(FTAuthError):
    """A resource server (userinfo, an API) answered 401: the access token no longer works.

    Not yet a withdrawal: the caller refreshes once, and only ``invalid_grant``
    on refresh (or a 401 with a fresh token) means consent was withdrawn.
    """


class ConsentWithdrawn(FTAuthError):
    """The user's tokens no longer work: consent was withdrawn at France Travail."""


class ApiError(FTAuthError):
    """A France Travail API answered with an error status."""

    def __init__(self, status: int, body: object = None) -> None:
        super().__init__(f"API error {status}")
        self.status = status
        self.body = body


OAUTH_ERRORS: dict[str, type[OAuthError]] = {
    "invalid_grant": InvalidGrant,
    "invalid_client": InvalidClient,
    "invalid_scope": InvalidScope,
}


def oauth_error(error: str, description: str = "", *, status: int | None = None) -> OAuthError:
    """Build the most specific :class:`OAuthError` for an RFC 6749 error code."""
    return OAUTH_ERRORS.get(error, OAuthError)(error, description, status=status)
