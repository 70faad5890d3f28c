"""Signing keys: persisted, rotatable, the previous key kept for verification."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import requests
from django.core.management import call_command
from django.utils import timezone
from joserfc import jws

from ftauth.sandbox.keys import rotate_signing_keys
from ftauth.sandbox.models import SigningKey

from .conftest import jwks_url, verify


def _kids(live: str, realm: str) -> list[str]:
    return [k["kid"] for k in requests.get(jwks_url(live, realm), timeout=5).json()["keys"]]


def _kid(token: str) -> str:
    return jws.extract_compact(token.encode()).protected["kid"]


def test_rotation_keeps_the_old_kid_for_verification(flow, sandbox):
    before = flow("individu").tokens()["id_token"]
    old_kid = _kid(before)
    assert _kids(sandbox, "individu") == [old_kid]

    new_kids = rotate_signing_keys()
    assert len(new_kids) == 3

    after = flow("individu").tokens()["id_token"]
    assert _kid(after) != old_kid
    assert set(_kids(sandbox, "individu")) == {old_kid, _kid(after)}
    # Both verify against the JWKS now published.
    assert verify(sandbox, "individu", before)["sub"] == verify(sandbox, "individu", after)["sub"]


def test_retired_key_leaves_the_jwks_after_its_ttl(flow, sandbox, settings):
    old_kid = _kid(flow("individu").tokens()["id_token"])
    rotate_signing_keys(("individu",))
    settings.FTAUTH_SANDBOX = {"RETIRED_KEY_TTL": 60}
    assert old_kid in _kids(sandbox, "individu")
    SigningKey.objects.filter(kid=old_kid).update(retired_at=timezone.now() - timedelta(seconds=61))
    assert old_kid not in _kids(sandbox, "individu")
    assert len(_kids(sandbox, "individu")) == 1


def test_management_command_rotates(sandbox):
    before = _kids(sandbox, "employeur")
    out = StringIO()
    call_command("ftauth_sandbox_rotate_keys", "--realm", "employeur", stdout=out)
    after = _kids(sandbox, "employeur")
    assert len(after) == 2 and set(before) < set(after)
    assert "new signing key: sandbox-employeur-" in out.getvalue()
    assert len(_kids(sandbox, "individu")) == 1


def test_keys_are_stored_not_regenerated_per_request(sandbox):
    first = _kids(sandbox, "individu")
    assert _kids(sandbox, "individu") == first
    assert SigningKey.objects.filter(realm="individu").count() == 1
