"""The login and callback views against the fake France Travail over real HTTP.

Every security rule of the callback has a test here that fails when the rule
is removed; the same rules are exercised against the sandbox in
tests/test_signin_sandbox.py.
"""

import base64
import hashlib
import logging
import time

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from ftauth.core.authorize import state_hash
from ftauth.models import AuditEvent, Grant, LinkedAccount, PendingAuthorization
from tests.idp import (
    SUB,
    authorize,
    callback,
    expire_pending,
    pending_cookie,
    pending_for,
    sign_in,
    start,
)

pytestmark = pytest.mark.django_db


# --- the authorization request ------------------------------------------------------------


def test_login_sends_realm_state_nonce_and_pkce_s256(client, idp):
    params = start(client)
    assert params["realm"] == "/individu"
    assert params["response_type"] == "code"
    assert params["client_id"] == "ftauth-tests"
    assert params["redirect_uri"] == "http://testserver/ftauth/callback/individu/"
    assert "api_peconnect-individuv1" in params["scope"].split()
    assert params["code_challenge_method"] == "S256"
    # 128 bits at least: 22 base64url characters.
    assert len(params["state"]) >= 22 and len(params["nonce"]) >= 22
    verifier = pending_for(params["state"]).code_verifier
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert params["code_challenge"] == challenge.decode()
    assert not idp.requests, "starting the flow must not call the identity server"


def test_each_request_gets_fresh_state_and_nonce(client, idp):
    first, second = start(client), start(client)
    assert first["state"] != second["state"] and first["nonce"] != second["nonce"]


def test_state_is_stored_hashed_never_in_clear(client, idp):
    params = start(client)
    cookie = client.cookies["ftauth_pending"].value
    for secret in (params["state"], params["nonce"]):
        assert secret not in cookie
    assert pending_cookie(client)[0][0] == state_hash(params["state"])


def test_a_sign_in_start_writes_nothing_on_the_server(client, idp):
    """Anonymous requests cannot grow the database (issue 14, item 7): no session
    row, no pending row, however many starts; the nonce and verifier are stored
    nowhere (item 9)."""
    from django.contrib.sessions.models import Session

    for _ in range(20):
        params = start(Client())
    assert not Session.objects.exists()
    assert not PendingAuthorization.objects.exists()
    # The callback records only the consumed state's hash, no secret.
    client_with_pending = Client()
    params = start(client_with_pending)
    callback(client_with_pending, idp, params, code=authorize(idp, params))
    row = PendingAuthorization.objects.get()
    assert row.state_hash == state_hash(params["state"])
    assert row.nonce == "" and row.code_verifier == ""


def test_a_replayed_callback_with_the_old_cookie_is_refused(client, idp):
    """Single use under concurrency: two callbacks carrying the same cookie and state
    (a replay, or a double click racing itself); only one reaches the token endpoint."""
    params = start(client)
    cookie = client.cookies["ftauth_pending"].value
    code = authorize(idp, params)
    assert callback(client, idp, params, code=code).status_code == 302
    twin = Client()
    twin.cookies["ftauth_pending"] = cookie
    assert callback(twin, idp, params, code=code).status_code == 400
    assert len(idp.token_requests()) == 1


def test_unknown_or_disabled_realm_is_404(client, idp, settings):
    assert client.get("/ftauth/login/candidat/").status_code == 404
    realms = {"individu": settings.FTAUTH["REALMS"]["individu"]}
    settings.FTAUTH = {**settings.FTAUTH, "REALMS": realms}
    assert client.get("/ftauth/login/partenaire/").status_code == 404


# --- state ----------------------------------------------------------------------------------


def test_successful_sign_in_lands_on_next_with_a_linked_account(client, idp):
    _params, response = sign_in(client, idp, next_url="/profile/?tab=1")
    assert response.status_code == 302
    assert response["Location"] == "/profile/?tab=1"
    account = LinkedAccount.objects.get(realm="individu", sub=SUB)
    assert client.session["_auth_user_id"] == str(account.user_id)
    assert account.claims["given_name"] == "Camille"
    assert Grant.objects.filter(account=account).exists()
    assert AuditEvent.objects.filter(account=account, kind="linked").exists()
    token_request = idp.token_requests()[0]
    assert token_request["query"]["realm"] == ["/individu"]
    assert token_request["form"]["client_secret"] == ["tests-client-secret"]
    assert token_request["form"]["redirect_uri"] == ["http://testserver/ftauth/callback/individu/"]


def test_token_request_carries_the_pkce_verifier_of_this_request(client, idp):
    params = start(client)
    pending = pending_for(params["state"])
    callback(client, idp, params, code=authorize(idp, params))
    assert idp.token_requests()[0]["form"]["code_verifier"] == [pending.code_verifier]


