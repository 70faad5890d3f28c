"""A project that forgot ftauth's URLs: only the sandbox is mounted."""

from django.urls import include, path

urlpatterns = [path("sandbox/", include("ftauth.sandbox.urls"))]
