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
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import consent, vault
from .conf import get_settings
from .core.errors import ConsentWithdrawn, FTAuthError
from .core.realms import REALM_NAMES
from .models import AuditEvent, LinkedAccount, TokenSet
from .names import realm_label

# One word for a realm in the admin, "espace", with the realm's human name and
# its code (what France Travail's documents and the logs say).
REALM_TITLE = _("espace")


def realm_text(realm: str) -> str:
    return f"{realm_label(realm)} ({realm})" if realm else "—"


def local_datetime(value: Any) -> str:
    """A date as the admin shows every other: local time, the active language's format."""
    if not value:
        return "—"
    return date_format(timezone.localtime(value), "DATETIME_FORMAT")


class RealmFilter(admin.SimpleListFilter):
    title = REALM_TITLE
    parameter_name = "realm"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(name, realm_text(name)) for name in REALM_NAMES]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        if self.value() in REALM_NAMES:
            return queryset.filter(realm=self.value())
        return None


class ReadOnlyChangeForm:
    """A change page where nothing can be edited has no "Enregistrer" buttons."""

    def render_change_form(self, request, context, *args, **kwargs):  # type: ignore[no-untyped-def]
        context.update(
            show_save=False, show_save_and_continue=False, show_save_and_add_another=False
        )
        return super().render_change_form(request, context, *args, **kwargs)  # type: ignore[misc]


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
    fields = ("created_at", "kind", "details")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ("-created_at", "-id")
    verbose_name_plural = _("journal d'audit")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("détail"))
    def details(self, event: AuditEvent) -> str:
        return audit_details(event)


def audit_details(event: AuditEvent) -> str:
    if not event.detail:
        return "—"
    return ", ".join(f"{key} : {value}" for key, value in sorted(event.detail.items()))


@admin.register(LinkedAccount)
class LinkedAccountAdmin(ReadOnlyChangeForm, admin.ModelAdmin):
    # Short enough for a 1280-pixel screen: the email and dates are on the
    # account's page; a long sub wraps (admin.css).
    list_display = (
        "user_display",
        "realm_display",
        "sub_display",
        "last_login_at",
        "token_status",
        "active_sessions",
    )
    list_filter = (RealmFilter, TokenStatusFilter)
    list_select_related = ("user", "token_set")
    date_hierarchy = "linked_at"
    fields = (
        "user",
        "realm_display",
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

    class Media:
        css = {"all": ("ftauth/admin.css",)}

    @admin.display(description=REALM_TITLE, ordering="realm")
    def realm_display(self, account: LinkedAccount) -> str:
        return realm_text(account.realm)

    @admin.display(description=_("identifiant (sub)"), ordering="sub")
    def sub_display(self, account: LinkedAccount) -> str:
        return account.sub

    @admin.display(description=_("utilisateur"), ordering="user")
    def user_display(self, account: LinkedAccount) -> str:
        # The person's name: generated user names (ft-individu-…) say nothing to
        # people, and are on the account's page.
        user = account.user
        name = user.get_full_name() if hasattr(user, "get_full_name") else ""
        return name or user.get_username()

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

    @admin.display(description=_("sessions"), ordering="session_count")
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
            local_datetime(token_set.expires_at),
            _("rafraîchi le"),
            local_datetime(token_set.refreshed_at),
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
class AuditEventAdmin(ReadOnlyChangeForm, admin.ModelAdmin):
    list_display = ("created_at", "kind", "realm_display", "sub_display", "user_display")
    list_filter = ("kind", RealmFilter)
    search_fields = ("sub",)
    date_hierarchy = "created_at"
    list_select_related = ("user",)
    fields = (
        "created_at",
        "kind",
        "realm_display",
        "sub_display",
        "user_display",
        "account_display",
        "details",
    )
    readonly_fields = fields

    class Media:
        css = {"all": ("ftauth/admin.css",)}

    @admin.display(description=REALM_TITLE, ordering="realm")
    def realm_display(self, event: AuditEvent) -> str:
        return realm_text(event.realm)

    @admin.display(description=_("identifiant France Travail (sub)"), ordering="sub")
    def sub_display(self, event: AuditEvent) -> str:
        return event.sub or "—"

    @admin.display(description=_("utilisateur"), ordering="user")
    def user_display(self, event: AuditEvent) -> str:
        return str(event.user) if event.user_id else "—"

    @admin.display(description=_("compte France Travail lié"))
    def account_display(self, event: AuditEvent) -> str:
        if event.account_id is None:
            return _("supprimé")
        return f"{realm_text(event.realm)} · {event.sub}"

    @admin.display(description=_("détail"))
    def details(self, event: AuditEvent) -> str:
        return audit_details(event)

    # The trail is evidence: read-only, removed only by ftauth_purge after the
    # retention period.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
