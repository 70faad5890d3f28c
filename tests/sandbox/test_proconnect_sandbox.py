"""The sandbox speaks ProConnect: the site's ``proconnect`` realm signs professionals in
through it over real HTTP, with its four personas (docs/proconnect.md)."""

from __future__ import annotations

import copy
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from ftauth.sandbox.scripted import ScriptedUser, forms_of
from ftauth.sandbox.views.proconnect import FRANCE_TRAVAIL_IDP

pytestmark = pytest.mark.django_db(transaction=True)

ACCOUNT = "/ftauth/account/"


@pytest.fixture
def pro(sandbox, settings):
    conf = copy.deepcopy(settings.FTAUTH)
    conf["REALMS"]["proconnect"] = {"request_amr": True}
    settings.FTAUTH = conf
    return sandbox


def configure(settings, **options):
    conf = copy.deepcopy(settings.FTAUTH)
    conf["REALMS"]["proconnect"].update(options)
    settings.FTAUTH = conf


def sign_in(user: ScriptedUser, professional: str, next_url: str = ACCOUNT):
    page = user.get("/ftauth/login/proconnect/", params={"next": next_url})
    form = next(f for f in forms_of(page) if f.id == "ftauth-sandbox-proconnect")
    offered = [b for b in form.buttons if b[0] == "professional"]
    assert ("professional", professional) in offered, offered
    return user.submit(
        page, form_id="ftauth-sandbox-proconnect", button=("professional", professional)
    )


def linked():
    from ftauth.models import LinkedAccount

    return LinkedAccount.objects.get(realm="proconnect")


@pytest.mark.parametrize("professional", ["advisor", "agent", "prescriber", "no_mfa"])
def test_each_persona_signs_in(pro, professional):
    page = sign_in(ScriptedUser(pro), professional)
    assert page.status_code == 200 and page.url.endswith(ACCOUNT), page.text[:300]
    account = linked()
    assert account.claims["idp_id"]
    assert account.claims["usual_name"]
    # amr only when MFA happened; absent is recorded as None, never refused.
    assert (account.claims["amr"] is None) == (professional == "no_mfa")


def test_advisor_with_idp_hint_is_the_only_choice_and_brings_the_agency(pro, settings):
    configure(settings, idp_hint=FRANCE_TRAVAIL_IDP)
    user = ScriptedUser(pro)
    page = user.get("/ftauth/login/proconnect/")
    buttons = [b for f in forms_of(page) for b in f.buttons if b[0] == "professional"]
    assert buttons == [("professional", "advisor")]
    assert sign_in(user, "advisor").url.endswith(ACCOUNT)
    assert linked().claims["custom"] == {"structureTravail": "75011"}


def test_a_provider_without_mfa_is_refused_where_mfa_is_required(pro, settings):
    configure(settings, acr_values=["eidas1-mfa"])
    page = sign_in(ScriptedUser(pro), "no_mfa")
    assert page.status_code == 403 and "Niveau de sécurité insuffisant" in page.text
    assert sign_in(ScriptedUser(pro), "agent").url.endswith(ACCOUNT)


def test_an_essential_level_not_met_comes_back_without_code_to_a_clear_page(pro, settings):
    configure(settings, acr_values=["eidas1-mfa"], acr_essential=True)
    page = sign_in(ScriptedUser(pro), "no_mfa")
    assert page.status_code == 403 and "Niveau de sécurité insuffisant" in page.text


def test_the_sandbox_refuses_unknown_parameters_and_short_state(pro, settings):
    user = ScriptedUser(pro)
    login = user.get("/ftauth/login/proconnect/", allow_redirects=False)
    authorize = login.headers["Location"]
    assert user.get(authorize + "&realm=%2Findividu").status_code == 400  # Y000400
    query = parse_qs(urlsplit(authorize).query)
    for name in ("state", "nonce"):
        short = {**query, name: ["x" * 31]}
        answer = requests.get(authorize.split("?")[0], params=short, timeout=10)
        assert answer.status_code == 400, name


def test_refresh_and_sign_out_with_state(pro):
    from ftauth import vault
    from ftauth.conf import serving_origin
    from ftauth.models import Grant

    user = ScriptedUser(pro)
    page = sign_in(user, "agent")
    grant = Grant.objects.get()
    before = vault.get_id_token(grant)
    with serving_origin(pro):  # outside a request: the sandbox's site-relative URLs
        vault.refresh(grant, force=True)
    assert vault.get_id_token(Grant.objects.get()) != before
    form = next(f for f in forms_of(page) if f.action.endswith("/ftauth/logout/"))
    out = user.http.post(
        f"{pro}/ftauth/logout/",
        data=form.fields,
        headers={"Referer": page.url},
        timeout=10,
        allow_redirects=False,
    )
    location = out.headers["Location"]
    assert "/sandbox/proconnect/api/v2/session/end?" in location
    assert not Grant.objects.exists()  # before the trip to ProConnect
    # ProConnect requires the state at its session/end: without one, no sign-out.
    end, _, query = location.partition("?")
    stateless = {k: v for k, v in parse_qs(query).items() if k != "state"}
    assert user.http.get(end, params=stateless, timeout=10).status_code == 400
    back = user.http.get(location, timeout=10)
    assert back.status_code == 200 and back.url == f"{pro}/"
    assert user.get(ACCOUNT, allow_redirects=False).status_code == 302


def test_the_doctor_examines_the_proconnect_realm(pro, settings):
    import contextlib
    import io

    from django.core.management import call_command

    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "ftauth_doctor_cache",
        }
    }
    call_command("createcachetable", verbosity=0)
    out = io.StringIO()
    with contextlib.suppress(SystemExit):  # its exit status is another test's business
        call_command("ftauth_doctor", "--site", pro, stdout=out, no_color=True)
    report = out.getvalue()
    ok = [line for line in report.splitlines() if line.startswith("ok")]
    for check in ("discovery", "issuer", "JWKS"):
        assert any(f"realm proconnect {check}" in line for line in ok), report
    assert f"{pro}/ftauth/callback/proconnect/" in report
