"""OIDC Core 3.1.3.7, one test per rule: each fails if its check is removed."""

import dataclasses
import time

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from ftauth.core import idtoken
from ftauth.core.errors import TokenValidationError

ISSUER = "https://authentification-candidat.francetravail.fr:443/connexion/oauth2/realms/root/realms/individu"
CLIENT_ID = "client-1"
SECRET = "a-client-secret-of-reasonable-length-123456"
NONCE = "n-0S6_WzA2Mj"
NOW = 1_800_000_000


@pytest.fixture(scope="module")
def key():
    return RSAKey.generate_key(2048, parameters={"kid": "k1"})


@pytest.fixture(scope="module")
def other_key():
    return RSAKey.generate_key(2048, parameters={"kid": "k2"})


def jwks_of(*keys):
    return {"keys": [k.as_dict(private=False) for k in keys]}


class JwksSource:
    """Serves a JWKS and counts the fetches; ``later`` is served after a refresh."""

    def __init__(self, first, later=None):
        self.first, self.later, self.calls = first, later, []

    def __call__(self, refresh):
        self.calls.append(refresh)
        return self.later if (refresh and self.later is not None) else self.first


def claims(**overrides):
    base = {
        "iss": ISSUER,
        "sub": "sub-123",
        "aud": CLIENT_ID,
        "exp": NOW + 9000,
        "iat": NOW,
        "nonce": NONCE,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload, key, alg="RS256", header=None):
    return jwt.encode(
        {"alg": alg, **({"kid": key.kid} if key.kid else {}), **(header or {})}, payload, key
    )


RULES = idtoken.IdTokenRules(issuer=ISSUER, client_id=CLIENT_ID, allowed_algorithms=("RS256",))


def validate(token, source, rules=RULES, nonce=NONCE, response_nonce=None):
    return idtoken.validate_id_token(
        token,
        rules,
        jwks_source=source,
        client_secret=SECRET,
        nonce=nonce,
        token_response_nonce=response_nonce,
        now=NOW,
    )


def assert_rule(rule, token, source, **kwargs):
    with pytest.raises(TokenValidationError) as info:
        validate(token, source, **kwargs)
    assert info.value.rule == rule


def test_accepts_a_valid_id_token(key):
    result = validate(sign(claims(), key), JwksSource(jwks_of(key)), response_nonce=NONCE)
    assert result["sub"] == "sub-123"


def test_rejects_id_token_with_wrong_issuer(key):
    assert_rule("iss", sign(claims(iss=ISSUER.replace(":443", "")), key), JwksSource(jwks_of(key)))


def test_rejects_id_token_with_wrong_audience(key):
    assert_rule("aud", sign(claims(aud="someone-else"), key), JwksSource(jwks_of(key)))


def test_rejects_id_token_without_audience(key):
    assert_rule("aud", sign(claims(aud=None), key), JwksSource(jwks_of(key)))


TRUSTING = dataclasses.replace(RULES, trusted_audiences=("other",))


def test_rejects_several_audiences_without_azp(key):
    token = sign(claims(aud=[CLIENT_ID, "other"]), key)
    assert_rule("azp", token, JwksSource(jwks_of(key)), rules=TRUSTING)


def test_rejects_an_untrusted_extra_audience_even_with_our_azp(key):
    """Step 3: "contains additional audiences not trusted by the Client": rejected."""
    token = sign(claims(aud=[CLIENT_ID, "other"], azp=CLIENT_ID), key)
    assert_rule("aud", token, JwksSource(jwks_of(key)))


def test_accepts_a_trusted_extra_audience_with_our_azp(key):
    token = sign(claims(aud=[CLIENT_ID, "other"], azp=CLIENT_ID), key)
    assert validate(token, JwksSource(jwks_of(key)), rules=TRUSTING)["azp"] == CLIENT_ID


def test_rejects_azp_of_another_client(key):
    assert_rule("azp", sign(claims(azp="other"), key), JwksSource(jwks_of(key)))


def test_rejects_expired_id_token(key):
    assert_rule("exp", sign(claims(exp=NOW - 61), key), JwksSource(jwks_of(key)))


def test_accepts_expiry_within_leeway(key):
    assert validate(sign(claims(exp=NOW - 30), key), JwksSource(jwks_of(key)))


def test_rejects_id_token_without_exp(key):
    assert_rule("exp", sign(claims(exp=None), key), JwksSource(jwks_of(key)))


def test_rejects_id_token_without_iat(key):
    assert_rule("iat", sign(claims(iat=None), key), JwksSource(jwks_of(key)))


def test_rejects_id_token_issued_in_the_future(key):
    assert_rule("iat", sign(claims(iat=NOW + 120), key), JwksSource(jwks_of(key)))


def test_rejects_id_token_older_than_its_lifetime(key):
    # exp still in the future, but issued 3 hours ago: longer than 2 h 30.
    token = sign(claims(iat=NOW - 3 * 3600, exp=NOW + 600), key)
    assert_rule("iat", token, JwksSource(jwks_of(key)))


def test_rejects_id_token_with_wrong_nonce(key):
    assert_rule("nonce", sign(claims(nonce="other"), key), JwksSource(jwks_of(key)))


def test_rejects_id_token_without_nonce(key):
    assert_rule("nonce", sign(claims(nonce=None), key), JwksSource(jwks_of(key)))


def test_rejects_token_response_with_wrong_nonce(key):
    token = sign(claims(), key)
    assert_rule("token_response_nonce", token, JwksSource(jwks_of(key)), response_nonce="other")


