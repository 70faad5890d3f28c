from django.http import HttpResponse
from django.urls import include, path


def profile(request):
    return HttpResponse(f"signed in as {request.user}" if request.user.is_authenticated else "no")


urlpatterns = [path("oidc/", include("mozilla_django_oidc.urls")), path("profile/", profile)]