def test_missing_state_is_400_without_token_request(client, idp):
    start(client)
    response = client.get("/ftauth/callback/individu/", {"code": "c"})
    assert response.status_code == 400
    assert not idp.token_requests()


def test_unknown_state_is_400_without_token_request(client, idp):
    start(client)
    response = client.get("/ftauth/callback/individu/", {"code": "c", "state": "forged"})
    assert response.status_code == 400
    assert "inconnue" in response.content.decode()
    assert not idp.token_requests()
    assert "_auth_user_id" not in client.session


def test_reused_state_is_400_and_the_code_is_not_sent_twice(client, idp):
    params, first = sign_in(client, idp)
    assert first.status_code == 302
    client.logout()
    second = callback(client, idp, params, code=idp.authorize(SUB, nonce="n"))
    assert second.status_code == 400
    assert len(idp.token_requests()) == 1


def test_state_replayed_in_the_same_session_is_refused(client, idp):
    params = start(client)
    code = authorize(idp, params)
    idp.token_script = (400, {}, {"error": "invalid_grant"})
    assert callback(client, idp, params, code=code).status_code == 400
    assert callback(client, idp, params, code=code).status_code == 400
    assert len(idp.token_requests()) == 1


def test_expired_state_is_400_without_token_request(client, idp):
    params = start(client)
    expire_pending(client)
    response = callback(client, idp, params)
    assert response.status_code == 400
    assert not idp.token_requests()


def test_pending_cookie_outlives_its_requests_so_a_late_return_says_expired(client, settings):
    """A browser drops a cookie at its Max-Age: one equal to the TTL would turn every
    late return into "unknown request" instead of "expired"."""
    from ftauth.internal.signin import PENDING_COOKIE

    settings.FTAUTH = {**settings.FTAUTH, "PENDING_LOGIN_TTL": 60}
    response = client.get("/ftauth/login/individu/")
    assert response.status_code == 302
    assert int(response.cookies[PENDING_COOKIE]["max-age"]) > 60


def test_state_from_another_browser_is_refused(client, idp, django_user_model):
    from django.test import Client

    params = start(client)
    other = Client()
    other.get("/")
    response = callback(other, idp, params)
    assert response.status_code == 400
    assert not idp.token_requests()


def test_several_tabs_each_complete(client, idp):
    first, second = start(client), start(client)
    first_code = authorize(idp, first)
    assert callback(client, idp, second, code=authorize(idp, second)).status_code == 302
    # The first tab's request is still pending in this browser's cookie.
    assert callback(client, idp, first, code=first_code).status_code == 302


def test_pending_requests_are_capped_oldest_first(client, idp, settings):
    settings.FTAUTH = {**settings.FTAUTH, "PENDING_LOGIN_MAX": 3}
    states = [start(client)["state"] for _ in range(4)]
    assert len(pending_cookie(client)) == 3
    assert callback(client, idp, {"state": states[0]}).status_code == 400
    last = {"state": states[3]}
    assert callback(client, idp, last, code=authorize(idp, last)).status_code == 302


# --- next -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "next_url",
    ["https://evil.example/", "//evil.example/x", "http://testserver.evil/", "javascript:alert(1)"],
)
def test_unsafe_next_is_replaced_by_the_default(client, idp, next_url):
    _params, response = sign_in(client, idp, next_url=next_url)
    assert response["Location"] == "/profile/"


# --- cancel and refusal ---------------------------------------------------------------------


def test_return_with_state_only_means_cancelled(client, idp):
    params = start(client)
    response = client.get("/ftauth/callback/individu/", {"state": params["state"]})
    assert response.status_code == 200
    body = response.content.decode()
    assert "annulé" in body and "/ftauth/login/individu/" in body
    assert not idp.token_requests()


def test_access_denied_gives_a_friendly_page(client, idp):
    params = start(client)
    response = client.get(
        "/ftauth/callback/individu/", {"state": params["state"], "error": "access_denied"}
    )
    assert response.status_code == 200
    assert "/ftauth/login/individu/" in response.content.decode()
    assert not idp.token_requests()


# --- callback parameters (RFC 9207, client_id) ---------------------------------------------


def test_wrong_iss_parameter_is_refused_before_the_token_request(client, idp):
    params = start(client)
    response = callback(client, idp, params, iss="https://evil.example/")
    assert response.status_code == 400
    assert not idp.token_requests()


def test_missing_iss_is_refused_when_discovery_announces_it(client, idp):
    params = start(client)
    assert callback(client, idp, params, iss=None).status_code == 400
    assert not idp.token_requests()


