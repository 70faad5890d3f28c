"""Sign-out through France Travail's end-session URL, and back-channel logout."""

from __future__ import annotations

import io
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command
from django.test import Client
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from ftauth import vault
from ftauth.core.logout_token import BACKCHANNEL_LOGOUT_EVENT
from ftauth.models import AccountSession, AuditEvent, ConsumedLogoutToken, Grant
from tests.fakeop import CLIENT_ID
from tests.lifecycle import grant_of, sign_in

pytestmark = pytest.mark.django_db

PROTECTED = "/ftauth/account/"
BACKCHANNEL = "/ftauth/backchannel-logout/individu/"


def signed_in(client: Client) -> bool:
    return client.get(PROTECTED).status_code == 200


# --- sign-out ----------------------------------------------------------------------------------


def test_logout_goes_through_the_end_session_url(fakeop):
    client = Client()
    account = sign_in(client, fakeop, "sub-logout")
    id_token = vault.get_id_token(grant_of(account))
    response = client.post("/ftauth/logout/")
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        f"{fakeop.server_url}/compte/deconnexion"
    )
    # France Travail's parameter is redirect_uri, absolute, to a page of this site.
    assert parse_qs(location.query) == {
        "id_token_hint": [id_token],
        "redirect_uri": ["http://testserver/"],
    }
    assert not signed_in(client)
    assert not AccountSession.objects.filter(account=account).exists()
    assert AuditEvent.objects.filter(account=account, kind="signed_out").count() == 1
    # This device's grant is forgotten; signing out is not withdrawing consent.
    assert not Grant.objects.filter(account=account).exists()
    account.refresh_from_db()
    assert account.consent_withdrawn_at is None


def test_logout_needs_post_and_a_get_shows_the_sign_out_form(fakeop):
    client = Client()
    sign_in(client, fakeop, "sub-logout-get")
    page = client.get("/ftauth/logout/")
    assert page.status_code == 200 and 'data-ftauth-page="logout"' in page.content.decode()
    assert 'method="post" action="/ftauth/logout/"' in page.content.decode()
    assert signed_in(client)  # a GET (a link, an image) never signs out
    assert client.put("/ftauth/logout/").status_code == 405


def test_logout_is_csrf_protected(fakeop):
    client = Client(enforce_csrf_checks=True)
    sign_in(client, fakeop, "sub-logout-csrf")
    assert client.post("/ftauth/logout/").status_code == 403
    assert signed_in(client)


def test_logout_redirect_is_never_off_site(fakeop, settings):
    settings.FTAUTH = {**settings.FTAUTH, "LOGOUT_REDIRECT_URL": "https://evil.example/"}
    client = Client()
    sign_in(client, fakeop, "sub-logout-offsite")
    query = parse_qs(urlsplit(client.post("/ftauth/logout/")["Location"]).query)
    assert query["redirect_uri"] == ["http://testserver/"]


def test_logout_without_ftauth_session_stays_on_site(settings):
    response = Client().post("/ftauth/logout/")
    assert response.status_code == 302 and response["Location"] == "/"


# --- back-channel logout: a valid token ends sessions -----------------------------------------


def post_logout_token(token: str | None):
    data = {} if token is None else {"logout_token": token}
    return Client().post(BACKCHANNEL, data)


def test_valid_logout_token_with_sub_ends_every_session(session_engine, fakeop):
    laptop, phone = Client(), Client()
    account = sign_in(laptop, fakeop, "sub-bcl")
    sign_in(phone, fakeop, "sub-bcl")
    response = post_logout_token(fakeop.logout_token(sub="sub-bcl", iss=fakeop.issuer()))
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert not AccountSession.objects.filter(account=account).exists()
    assert AuditEvent.objects.filter(account=account, kind="backchannel_logout").count() == 1
    assert not Grant.objects.filter(account=account).exists()
    if session_engine.endswith("signed_cookies"):
        return  # ended at the next check (its row is gone): see test_middleware
    assert not signed_in(laptop)
    assert not signed_in(phone)


def test_valid_logout_token_with_sid_ends_that_session_only(fakeop):
    laptop, phone = Client(), Client()
    account = sign_in(laptop, fakeop, "sub-bcl-sid")
    laptop_sid = fakeop.grant_of("sub-bcl-sid").sid
    sign_in(phone, fakeop, "sub-bcl-sid")
    token = fakeop.logout_token(sub=None, sid=laptop_sid)
    assert post_logout_token(token).status_code == 200
    assert not signed_in(laptop)
    assert signed_in(phone)
    assert AccountSession.objects.filter(account=account).count() == 1


def test_logout_token_for_nobody_known_is_accepted(fakeop):
    assert post_logout_token(fakeop.logout_token(sub="never-signed-in")).status_code == 200


def test_logout_token_without_exp_is_accepted(fakeop):
    """exp is checked when present; older servers follow drafts without it."""
    assert post_logout_token(fakeop.logout_token(exp=None)).status_code == 200


# --- back-channel logout: every malformed token refused (one case per rule) -------------------

OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "fakeop-1"}, private=True)


def forged_signature(fakeop) -> str:
    # Same kid as the real key, signed with another one.
    return jwt.encode({"alg": "RS256", "kid": "fakeop-1"}, fakeop.logout_claims(), OTHER_KEY)


def hs256_with_client_secret(fakeop) -> str:
    return jwt.encode(
        {"alg": "HS256"}, fakeop.logout_claims(), OctKey.import_key("tests-client-secret")
    )


