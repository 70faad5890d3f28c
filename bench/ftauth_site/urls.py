from django.http import HttpResponse
from django.urls import include, path


def profile(request):
    return HttpResponse(f"signed in as {request.user}" if request.user.is_authenticated else "no")


urlpatterns = [path("ftauth/", include("ftauth.urls")), path("profile/", profile)]