def test_rejects_id_token_without_sub(key):
    assert_rule("sub", sign(claims(sub=None), key), JwksSource(jwks_of(key)))


def test_rejects_id_token_with_bad_signature(key, other_key):
    forged = sign(claims(), RSAKey.import_key(other_key.as_dict(private=True) | {"kid": "k1"}))
    assert_rule("signature", forged, JwksSource(jwks_of(key)))


def test_rejects_tampered_payload(key):
    header, _payload, signature = sign(claims(), key).split(".")
    other_payload = sign(claims(sub="admin"), key).split(".")[1]
    assert_rule("signature", f"{header}.{other_payload}.{signature}", JwksSource(jwks_of(key)))


def test_rejects_unsigned_token(key):
    import base64
    import json

    def b64(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    token = f"{b64({'alg': 'none'})}.{b64(claims())}."
    assert_rule("algorithm", token, JwksSource(jwks_of(key)))


def test_rejects_hs256_when_realm_allows_only_rs256(key):
    token = jwt.encode({"alg": "HS256"}, claims(), OctKey.import_key(SECRET))
    assert_rule("algorithm", token, JwksSource(jwks_of(key)))


def test_accepts_hs256_keyed_by_client_secret_where_configured(key):
    rules = idtoken.IdTokenRules(ISSUER, CLIENT_ID, allowed_algorithms=("RS256", "HS256"))
    token = jwt.encode({"alg": "HS256"}, claims(), OctKey.import_key(SECRET))
    assert validate(token, JwksSource(jwks_of(key)), rules=rules)["sub"] == "sub-123"


def test_rejects_hs256_signed_with_the_public_key_as_secret(key):
    """Algorithm confusion: HMAC keyed by the public RSA key must not verify."""
    rules = idtoken.IdTokenRules(ISSUER, CLIENT_ID, allowed_algorithms=("RS256", "HS256"))
    import base64
    import hashlib
    import hmac
    import json

    def b64(raw):
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "kid": "k1"}).encode())
    signing_input = f"{header}.{b64(json.dumps(claims()).encode())}"
    mac = hmac.new(key.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64(mac)}"
    assert_rule("signature", token, JwksSource(jwks_of(key)), rules=rules)


def test_unknown_kid_refetches_the_jwks_once(key, other_key):
    source = JwksSource(jwks_of(key), later=jwks_of(key, other_key))
    assert validate(sign(claims(), other_key), source)["sub"] == "sub-123"
    assert source.calls == [False, True]


def test_kid_still_unknown_after_refetch_is_refused(key, other_key):
    source = JwksSource(jwks_of(key))
    assert_rule("kid", sign(claims(), other_key), source)
    assert source.calls == [False, True]


def test_accepts_lone_jwks_key_without_kid(key):
    bare = key.as_dict(private=False)
    bare.pop("kid")
    unnamed = RSAKey.import_key({k: v for k, v in key.as_dict(private=True).items() if k != "kid"})
    token = sign(claims(), unnamed)
    assert validate(token, JwksSource({"keys": [bare]}))["sub"] == "sub-123"


def test_token_without_kid_and_several_keys_is_refused(key, other_key):
    unnamed = RSAKey.import_key({k: v for k, v in key.as_dict(private=True).items() if k != "kid"})
    assert_rule("kid", sign(claims(), unnamed), JwksSource(jwks_of(key, other_key)))


def test_rejects_jwe_and_garbage():
    for token in ("a.b.c.d.e", "not-a-jwt", "a.b"):
        with pytest.raises(TokenValidationError) as info:
            validate(token, JwksSource({"keys": []}))
        assert info.value.rule == "format"


def test_refreshed_id_token_must_keep_iss_sub_aud():
    previous = claims()
    idtoken.check_refreshed_id_token(claims(iat=NOW + 100), previous)
    for claim, value in (("iss", "https://evil"), ("sub", "other"), ("aud", "other")):
        with pytest.raises(TokenValidationError) as info:
            idtoken.check_refreshed_id_token(claims(**{claim: value}), previous)
        assert info.value.rule == f"refresh_{claim}"


@pytest.mark.parametrize(
    ("before", "after"),
    [(None, CLIENT_ID), (CLIENT_ID, None), (CLIENT_ID, "another-client")],
    ids=["appears", "vanishes", "changes"],
)
def test_refreshed_id_token_must_keep_azp(before, after):
    with pytest.raises(TokenValidationError) as info:
        idtoken.check_refreshed_id_token(claims(azp=after), claims(azp=before))
    assert info.value.rule == "refresh_azp"


def test_refreshed_id_token_may_keep_azp_or_its_absence():
    idtoken.check_refreshed_id_token(claims(azp=CLIENT_ID), claims(azp=CLIENT_ID))
    idtoken.check_refreshed_id_token(claims(), claims())


def test_refreshed_id_token_must_keep_auth_time():
    previous = claims(auth_time=NOW - 600)
    idtoken.check_refreshed_id_token(claims(auth_time=NOW - 600), previous)
    with pytest.raises(TokenValidationError) as info:
        idtoken.check_refreshed_id_token(claims(auth_time=NOW), previous)
    assert info.value.rule == "refresh_auth_time"


def test_validate_uses_real_clock_by_default(key):
    now_claims = claims(iat=int(time.time()), exp=int(time.time()) + 600)
    result = idtoken.validate_id_token(
        sign(now_claims, key),
        RULES,
        jwks_source=JwksSource(jwks_of(key)),
        client_secret=SECRET,
        nonce=NONCE,
    )
    assert result["iss"] == ISSUER
