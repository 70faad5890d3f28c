"""Session views: sign-out, back-channel logout, unlink, consent withdrawn page.

Placeholder until the consent-lifecycle issue lands; every view answers 501.
"""

from django.http import HttpResponse


def _not_yet(request, *args, **kwargs):
    return HttpResponse("Not implemented yet", status=501)


logout = backchannel_logout = account = unlink = consent_withdrawn = _not_yet