def unsigned(fakeop) -> str:
    import base64
    import json

    def b64(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none'})}.{b64(fakeop.logout_claims())}."


MALFORMED = {
    "signature": forged_signature,
    "algorithm_hs256": hs256_with_client_secret,
    "algorithm_none": unsigned,
    "iss": lambda op: op.logout_token(iss="https://elsewhere.example/realms/individu"),
    "aud": lambda op: op.logout_token(aud="another-client"),
    "iat_missing": lambda op: op.logout_token(iat=None),
    "iat_future": lambda op: op.logout_token(iat=int(time.time()) + 3600),
    "iat_too_old": lambda op: op.logout_token(iat=int(time.time()) - 3600, exp=None),
    "exp_past": lambda op: op.logout_token(exp=int(time.time()) - 3600),
    "sub_or_sid": lambda op: op.logout_token(sub=None, sid=None),
    "sub_malformed": lambda op: op.logout_token(sub=12345),
    # No database stores a NUL in text: such a token names no one and must not reach one.
    "sub_with_nul": lambda op: op.logout_token(sub="sub-1\x00"),
    "jti_with_nul": lambda op: op.logout_token(jti="j\x00"),
    "events_missing": lambda op: op.logout_token(events=None),
    "events_other_event": lambda op: op.logout_token(events={"urn:other": {}}),
    "events_as_list": lambda op: op.logout_token(events=[BACKCHANNEL_LOGOUT_EVENT]),
    "nonce": lambda op: op.logout_token(nonce="n-0S6_WzA2Mj"),
    "jti": lambda op: op.logout_token(jti=None),
    "format": lambda op: "not-a-jwt",
}


@pytest.mark.parametrize("rule", list(MALFORMED))
def test_malformed_logout_token_is_refused(fakeop, rule):
    client = Client()
    account = sign_in(client, fakeop, "sub-1")  # the sub the logout tokens name
    response = post_logout_token(MALFORMED[rule](fakeop))
    assert response.status_code == 400
    assert response["Cache-Control"] == "no-store"
    assert response.json()["error"] == "invalid_request"
    assert signed_in(client)
    assert AccountSession.objects.filter(account=account).exists()
    assert not ConsumedLogoutToken.objects.exists()


def assert_replay_has_no_effect(fakeop, token: str, sub: str) -> None:
    """``token`` was delivered once; a session signed in since survives its replay."""
    client = Client()
    account = sign_in(client, fakeop, sub)
    response = post_logout_token(token)
    assert response.status_code == 400
    assert "jti_replay" in response.json()["error_description"]
    assert signed_in(client)
    assert Grant.objects.filter(account=account).count() == 1
    assert AccountSession.objects.filter(account=account).count() == 1
    assert not AuditEvent.objects.filter(account=account, kind="backchannel_logout").exists()


def test_replayed_logout_token_is_refused(fakeop):
    token = fakeop.logout_token(sub="sub-replay")
    assert post_logout_token(token).status_code == 200
    assert_replay_has_no_effect(fakeop, token, "sub-replay")


def test_replayed_logout_token_is_refused_after_a_purge(fakeop):
    """The ``jti`` is remembered as long as the token could pass (``iat`` + max age):
    ftauth_purge, which runs at any time, keeps it until then."""
    token = fakeop.logout_token(sub="sub-replay-purge", exp=None)
    assert post_logout_token(token).status_code == 200
    call_command("ftauth_purge", stdout=io.StringIO())
    assert ConsumedLogoutToken.objects.count() == 1
    assert_replay_has_no_effect(fakeop, token, "sub-replay-purge")


def test_missing_logout_token_is_refused():
    response = post_logout_token(None)
    assert response.status_code == 400 and response["Cache-Control"] == "no-store"


def test_backchannel_logout_needs_post(fakeop):
    assert Client().get(BACKCHANNEL).status_code == 405


def test_backchannel_logout_of_a_disabled_realm_is_refused(fakeop, settings):
    conf = {**settings.FTAUTH, "REALMS": {"individu": {"server": fakeop.server_url}}}
    settings.FTAUTH = conf
    response = Client().post(
        "/ftauth/backchannel-logout/employeur/", {"logout_token": fakeop.logout_token()}
    )
    assert response.status_code == 400


def test_id_token_is_not_a_logout_token(fakeop):
    client = Client()
    sign_in(client, fakeop, "sub-idt")
    id_token = fakeop.id_token(fakeop.grant_of("sub-idt"), nonce="n", jti="j")
    assert post_logout_token(id_token).status_code == 400
    assert signed_in(client)


def test_logout_token_for_another_client_does_not_use_our_audience(fakeop):
    token = fakeop.logout_token(aud=[CLIENT_ID + "-other"])
    assert post_logout_token(token).status_code == 400


def test_logout_token_ends_sessions_without_calling_france_travail(fakeop):
    """A logout is a logout, not a verdict on consent: no userinfo, no refresh."""
    client = Client()
    account = sign_in(client, fakeop, "sub-bcl-nocall")
    calls = len(fakeop.requests)
    assert post_logout_token(fakeop.logout_token(sub="sub-bcl-nocall")).status_code == 200
    assert len(fakeop.requests) == calls
    assert client.get(PROTECTED)["Location"].startswith("/")
    assert not signed_in(client)
    assert not Grant.objects.filter(account=account).exists()
    account.refresh_from_db()
    assert account.consent_withdrawn_at is None
