"""ftauth's own pages refuse framing themselves (issue 14, item 8), with or without the
project's XFrameOptionsMiddleware (the test settings have none)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model

from tests.idp import sign_in

pytestmark = pytest.mark.django_db


def _refuses_framing(response) -> bool:
    return response["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in response.get(
        "Content-Security-Policy", ""
    )


def test_the_project_adds_no_framing_header_itself():
    assert "django.middleware.clickjacking.XFrameOptionsMiddleware" not in settings.MIDDLEWARE


def test_sign_out_and_account_pages_refuse_framing(client, idp):
    assert _refuses_framing(client.get("/ftauth/logout/"))
    sign_in(client, idp)
    account = client.get("/ftauth/account/")
    assert account.status_code == 200 and "unlink" in account.content.decode()
    assert _refuses_framing(account)
    assert _refuses_framing(client.get("/ftauth/logout/"))


def test_link_confirmation_and_error_pages_refuse_framing(client, idp):
    me = get_user_model().objects.create_user("me", password="pw-123456")
    client.force_login(me)
    _, confirm = sign_in(client, idp)
    assert confirm.status_code == 200 and _refuses_framing(confirm)
    client.logout()
    error = client.get("/ftauth/callback/individu/", {"state": "forged"})
    assert error.status_code == 400 and _refuses_framing(error)
