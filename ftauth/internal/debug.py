"""Django's error reports (the DEBUG page, the error emails) without sign-in secrets.

Django's default filter hides settings named like secrets and the views decorated
with ``sensitive_variables``, but its technical 500 page still shows the query string
(a callback's ``code`` and ``state``, a logout's ``id_token_hint``), the POST body (a
logout token, the sandbox's ``client_secret`` and ``code_verifier``), the Referer
(where the sandbox's pages put the nonce) and every local variable of every frame
(tokens, the verifier). An uncaught bug in ftauth's views, or in a project's adapter
they call, must not turn a DEBUG site's error page into a list of secrets: ftauth's
views and the sandbox's use the reporter below, through Django's per-request hooks
(``request.exception_reporter_class`` and ``request.exception_reporter_filter``).
The page keeps what a developer needs: the exception, the traceback's files, lines
and code, the parameter names.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

# Request headers and environ keys that may carry a parameter, a token or a cookie.
SENSITIVE_META = (
    "QUERY_STRING",
    "REQUEST_URI",
    "RAW_URI",
    "HTTP_REFERER",
    "HTTP_AUTHORIZATION",
    "HTTP_COOKIE",
)


class SecretFreeFilter(SafeExceptionReporterFilter):
    """Every value a request or a frame holds is masked; names stay visible."""

    def get_post_parameters(self, request: HttpRequest | None) -> dict[str, Any]:
        if request is None:
            return {}
        return {name: self.cleansed_substitute for name in request.POST}

    def get_safe_request_meta(self, request: HttpRequest) -> dict[str, Any]:
        meta = super().get_safe_request_meta(request)
        for key in SENSITIVE_META:
            if key in meta:
                meta[key] = self.cleansed_substitute
        return meta

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> list[Any]:
        return [(name, self.cleansed_substitute) for name in tb_frame.f_locals]


class SecretFreeExceptionReporter(ExceptionReporter):
    """The query string's values masked too (Django shows ``request.GET`` as is)."""

    def get_traceback_data(self) -> dict[str, Any]:
        data = super().get_traceback_data()
        if self.request is not None:
            masked = self.filter.cleansed_substitute
            data["request_GET_items"] = [(name, masked) for name in self.request.GET]
            data["request_insecure_uri"] = self.request.path + (
                f"?{masked}" if self.request.META.get("QUERY_STRING") else ""
            )
        return data


def secret_free_errors(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Reports of errors escaping ``view`` carry no secret (see the module)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        request.exception_reporter_class = SecretFreeExceptionReporter  # type: ignore[attr-defined]
        request.exception_reporter_filter = SecretFreeFilter()  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return wrapped
