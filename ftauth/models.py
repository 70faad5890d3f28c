"""What ftauth stores: linked identities, their tokens (encrypted), sessions, audit.

Tokens are stored only as ciphertext (``*_ciphertext`` fields, Fernet from
``ftauth.crypto``); read and write them through ``ftauth.vault``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .core.realms import REALM_NAMES

REALM_CHOICES = [(name, name) for name in REALM_NAMES]


class LinkedAccount(models.Model):
    """A France Travail identity (realm + ``sub``) tied to a Django user."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="ftauth_accounts",
        verbose_name=_("utilisateur"),
    )
    realm = models.CharField(_("royaume"), max_length=20, choices=REALM_CHOICES)
    sub = models.CharField(_("identifiant France Travail (sub)"), max_length=255)
    email = models.EmailField(_("adresse e-mail"), blank=True, max_length=254)
    claims = models.JSONField(_("revendications"), default=dict, blank=True)
    # When ``claims`` were last read from the realm's userinfo (None: never, or only
    # the ID token's): a returning sign-in reads userinfo again only past
    # CLAIMS_MAX_AGE, and a grant's next witness call completes stale claims.
    claims_at = models.DateTimeField(_("revendications lues le"), null=True, blank=True)
    linked_at = models.DateTimeField(_("lié le"), default=timezone.now)
    last_login_at = models.DateTimeField(_("dernière connexion"), null=True, blank=True)
    consent_withdrawn_at = models.DateTimeField(_("consentement retiré le"), null=True, blank=True)
    # Set with ``consent_withdrawn_at``, cleared by whoever sends
    # ``consent_revoked``: the signal goes out exactly once, even when the
    # first attempt to act on the withdrawal stopped halfway.
    consent_revoked_pending = models.BooleanField(default=False, editable=False)

    class Meta:
        verbose_name = _("compte France Travail lié")
        verbose_name_plural = _("comptes France Travail liés")
        constraints = [
            models.UniqueConstraint(fields=["realm", "sub"], name="ftauth_unique_realm_sub"),
            models.UniqueConstraint(fields=["user", "realm"], name="ftauth_unique_user_realm"),
        ]
        indexes = [models.Index(fields=["email"], name="ftauth_account_email")]

    def __str__(self) -> str:
        return f"{self.realm}:{self.sub}"


class GrantQuerySet(models.QuerySet):
    def latest_first(self) -> GrantQuerySet:
        """Most recently given tokens first: by the last refresh, or by the sign-in for a
        grant never refreshed (a device that signed in a minute ago is more recent than
        one refreshed an hour ago); the newest row breaks ties.

        The one definition of an account's *latest* grant: the one used outside a
        request (jobs, commands), the one ``ftauth_purge`` always keeps, and the one
        whose status is the account's (account page, admin column and filter).
        """
        return self.order_by(Coalesce("refreshed_at", "obtained_at").desc(), F("pk").desc())


class Grant(models.Model):
    """What one completed sign-in obtained: its tokens (encrypted) and the sessions it opened.

    Every sign-in is its own grant at the identity server, so it keeps its own
    tokens: one device's sign-out, lost refresh token or back-channel logout
    ends that grant only, never the account's other devices. A grant is
    forgotten (the row deleted) when its tokens can no longer serve.
    """

    account = models.ForeignKey(
        LinkedAccount,
        on_delete=models.CASCADE,
        related_name="grants",
        verbose_name=_("compte France Travail lié"),
    )
    access_token_ciphertext = models.TextField(blank=True, editable=False)
    refresh_token_ciphertext = models.TextField(blank=True, editable=False)
    id_token_ciphertext = models.TextField(blank=True, editable=False)
    expires_at = models.DateTimeField(_("expire le"), null=True, blank=True)
    scopes = models.TextField(_("périmètres"), blank=True)
    # Identity claims of the last ID token (iss, sub, aud, azp, sid, ...), never
    # the token itself: a refreshed ID token must keep iss, sub and aud
    # (OpenID Connect Core 12.2).
    id_token_claims = models.JSONField(default=dict, blank=True, editable=False)
    # The identity server's session id (``sid`` claim), for back-channel logout.
    op_sid = models.CharField(
        _("session France Travail"), max_length=255, blank=True, db_index=True
    )
    # Which browser signed in (a short summary of its User-Agent), for the admin.
    device = models.CharField(_("appareil"), max_length=200, blank=True)
    obtained_at = models.DateTimeField(_("obtenu le"), default=timezone.now)
    refreshed_at = models.DateTimeField(_("rafraîchi le"), null=True, blank=True)
    # When France Travail last confirmed this grant (consent check): the
    # middleware asks at most once per CONSENT_CHECK_INTERVAL.
    checked_at = models.DateTimeField(_("vérifié le"), null=True, blank=True)
    # Until when a caller holds the right to refresh these tokens, across
    # workers and hosts (``ftauth.internal.refresh_lock``): a lease, not a lock,
    # so nothing is held in the database while France Travail answers.
    refresh_lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    # Set (committed) before a refresh request goes out, cleared when its answer
    # is stored: while set, France Travail may have rotated the refresh token
    # without ftauth holding the new one (an answer lost in transit, a failure
    # before it was stored), and a refusal of this grant is no evidence of a
    # withdrawal (docs/security.md, "A verdict needs evidence").
    rotation_uncertain_since = models.DateTimeField(
        _("réponse de rafraîchissement perdue le"), null=True, blank=True, editable=False
    )
    # A refreshed ID token stored with the tokens it came with but not validated
    # yet (the JWKS could not be fetched): validated at the next refresh or check.
    pending_id_token_ciphertext = models.TextField(blank=True, editable=False)

    objects = GrantQuerySet.as_manager()

    class Meta:
        verbose_name = _("autorisation")
        verbose_name_plural = _("autorisations")
        indexes = [models.Index(fields=["account", "-refreshed_at"], name="ftauth_grant_latest")]

    def __str__(self) -> str:
        # « Espace candidat · connexion du 12 mars 2026 14:03 · Firefox 128 · Linux »:
        # what tells one device from another, never a token.
        from django.utils.formats import date_format

        from .internal.devices import describe
        from .internal.names import realm_label

        parts = []
        if self.account_id is not None:
            parts.append(str(realm_label(self.account.realm)).capitalize())
        when = date_format(timezone.localtime(self.obtained_at), "DATETIME_FORMAT")
        parts.append(_("connexion du %(date)s") % {"date": when})
        if self.device:
            parts.append(describe(self.device))
        return " · ".join(parts)

    def __repr__(self) -> str:
        return f"Grant({self.pk})"


