"""Logout token claims (Back-Channel Logout 1.0 section 2.6), one rule at a time, no Django."""

from __future__ import annotations

import pytest

from ftauth.core.errors import TokenValidationError
from ftauth.core.logout_token import (
    BACKCHANNEL_LOGOUT_EVENT,
    LOGOUT_TOKEN_MAX_AGE,
    validate_logout_claims,
)

NOW = 1_800_000_000
ISSUER = "https://authentification-candidat.francetravail.fr:443/connexion/oauth2/realms/root/realms/individu"


def claims(**changes):
    base = {
        "iss": ISSUER,
        "aud": "client",
        "iat": NOW - 5,
        "exp": NOW + 115,
        "jti": "jti-1",
        "sub": "sub-1",
        "sid": "sid-1",
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def validate(values, trusted=("other",)):
    return validate_logout_claims(
        values, issuer=ISSUER, client_id="client", trusted_audiences=trusted, leeway=60, now=NOW
    )


def test_valid_claims_name_whose_sessions_end():
    request = validate(claims())
    assert (request.sub, request.sid, request.jti, request.issuer) == (
        "sub-1",
        "sid-1",
        "jti-1",
        ISSUER,
    )
    # Remembered as long as check_issued_at would accept the token.
    assert request.remember_until == NOW - 5 + LOGOUT_TOKEN_MAX_AGE + 60


@pytest.mark.parametrize(
    "values",
    [claims(sid=None), claims(sub=None), claims(exp=None), claims(aud=["other", "client"])],
    ids=["sub-only", "sid-only", "no-exp", "trusted-audience-list"],
)
def test_accepted_variants(values):
    request = validate(values)
    assert (request.sub, request.sid) == (values.get("sub"), values.get("sid"))
    assert request.jti == "jti-1" and request.issuer == ISSUER


@pytest.mark.parametrize(
    ("values", "rule"),
    [
        (claims(iss=ISSUER + "/"), "iss"),
        (claims(aud="other"), "aud"),
        (claims(iat=None), "iat"),
        (claims(iat="yesterday"), "iat"),
        (claims(iat=NOW + 600), "iat"),
        (claims(iat=NOW - LOGOUT_TOKEN_MAX_AGE - 120, exp=None), "iat"),
        (claims(exp=NOW - 120), "exp"),
        (claims(sub=None, sid=None), "sub_or_sid"),
        (claims(sid=""), "sub_or_sid"),
        (claims(events=None), "events"),
        (claims(events={"urn:other": {}}), "events"),
        (claims(events={BACKCHANNEL_LOGOUT_EVENT: "yes"}), "events"),
        (claims(nonce="n"), "nonce"),
        (claims(jti=None), "jti"),
        (claims(jti=""), "jti"),
    ],
    ids=[
        "iss-not-exact",
        "aud-other",
        "iat-missing",
        "iat-not-number",
        "iat-future",
        "iat-too-old",
        "exp-past",
        "neither-sub-nor-sid",
        "sid-empty",
        "events-missing",
        "events-other",
        "event-not-object",
        "nonce-present",
        "jti-missing",
        "jti-empty",
    ],
)
def test_each_rule_refuses(values, rule):
    with pytest.raises(TokenValidationError) as excinfo:
        validate(values)
    assert excinfo.value.rule == rule


@pytest.mark.parametrize("iat", [True, "1800000000", None], ids=["boolean", "string", "missing"])
def test_iat_is_the_id_tokens_rule(iat):
    """One ``iat`` rule for ID tokens and logout tokens: what one refuses, so does the other."""
    from ftauth.core import idtoken

    for check in (
        lambda: validate(claims(iat=iat)),
        lambda: idtoken.check_issued_at(claims(iat=iat), NOW, 60, LOGOUT_TOKEN_MAX_AGE),
    ):
        with pytest.raises(TokenValidationError) as info:
            check()
        assert info.value.rule == "iat"


def test_an_untrusted_extra_audience_is_refused():
    """Section 2.6 step 3: ``aud`` validated as in ID tokens (OIDC Core 3.1.3.7 step 3)."""
    with pytest.raises(TokenValidationError) as excinfo:
        validate(claims(aud=["other", "client"]), trusted=())
    assert excinfo.value.rule == "aud"
