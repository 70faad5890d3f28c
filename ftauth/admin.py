"""Admin: linked accounts with their token status and sessions, and the audit trail.

Tokens are never shown, not even as ciphertext: ``TokenSet`` is not
registered, and the account page shows only what the tokens are (status,
expiry, scopes). Everything that says who an identity is, or which user it
belongs to, is read-only: moving an identity to another user would hand over
that user's France Travail data. Accounts are created by signing in only.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import consent, vault
from .conf import get_settings
from .core.errors import ConsentWithdrawn, FTAuthError
from .models import AuditEvent, LinkedAccount, TokenSet

STATUS_LABELS = {
    vault.TokenStatus.VALID: _("valides"),
    vault.TokenStatus.EXPIRING: _("bientôt expirés"),
    vault.TokenStatus.EXPIRED: _("expirés"),
    vault.TokenStatus.WITHDRAWN: _("consentement retiré"),
    vault.TokenStatus.NONE: _("aucun jeton"),
}


class TokenStatusFilter(admin.SimpleListFilter):
    title = _("état des jetons")
    parameter_name = "token_status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [(status.value, label) for status, label in STATUS_LABELS.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        now = timezone.now()
        margin = now + timedelta(seconds=get_settings().refresh_margin)
        active = Q(consent_withdrawn_at__isnull=True)
        filters = {
            vault.TokenStatus.WITHDRAWN: Q(consent_withdrawn_at__isnull=False),
            vault.TokenStatus.NONE: active & Q(token_set__isnull=True),
            vault.TokenStatus.EXPIRED: active
            & (Q(token_set__expires_at__lte=now) | Q(token_set__expires_at__isnull=True))
            & Q(token_set__isnull=False),
            vault.TokenStatus.EXPIRING: active
            & Q(token_set__expires_at__gt=now, token_set__expires_at__lte=margin),
            vault.TokenStatus.VALID: active & Q(token_set__expires_at__gt=margin),
        }
        value = self.value()
        if value in filters:
            return queryset.filter(filters[vault.TokenStatus(value)])
        return None


class AuditEventInline(admin.TabularInline):
    model = AuditEvent
    fk_name = "account"
    fields = ("created_at", "kind", "detail")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ("-created_at", "-id")
    verbose_name_plural = _("journal d'audit")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(LinkedAccount)
class LinkedAccountAdmin(admin.ModelAdmin):
    list_display = (
        "user",
        "realm",
        "sub",
        "email",
        "linked_at",
        "last_login_at",
        "token_status",
        "active_sessions",
    )
    list_filter = ("realm", TokenStatusFilter)
    list_select_related = ("user", "token_set")
    date_hierarchy = "linked_at"
    fields = (
        "user",
        "realm",
        "sub",
        "email",
        "linked_at",
        "last_login_at",
        "consent_checked_at",
        "consent_withdrawn_at",
        "token_summary",
        "active_sessions",
        "claims_snapshot",
    )
    readonly_fields = fields
    inlines = (AuditEventInline,)
    actions = ("withdraw_consent", "refresh_tokens")

    def get_search_fields(self, request: HttpRequest) -> tuple[str, ...]:
        user_model = get_user_model()
        user_fields = {user_model.USERNAME_FIELD, user_model.get_email_field_name()}
        return ("sub", "email", *(f"user__{name}" for name in sorted(user_fields)))

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(session_count=Count("sessions"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # an identity is linked by signing in with it, nowhere else

    @admin.display(description=_("jetons"))
    def token_status(self, account: LinkedAccount) -> str:
        return str(STATUS_LABELS[vault.token_status(account)])

    @admin.display(description=_("sessions actives"), ordering="session_count")
    def active_sessions(self, account: LinkedAccount) -> int:
        if hasattr(account, "session_count"):
            return account.session_count
        return account.sessions.count()

    @admin.display(description=_("jetons (jamais affichés)"))
    def token_summary(self, account: LinkedAccount) -> str:
        status = STATUS_LABELS[vault.token_status(account)]
        try:
            token_set = account.token_set
        except TokenSet.DoesNotExist:
            return str(status)
        return format_html(
            "{}<br>{} {}<br>{} {}<br>{} {}",
            status,
            _("expire le"),
            token_set.expires_at or "—",
            _("rafraîchi le"),
            token_set.refreshed_at or "—",
            _("périmètres"),
            token_set.scopes or "—",
        )

    @admin.display(description=_("revendications (instantané)"))
    def claims_snapshot(self, account: LinkedAccount) -> str:
        return format_html(
            "<pre>{}</pre>", json.dumps(account.claims, indent=2, ensure_ascii=False)
        )

    # Actions change what the user can do: change permission, not just view.
    @admin.action(
        description=_("Retirer le consentement et terminer les sessions"), permissions=["change"]
    )
    def withdraw_consent(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = sum(
            bool(consent.withdraw(account, reason=f"admin ({request.user.get_username()})"))
            for account in queryset
        )
        self.message_user(
            request,
            ngettext(
                "%(count)d compte : jetons effacés, sessions terminées.",
                "%(count)d comptes : jetons effacés, sessions terminées.",
                done,
            )
            % {"count": done},
            messages.SUCCESS,
        )

    @admin.action(description=_("Rafraîchir les jetons maintenant"), permissions=["change"])
    def refresh_tokens(self, request: HttpRequest, queryset: QuerySet) -> None:
        refreshed, failures = 0, []
        for account in queryset:
            try:
                vault.refresh_tokens(account, force=True)
                refreshed += 1
            except ConsentWithdrawn:
                failures.append((str(account), _("consentement retiré")))
            except FTAuthError as exc:
                # The error's type only: messages never carry token material anyway.
                failures.append((str(account), type(exc).__name__))
        if refreshed:
            self.message_user(
                request,
                ngettext("%(count)d compte rafraîchi.", "%(count)d comptes rafraîchis.", refreshed)
                % {"count": refreshed},
                messages.SUCCESS,
            )
        if failures:
            self.message_user(
                request,
                format_html(
                    "{} {}",
                    _("Échec du rafraîchissement :"),
                    format_html_join(", ", "{} ({})", failures),
                ),
                messages.WARNING,
            )


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "kind", "realm", "sub", "user", "account")
    list_filter = ("kind", "realm")
    search_fields = ("sub",)
    date_hierarchy = "created_at"
    list_select_related = ("user", "account")
    fields = ("created_at", "kind", "realm", "sub", "user", "account", "detail")
    readonly_fields = fields

    # The trail is evidence: read-only, removed only by ftauth_purge after the
    # retention period.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
