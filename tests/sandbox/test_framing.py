"""The sandbox's login and consent pages refuse framing themselves (issue 14, item 8):
the test settings have no XFrameOptionsMiddleware, so only the views can say it."""

from __future__ import annotations

from django.conf import settings

from .scripting import LOGIN_FORM, parse_forms, submit


def _refuses_framing(response) -> bool:
    return response.headers.get("X-Frame-Options") == "DENY" and "frame-ancestors 'none'" in (
        response.headers.get("Content-Security-Policy", "")
    )


def test_the_project_adds_no_framing_header_itself():
    assert "django.middleware.clickjacking.XFrameOptionsMiddleware" not in settings.MIDDLEWARE


def test_login_and_consent_pages_refuse_framing(flow):
    f = flow("individu")
    page = f.session.get(f.authorize_url(), timeout=5)
    assert page.status_code == 200 and _refuses_framing(page)
    consent = submit(
        f.session, page, parse_forms(page.text)[LOGIN_FORM], persona="sandbox-individu-karim"
    )
    assert consent.status_code == 200 and "decision" in consent.text
    assert _refuses_framing(consent)
