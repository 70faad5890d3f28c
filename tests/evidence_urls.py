"""The demo's URLs, plus two views of a site calling France Travail with the session's grant."""

from django.http import JsonResponse
from django.urls import path

from demo_site.urls import urlpatterns as demo_urlpatterns
from ftauth import api
from ftauth.core.errors import ApiError, FTAuthError, QuotaExceeded


def call(request, realm: str, api_path: str):
    """Calls ``api_path`` with this session's grant; says what came back."""
    try:
        data = api.for_request(request, realm).get(api_path)
    except ApiError as exc:
        return JsonResponse({"error": "ApiError", "status": exc.status})
    except QuotaExceeded as exc:
        return JsonResponse(
            {"error": "QuotaExceeded", "reason": exc.reason, "retry_after": exc.retry_after}
        )
    except FTAuthError as exc:
        return JsonResponse({"error": type(exc).__name__})
    return JsonResponse({"ok": True, "data": data})


def call_then_fail(request, realm: str, api_path: str):
    """A view that calls an API, then fails: its transaction (ATOMIC_REQUESTS) rolls back."""
    api.for_request(request, realm).get(api_path)
    raise RuntimeError("the view fails after its call to France Travail")


urlpatterns = [
    path("t/call/<str:realm>/<path:api_path>", call),
    path("t/call-then-fail/<str:realm>/<path:api_path>", call_then_fail),
    *demo_urlpatterns,
]
