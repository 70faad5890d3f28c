"""What the sandbox identity server remembers.

Codes and tokens are stored as SHA-256 digests only, like a real server
should: the database never holds a usable credential. Client secrets live in
settings and are never stored here.
"""

from __future__ import annotations

import hashlib
import time

from django.db import models
from django.utils import timezone


def digest(value: str) -> str:
    """The stored form of a code, token or cookie value."""
    return hashlib.sha256(value.encode()).hexdigest()


class SigningKey(models.Model):
    """An RS256 key of one realm. Retired keys stay in the JWKS for a while."""

    realm = models.CharField(max_length=20)
    kid = models.CharField(max_length=100, unique=True)
    # The private JWK (JSON). A sandbox key, worthless outside the sandbox.
    private_jwk = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.realm}:{self.kid}"


class LoginSession(models.Model):
    """A persona signed in on one sandbox host (the cookie holds the key)."""

    key_hash = models.CharField(max_length=64, unique=True)
    host = models.CharField(max_length=40)
    realm = models.CharField(max_length=20)
    persona_sub = models.CharField(max_length=100)
    # The OpenID Connect session id, put in ID tokens and logout tokens.
    sid = models.CharField(max_length=64, unique=True)
    auth_time = models.IntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.host}:{self.persona_sub}"


class Consent(models.Model):
    """What a persona agreed to share with an application, until withdrawn."""

    realm = models.CharField(max_length=20)
    persona_sub = models.CharField(max_length=100)
    client_id = models.CharField(max_length=200)
    scope = models.TextField()
    granted_at = models.DateTimeField(default=timezone.now)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["realm", "persona_sub", "client_id"], name="ftauth_sandbox_one_consent"
            )
        ]

    def __str__(self) -> str:
        return f"{self.persona_sub} -> {self.client_id}"

    @property
    def scopes(self) -> set[str]:
        return set(self.scope.split())


class AuthorizationCode(models.Model):
    """A single-use authorization code (RFC 6749 4.1.2), 60 seconds by default."""

    code_hash = models.CharField(max_length=64, unique=True)
    client_id = models.CharField(max_length=200)
    realm = models.CharField(max_length=20)
    issuer = models.CharField(max_length=500)
    persona_sub = models.CharField(max_length=100)
    redirect_uri = models.TextField()
    scope = models.TextField()
    nonce = models.TextField(blank=True)
    code_challenge = models.CharField(max_length=128)
    code_challenge_method = models.CharField(max_length=10)
    sid = models.CharField(max_length=64)
    auth_time = models.IntegerField()
    backchannel_logout_uri = models.TextField(blank=True)
    created_at = models.FloatField(default=time.time)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"code for {self.persona_sub} -> {self.client_id}"

    # authlib's AuthorizationCodeMixin and OpenID Connect additions
    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce or None

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


class IssuedToken(models.Model):
    """An access token, with the refresh token issued alongside it, if any."""

    access_token_hash = models.CharField(max_length=64, unique=True)
    refresh_token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    client_id = models.CharField(max_length=200)
    realm = models.CharField(max_length=20)
    issuer = models.CharField(max_length=500)
    # Empty for application tokens (client credentials).
    persona_sub = models.CharField(max_length=100, blank=True)
    scope = models.TextField()
    sid = models.CharField(max_length=64, blank=True)
    auth_time = models.IntegerField(null=True, blank=True)
    issued_at = models.FloatField(default=time.time)
    expires_in = models.IntegerField()
    authorization_code = models.ForeignKey(
        AuthorizationCode, null=True, blank=True, on_delete=models.SET_NULL
    )
    backchannel_logout_uri = models.TextField(blank=True)
    # Everything stops: consent withdrawn, or the code was replayed.
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Only the refresh token stops: it was exchanged for a new one.
    refresh_revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"token of {self.persona_sub or 'application'} for {self.client_id}"

    # authlib's TokenMixin
    def check_client(self, client: object) -> bool:
        return self.client_id == client.get_client_id()  # type: ignore[attr-defined]

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return self.issued_at + self.expires_in <= time.time()

    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def scopes(self) -> set[str]:
        return set(self.scope.split())
