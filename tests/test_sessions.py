"""Session registry: sign-ins recorded, sessions ended on every engine."""

from __future__ import annotations

from importlib import import_module

import pytest
from django.contrib.sessions.backends.signed_cookies import SessionStore as CookieStore
from django.test import RequestFactory

from ftauth import crypto
from ftauth.internal import sessions
from ftauth.models import AccountSession
from tests.lifecycle import make_account, store_tokens

pytestmark = pytest.mark.django_db


def request_with_session(engine: str):
    request = RequestFactory().get("/")
    request.session = import_module(engine).SessionStore()
    return request


def test_register_session_records_the_session(session_engine):
    account = make_account()
    request = request_with_session(session_engine)
    request.session["_auth_user_id"] = str(account.user_id)
    request.session.cycle_key()
    grant = store_tokens(account)
    sessions.register_session(request, account, grant)
    marker = request.session[sessions.SESSION_KEY]
    row = AccountSession.objects.get(sid=marker["sid"])
    assert row.account == account and row.grant == grant and row.engine == session_engine
    assert marker["account"] == account.pk
    assert marker["grant"] == grant.pk
    if issubclass(import_module(session_engine).SessionStore, CookieStore):
        assert row.session_key_ciphertext == ""
    else:
        key = request.session.session_key
        assert key and key not in row.session_key_ciphertext
        assert crypto.decrypt(row.session_key_ciphertext) == key


def test_register_session_replaces_the_previous_sign_in_of_the_session(session_engine):
    first, second = make_account(), make_account("employeur")
    request = request_with_session(session_engine)
    sessions.register_session(request, first, store_tokens(first))
    sessions.register_session(request, second, store_tokens(second))
    assert not AccountSession.objects.filter(account=first).exists()
    assert AccountSession.objects.filter(account=second).count() == 1