class AccountSession(models.Model):
    """A Django session signed in through a linked account, and the grant it uses."""

    account = models.ForeignKey(LinkedAccount, on_delete=models.CASCADE, related_name="sessions")
    # The sign-in that opened this session. Forgetting the grant ends the
    # session (the middleware finds the row gone at its next check).
    grant = models.ForeignKey(
        Grant, on_delete=models.CASCADE, related_name="sessions", null=True, blank=True
    )
    # Our own identifier, stored in the session; works with every engine.
    sid = models.CharField(max_length=64, unique=True)
    # The engine's session key, when the engine stores sessions server-side,
    # encrypted like the tokens: with the cache or file engines it is a bearer
    # credential kept nowhere else in the database. Empty for signed cookies
    # (their "key" is the session itself).
    session_key_ciphertext = models.TextField(blank=True, editable=False)
    engine = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Last consent check of this session by the middleware: a session not seen
    # for SESSION_COOKIE_AGE is gone, whatever the engine (ftauth_purge).
    seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("session")
        verbose_name_plural = _("sessions")

    def __str__(self) -> str:
        return f"session of {self.account}"


class PendingAuthorization(models.Model):
    """The hash of a ``state`` a callback consumed: a ``state`` works once.

    The pending request itself lives in the browser's signed cookie until its
    callback (``internal.signin``); the callback inserts this row (``state_hash``
    is unique), so a replay or a concurrent twin stops before the token request.
    ``nonce``, ``code_verifier`` and ``next_url`` stay empty: the nonce and the
    verifier are derived from the state, stored nowhere. ``ftauth_purge`` removes
    a row once its request would have expired anyway.
    """

    state_hash = models.CharField(max_length=64, unique=True)
    realm = models.CharField(max_length=20, choices=REALM_CHOICES)
    nonce = models.CharField(max_length=128)
    code_verifier = models.CharField(max_length=128)
    redirect_uri = models.URLField(max_length=2000)
    next_url = models.CharField(max_length=2000, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = _("connexion en attente")
        verbose_name_plural = _("connexions en attente")

    def __str__(self) -> str:
        return f"pending {self.realm} sign-in"


class ConsumedLogoutToken(models.Model):
    """``jti`` of back-channel logout tokens already used: a replay is refused."""

    jti = models.CharField(max_length=255)
    issuer = models.CharField(max_length=500)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issuer", "jti"], name="ftauth_unique_logout_jti"),
        ]

    def __str__(self) -> str:
        return self.jti


class AuditEvent(models.Model):
    """What happened to a linked account, for the admin's audit trail."""

    class Kind(models.TextChoices):
        SIGNED_IN = "signed_in", _("connexion")
        LINKED = "linked", _("compte lié")
        UNLINKED = "unlinked", _("compte délié")
        SIGNED_OUT = "signed_out", _("déconnexion")
        TOKENS_REFRESHED = "tokens_refreshed", _("jetons rafraîchis")
        CONSENT_REVOKED = "consent_revoked", _("consentement retiré")
        SESSIONS_ENDED = "sessions_ended", _("sessions terminées")
        GRANT_ENDED = "grant_ended", _("autorisation terminée")
        DELETED = "deleted", _("compte supprimé")
        BACKCHANNEL_LOGOUT = "backchannel_logout", _("déconnexion par le fournisseur")
        SIGN_IN_FAILED = "sign_in_failed", _("échec de connexion")
        KEYS_ROTATED = "keys_rotated", _("clés renouvelées")

    account = models.ForeignKey(
        LinkedAccount,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="audit_events",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    realm = models.CharField(max_length=20, blank=True)
    sub = models.CharField(max_length=255, blank=True)
    kind = models.CharField(_("type"), max_length=32, choices=Kind.choices)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(_("date"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("événement d’audit")
        verbose_name_plural = _("événements d’audit")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        # « Déconnexion · espace partenaire · sandbox-partenaire-nadia · 12 mars 2026 14:03 »
        from django.utils.formats import date_format

        from .internal.names import realm_label

        parts = [str(self.get_kind_display()).capitalize()]
        if self.realm:
            parts.append(realm_label(self.realm))
        if self.sub:
            parts.append(self.sub)
        parts.append(date_format(timezone.localtime(self.created_at), "DATETIME_FORMAT"))
        return " · ".join(parts)
