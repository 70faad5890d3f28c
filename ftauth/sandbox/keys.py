"""The realms' RS256 signing keys: created on first use, rotatable.

After :func:`rotate_signing_keys` a new key signs, and the retired one stays
in the JWKS for ``RETIRED_KEY_TTL`` seconds, so tokens signed just before the
rotation still verify (and clients that cached the JWKS find the new ``kid``
by refetching it).
"""

from __future__ import annotations

import json
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from joserfc.jwk import KeySet, RSAKey

from .conf import get_sandbox_settings
from .directory import REALM_HOST
from .models import SigningKey

KEY_SIZE = 2048


def _new_key(realm: str) -> SigningKey:
    kid = f"sandbox-{realm}-{secrets.token_urlsafe(9)}"
    key = RSAKey.generate_key(
        KEY_SIZE, parameters={"kid": kid, "use": "sig", "alg": "RS256"}, private=True
    )
    return SigningKey.objects.create(
        realm=realm, kid=kid, private_jwk=json.dumps(key.as_dict(private=True))
    )


def _import(row: SigningKey) -> RSAKey:
    return RSAKey.import_key(json.loads(row.private_jwk))


def current_signing_key(realm: str) -> RSAKey:
    """The key that signs the realm's tokens now (made on first use)."""
    row = SigningKey.objects.filter(realm=realm, retired_at__isnull=True).first()
    if row is None:
        row = _new_key(realm)
    return _import(row)


def _published(realm: str) -> list[SigningKey]:
    if not SigningKey.objects.filter(realm=realm, retired_at__isnull=True).exists():
        _new_key(realm)
    horizon = timezone.now() - timedelta(seconds=get_sandbox_settings().retired_key_ttl)
    return list(SigningKey.objects.filter(realm=realm).exclude(retired_at__lt=horizon))


def public_jwks(realm: str) -> dict:
    """The realm's JWKS document: current and recently retired public keys."""
    return {"keys": [_import(row).as_dict(private=False) for row in _published(realm)]}


def verification_keys(realms: tuple[str, ...]) -> KeySet:
    """Every published key of ``realms``, for verifying the sandbox's own tokens."""
    return KeySet([_import(row) for realm in realms for row in _published(realm)])


def rotate_signing_keys(realms: tuple[str, ...] | None = None) -> list[str]:
    """Retire the current key of each realm and make a new one; return the new kids."""
    kids = []
    with transaction.atomic():
        for realm in realms or tuple(REALM_HOST):
            SigningKey.objects.filter(realm=realm, retired_at__isnull=True).update(
                retired_at=timezone.now()
            )
            kids.append(_new_key(realm).kid)
    return kids
