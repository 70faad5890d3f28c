"""The demo's URLconf with ftauth mounted under ``auth/`` instead of ``ftauth/``
(allauth's and mozilla-django-oidc's habit)."""

from django.urls import include, path

from demo_site.urls import urlpatterns as demo_urlpatterns

urlpatterns = [p for p in demo_urlpatterns if str(p.pattern) != "ftauth/"]
urlpatterns.append(path("auth/", include("ftauth.urls")))
