"""Placeholder, replaced below."""

from django.http import Http404


def consents(request, host):
    raise Http404
