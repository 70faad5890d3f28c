from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("profile/", views.profile, name="profile"),
    path("offres/", views.offres, name="offres"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("ftauth/", include("ftauth.urls")),
]

if "ftauth.sandbox" in settings.INSTALLED_APPS:
    urlpatterns.append(path("sandbox/", include("ftauth.sandbox.urls")))