def test_missing_iss_is_accepted_when_not_announced(client, idp):
    idp.iss_parameter_supported = False
    params = start(client)
    assert callback(client, idp, params, iss=None, code=authorize(idp, params)).status_code == 302


@pytest.mark.parametrize(
    "extra",
    [{"error": "access_denied"}, {"error": "server_error"}, {}],
    ids=["access-denied", "other-error", "cancel"],
)
def test_error_callback_with_a_foreign_iss_is_refused(client, idp, extra):
    params = start(client)
    query = {"state": params["state"], "iss": "https://evil.example/", **extra}
    response = client.get("/ftauth/callback/individu/", query)
    assert response.status_code == 400
    assert "refusée" in response.content.decode()
    assert not idp.token_requests()


def test_error_callback_with_a_foreign_client_id_is_refused(client, idp):
    params = start(client)
    query = {"state": params["state"], "error": "access_denied", "client_id": "another-app"}
    assert client.get("/ftauth/callback/individu/", query).status_code == 400


def test_error_callback_with_our_iss_or_none_gets_its_page(client, idp):
    first, second = start(client), start(client)
    denied = {"state": first["state"], "error": "access_denied", "iss": idp.issuer()}
    assert client.get("/ftauth/callback/individu/", denied).status_code == 200
    # France Travail's cancel button returns the state alone, RFC 9207 or not.
    assert client.get("/ftauth/callback/individu/", {"state": second["state"]}).status_code == 200


def test_foreign_client_id_parameter_is_refused(client, idp):
    params = start(client)
    assert callback(client, idp, params, client_id="another-app").status_code == 400
    assert not idp.token_requests()


# --- token endpoint failures ----------------------------------------------------------------


def test_invalid_grant_says_code_expired_with_a_restart_link(client, idp):
    params = start(client)
    idp.token_script = (400, {}, {"error": "invalid_grant"})
    response = callback(client, idp, params)
    assert response.status_code == 400
    body = response.content.decode()
    assert "expiré" in body and "/ftauth/login/individu/" in body
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    ("status", "body", "headers"),
    [
        (500, {"error": "server_error"}, {}),
        (502, b"<html>bad gateway</html>", {}),
        (429, {}, {"Retry-After": "7"}),
    ],
)
def test_server_trouble_is_a_503(client, idp, status, body, headers):
    params = start(client)
    idp.token_script = (status, headers, body)
    response = callback(client, idp, params)
    assert response.status_code == 503
    if status == 429:
        assert response["Retry-After"] == "7"
        assert "7" in response.content.decode()
    assert not LinkedAccount.objects.exists()


def test_timeout_is_a_503(client, idp):
    params = start(client)
    idp.token_delay = 1.5
    response = callback(client, idp, params)
    assert response.status_code == 503


def test_unreachable_server_is_a_503(client, idp, settings):
    from ftauth.internal.provider import get_provider

    get_provider("individu").metadata()  # discovery had worked; then the server went away
    realms = settings.FTAUTH["REALMS"]
    closed = {"server": idp.server_url, "token_url": "http://127.0.0.1:9/access_token"}
    settings.FTAUTH = {**settings.FTAUTH, "REALMS": {**realms, "individu": closed}}
    params = start(client)
    assert callback(client, idp, params, code=authorize(idp, params)).status_code == 503


def test_token_response_without_id_token_is_refused(client, idp):
    params = start(client)
    idp.token_script = (200, {}, {"access_token": "a", "token_type": "Bearer", "expires_in": 10})
    assert callback(client, idp, params).status_code == 400
    assert not LinkedAccount.objects.exists()


# --- ID token and userinfo, end to end ------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"iss": "https://evil.example"},
        {"aud": "another-app", "azp": None},
        {"exp": 1_000_000},
        {"nonce": "forged-nonce"},
        {"sub": None},
    ],
)
def test_tampered_id_token_never_signs_in(client, idp, overrides):
    params = start(client)
    code = authorize(idp, params)
    idp.claim_overrides = overrides
    response = callback(client, idp, params, code=code)
    assert response.status_code == 400
    assert "_auth_user_id" not in client.session
    assert not LinkedAccount.objects.exists()
    assert not get_user_model().objects.exists()


def test_token_response_nonce_must_match(client, idp):
    params = start(client)
    nonce = pending_for(params["state"]).nonce
    body = {
        "access_token": "a",
        "token_type": "Bearer",
        "expires_in": 1499,
        "id_token": idp.id_token(sub=SUB, nonce=nonce),
        "nonce": "other-nonce",
    }
    idp.token_script = (200, {}, body)
    assert callback(client, idp, params).status_code == 400
    assert not LinkedAccount.objects.exists()


