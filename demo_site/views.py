"""The demo site's pages: what a site using ftauth writes."""

from django.shortcuts import redirect, render

from ftauth.conf import get_settings
from ftauth.models import LinkedAccount


def home(request):
    return render(request, "home.html", {"realms": list(get_settings().enabled_realms)})


def profile(request):
    if not request.user.is_authenticated:
        return redirect("/")
    accounts = LinkedAccount.objects.filter(user=request.user).order_by("realm")
    return render(request, "profile.html", {"accounts": accounts})


def offres(request):
    return render(request, "offres.html", {"offers": [], "error": None})