def test_userinfo_for_another_sub_is_refused(client, idp):
    params = start(client)
    idp.userinfo_body = {"sub": "someone-else"}
    assert callback(client, idp, params, code=authorize(idp, params)).status_code == 400
    assert not LinkedAccount.objects.exists()


def test_userinfo_token_goes_in_the_header_only(client, idp):
    sign_in(client, idp)
    userinfo = next(r for r in idp.requests if "userinfo" in r["path"])
    assert userinfo["headers"]["Authorization"].startswith("Bearer ")
    assert "access_token" not in userinfo["query"]


def test_userinfo_can_be_switched_off_per_realm(client, idp, settings):
    conf = dict(settings.FTAUTH)
    conf["REALMS"] = {"individu": {"server": idp.server_url, "fetch_userinfo": False}}
    settings.FTAUTH = conf
    _, response = sign_in(client, idp)
    assert response.status_code == 302
    assert not [r for r in idp.requests if "userinfo" in r["path"]]


def test_error_pages_speak_english_too(client, idp):
    start(client)
    response = client.get(
        "/ftauth/callback/individu/", {"code": "c", "state": "forged"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 400
    assert "Unknown or expired sign-in request" in response.content.decode()


def test_refused_client_credentials_are_a_503_that_names_the_settings(client, idp, caplog):
    params = start(client)
    idp.token_script = (401, {}, {"error": "invalid_client"})
    response = callback(client, idp, params)
    assert response.status_code == 503
    assert "FTAUTH['CLIENT_SECRET']" in caplog.text
    assert "tests-client-secret" not in caplog.text


def test_state_consumed_by_a_concurrent_callback_is_refused(rf):
    """Two callbacks with one state and one cookie: the one whose insert of the
    consumed state's hash fails stops before any token request."""
    from django.core import signing

    from ftauth.core.authorize import state_hash
    from ftauth.internal.signin import PENDING_COOKIE, PENDING_SALT, StateError, take_pending

    state = "a-state-of-reasonable-length-123"
    entry = [state_hash(state), "individu", time.time() + 300, "http://testserver/cb/", "/"]
    cookie = signing.dumps([entry], salt=PENDING_SALT, compress=True)
    first = rf.get("/ftauth/callback/individu/", HTTP_COOKIE=f"{PENDING_COOKIE}={cookie}")
    second = rf.get("/ftauth/callback/individu/", HTTP_COOKIE=f"{PENDING_COOKIE}={cookie}")
    assert take_pending(first, "individu", state).redirect_uri == "http://testserver/cb/"
    with pytest.raises(StateError):
        take_pending(second, "individu", state)


def test_an_authorize_error_about_the_site_says_so_and_logs_france_travails_words(
    client, idp, caplog
):
    """France Travail's authorize errors come back with ``error_description`` (page
    erreurs-frequentes): the person gets a page that fits, the log the description."""
    params = start(client)
    description = "Unknown/invalid scope(s): [api_nope]"
    with caplog.at_level(logging.WARNING):
        response = callback(
            client, idp, params, code=None, error="invalid_scope", error_description=description
        )
    assert response.status_code == 502
    assert "Connexion impossible depuis ce site" in response.content.decode()
    assert "invalid_scope" in caplog.text and description in caplog.text
    assert params["state"] not in caplog.text
    assert not idp.token_requests()


def test_an_echoed_state_in_an_error_description_is_masked(client, idp, caplog):
    params = start(client)
    with caplog.at_level(logging.WARNING):
        callback(
            client,
            idp,
            params,
            code=None,
            error="invalid_request",
            error_description=f"bad request for state {params['state']}",
        )
    assert "bad request for state" in caplog.text
    assert params["state"] not in caplog.text


@pytest.mark.parametrize(
    ("error", "status", "title"),
    [
        ("temporarily_unavailable", 503, "Service indisponible"),
        ("server_error", 503, "Service indisponible"),
        ("login_required", 200, "Connexion nécessaire"),
        ("interaction_required", 200, "Connexion nécessaire"),
        ("something_new", 400, "Réponse de France Travail refusée"),
    ],
)
def test_each_authorize_error_gets_its_page_and_a_way_to_start_again(
    client, idp, error, status, title
):
    params = start(client)
    response = callback(client, idp, params, code=None, error=error)
    text = response.content.decode()
    assert response.status_code == status and title in text
    assert "/ftauth/login/individu/" in text  # a link the person follows, never a redirect loop
    assert not idp.token_requests()


def test_a_silent_answer_without_state_never_loops(client, idp):
    """``prompt=none`` was seen coming back without ``state``: a page, not a new request."""
    start(client)
    response = client.get("/ftauth/callback/individu/", {"error": "login_required"})
    assert response.status_code == 400
    assert "Location" not in response
