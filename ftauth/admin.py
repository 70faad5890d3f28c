"""Admin: linked accounts with their token status and sessions, and the audit trail.

Tokens are never shown, not even as ciphertext: the grants (one per
sign-in, i.e. per device) are listed with what their tokens are (status,
expiry, scopes), never the tokens. Ending a grant, ending all of them, and
deleting an account go through ``ftauth.internal.lifecycle`` like a sign-out or an
unlink: one transaction, an audit event, the sessions ended. Everything
that says who an identity is, or which user it belongs to, is read-only:
moving an identity to another user would hand over that user's France
Travail data. Accounts are created by signing in only.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import get_user_model
from django.db import DatabaseError
from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import consent, vault
from .conf import get_settings
from .core.errors import FTAuthError
from .core.realms import REALM_NAMES
from .internal import lifecycle
from .internal.devices import describe
from .internal.names import realm_label
from .models import AuditEvent, Grant, LinkedAccount

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
    parameter_name = "realm"  # also the field filtered on

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(name, realm_text(name)) for name in REALM_NAMES]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        if self.value() in REALM_NAMES:
            return queryset.filter(**{self.parameter_name: self.value()})
        return None


class AccountRealmFilter(RealmFilter):
    parameter_name = "account__realm"


class ReadOnlyChangeForm:
    """A change page where nothing can be edited has no "Enregistrer" buttons."""

    def render_change_form(self, request, context, *args, **kwargs):  # type: ignore[no-untyped-def]
        context.update(
            show_save=False, show_save_and_continue=False, show_save_and_add_another=False
        )
        return super().render_change_form(request, context, *args, **kwargs)  # type: ignore[misc]


STATUS_LABELS = vault.STATUS_LABELS
logger = logging.getLogger("ftauth.admin")


def with_token_status(queryset: QuerySet) -> QuerySet:
    """Accounts annotated with ``token_status_value``: :func:`ftauth.vault.account_status`
    as SQL (withdrawn, else the status of the latest grant, ``Grant.objects.latest_first``),
    so the changelist's column and its filter are one decision, made once per row.
    """
    now = timezone.now()
    margin = now + timedelta(seconds=get_settings().refresh_margin)
    latest = Grant.objects.filter(account=OuterRef("pk")).latest_first()
    status = vault.TokenStatus
    return queryset.annotate(
        latest_grant_expires_at=Subquery(latest.values("expires_at")[:1]),
        has_grant=Exists(latest),
    ).annotate(
        token_status_value=Case(
            When(consent_withdrawn_at__isnull=False, then=Value(status.WITHDRAWN.value)),
            When(has_grant=False, then=Value(status.NONE.value)),
            # vault.status_of: an expiry unknown or past, then within the refresh margin.
            When(
                Q(latest_grant_expires_at__isnull=True) | Q(latest_grant_expires_at__lte=now),
                then=Value(status.EXPIRED.value),
            ),
            When(latest_grant_expires_at__lte=margin, then=Value(status.EXPIRING.value)),
            default=Value(status.VALID.value),
            output_field=CharField(),
        )
    )


# What SQL can decide: whether tokens decrypt (``UNREADABLE``) takes the keys, so it
# is said on each grant's row and by ``manage.py check`` (ftauth.E022), not filtered on.
SQL_STATUSES = [
    status for status in vault.TokenStatus if status is not vault.TokenStatus.UNREADABLE
]


class TokenStatusFilter(admin.SimpleListFilter):
    """Filters on the annotation the status column shows (:func:`with_token_status`)."""

    title = _("état des jetons")
    parameter_name = "token_status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [(status.value, STATUS_LABELS[status]) for status in SQL_STATUSES]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        value = self.value()
        if value not in {status.value for status in SQL_STATUSES}:
            return None
        if "token_status_value" not in queryset.query.annotations:
            queryset = with_token_status(queryset)
        return queryset.filter(token_status_value=value)


class AuditEventInline(admin.TabularInline):
    model = AuditEvent
    fk_name = "account"
    fields = ("created_at", "kind", "details")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ("-created_at", "-id")
    verbose_name_plural = _("journal d’audit")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("détail"))
    def details(self, event: AuditEvent) -> str:
        return audit_details(event)


def audit_details(event: AuditEvent) -> str:
    if not event.detail:
        return "—"
    return ", ".join(f"{key} : {value}" for key, value in sorted(event.detail.items()))


class DatabaseErrorsAsMessages:
    """An action or a delete that meets a database error changes nothing (each
    ending is one transaction): the admin says so instead of answering 500."""

    def _guarded(self, request: HttpRequest, view: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return view(request, *args, **kwargs)
        except DatabaseError as exc:
            logger.error(
                "admin %s failed, nothing changed: %s: %s", request.path, type(exc).__name__, exc
            )
            self.message_user(  # type: ignore[attr-defined]
                request,
                _("La base de données est indisponible : rien n’a été modifié. Réessayez."),
                messages.ERROR,
            )
            return HttpResponseRedirect(request.get_full_path())

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        return self._guarded(request, super().changelist_view, extra_context)  # type: ignore[misc]

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> Any:
        return self._guarded(request, super().delete_view, object_id, extra_context)  # type: ignore[misc]


class ConfirmedActions:
    """Actions that end sessions or consent ask first, like Django's delete: a page
    says what will happen and to whom, and only its POST (CSRF token, ``post=yes``)
    acts. Without it, nothing happens."""

    def confirmation(
        self,
        request: HttpRequest,
        queryset: QuerySet,
        *,
        action: str,
        title: Any,
        effects: list[Any],
        items: list[tuple[str, str]],
    ) -> TemplateResponse | None:
        """The confirmation page, or ``None`` once the action is confirmed."""
        if request.POST.get("post") == "yes":
            return None
        opts = self.model._meta  # type: ignore[attr-defined]
        context = {
            **self.admin_site.each_context(request),  # type: ignore[attr-defined]
            "title": title,
            "effects": effects,
            "items": items,
            "action": action,
            "queryset": queryset,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "opts": opts,
            "media": self.media,  # type: ignore[attr-defined]
        }
        request.current_app = self.admin_site.name  # type: ignore[attr-defined]
        return TemplateResponse(request, "admin/ftauth/confirm_action.html", context)


def sessions_text(count: int) -> str:
    return ngettext("%(count)d session", "%(count)d sessions", count) % {"count": count}


class GrantStatusMixin:
    @admin.display(description=_("jetons"))
    def token_status(self, grant: Grant) -> str:
        return vault.status_of(grant).label

    @admin.display(description=_("appareil"), ordering="device")
    def device_display(self, grant: Grant) -> str:
        # Grants stored before the summary was kept hold the whole User-Agent.
        return describe(grant.device) or "—"

    @admin.display(description=_("sessions"))
    def session_count(self, grant: Grant) -> int:
        return grant.sessions.count()


class GrantInline(GrantStatusMixin, admin.TabularInline):
    """The account's grants: one per sign-in (device). End one from its own page."""

    model = Grant
    fields = (
        "device_display",
        "obtained_at",
        "refreshed_at",
        "checked_at",
        "expires_at",
        "token_status",
        "session_count",
    )
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = _("autorisations (une par connexion, c’est-à-dire par appareil)")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Grant)
class GrantAdmin(
    DatabaseErrorsAsMessages,
    ReadOnlyChangeForm,
    ConfirmedActions,
    GrantStatusMixin,
    admin.ModelAdmin,
):
    """One sign-in's grant. Deleting it (or the action) ends it like a sign-out."""

    list_display = ("account", "device_display", "obtained_at", "refreshed_at", "token_status")
    list_select_related = ("account",)
    search_fields = ("account__sub", "account__email", "device")
    list_filter = (AccountRealmFilter,)
    fields = (
        "account",
        "device_display",
        "obtained_at",
        "refreshed_at",
        "checked_at",
        "expires_at",
        "scopes",
        "op_sid",
        "token_status",
        "session_count",
    )
    readonly_fields = fields
    actions = ("end_grants",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(
        description=_("Terminer les autorisations sélectionnées (déconnecte ces appareils)"),
        permissions=["change"],
    )
    def end_grants(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        grants = list(queryset.select_related("account").annotate(session_count=Count("sessions")))
        page = self.confirmation(
            request,
            queryset,
            action="end_grants",
            title=_("Terminer ces autorisations ?"),
            effects=[
                _("Les jetons de ces autorisations sont effacés."),
                _("Les appareils qui les utilisent sont déconnectés à leur prochaine page."),
                _("Les autres appareils des mêmes personnes restent connectés."),
            ],
            items=[
                (f"{grant.account} · {grant}", sessions_text(grant.session_count))
                for grant in grants
            ],
        )
        if page is not None:
            return page
        ended = self._end(request, grants)
        self.message_user(
            request,
            ngettext(
                "%(count)d autorisation terminée.", "%(count)d autorisations terminées.", ended
            )
            % {"count": ended},
            messages.SUCCESS,
        )
        return None

    def delete_model(self, request: HttpRequest, obj: Grant) -> None:
        self._end(request, [obj])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._end(request, list(queryset))

    def _end(self, request: HttpRequest, grants: list[Grant]) -> int:
        for grant in grants:
            lifecycle.end_grants(
                grant.account,
                [grant.pk],
                kind=AuditEvent.Kind.GRANT_ENDED,
                why=f"admin ({request.user.get_username()})",
            )
        return len(grants)


@admin.register(LinkedAccount)
class LinkedAccountAdmin(
    DatabaseErrorsAsMessages, ReadOnlyChangeForm, ConfirmedActions, admin.ModelAdmin
):
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
    list_select_related = ("user",)
    date_hierarchy = "linked_at"
    fields = (
        "user",
        "realm_display",
        "sub",
        "email",
        "linked_at",
        "last_login_at",
        "consent_withdrawn_at",
        "token_summary",
        "active_sessions",
        "claims_snapshot",
    )
    readonly_fields = fields
    inlines = (GrantInline, AuditEventInline)
    actions = ("withdraw_consent", "end_all_grants", "refresh_tokens")

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
        queryset = super().get_queryset(request).annotate(session_count=Count("sessions"))
        return with_token_status(queryset)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # an identity is linked by signing in with it, nowhere else

    @admin.display(description=_("jetons"))
    def token_status(self, account: LinkedAccount) -> str:
        value = getattr(account, "token_status_value", None)
        if value is None:  # an account not read through get_queryset
            return vault.account_status(account).label
        return vault.TokenStatus(value).label

    @admin.display(description=_("sessions"), ordering="session_count")
    def active_sessions(self, account: LinkedAccount) -> int:
        if hasattr(account, "session_count"):
            return account.session_count
        return account.sessions.count()

    @admin.display(description=_("jetons (jamais affichés)"))
    def token_summary(self, account: LinkedAccount) -> str:
        grants = list(account.grants.latest_first())
        status = self.token_status(account)
        if not grants:
            return status
        latest = grants[0]
        return format_html(
            "{}<br>{} {}<br>{} {}<br>{} {}<br>{} {}",
            status,
            _("autorisations"),
            len(grants),
            _("expire le"),
            local_datetime(latest.expires_at),
            _("rafraîchi le"),
            local_datetime(latest.refreshed_at),
            _("périmètres"),
            latest.scopes or "—",
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
    def withdraw_consent(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        page = self.confirmation(
            request,
            queryset,
            action="withdraw_consent",
            title=_("Retirer le consentement de ces comptes ?"),
            effects=[
                _(
                    "Le site agit comme si la personne avait retiré son consentement chez "
                    "France Travail : le signal consent_revoked est envoyé, et le site efface "
                    "ce qu’il en détient."
                ),
                _(
                    "Les jetons de tous ses appareils sont effacés et toutes ses sessions "
                    "se terminent."
                ),
                _("Elle devra se reconnecter et donner de nouveau son accord."),
            ],
            items=self.account_items(queryset),
        )
        if page is not None:
            return page
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
        return None

    @admin.action(
        description=_("Terminer toutes les sessions (oublie les jetons de tous les appareils)"),
        permissions=["change"],
    )
    def end_all_grants(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        page = self.confirmation(
            request,
            queryset,
            action="end_all_grants",
            title=_("Terminer toutes les sessions de ces comptes ?"),
            effects=[
                _("Les jetons de tous leurs appareils sont effacés."),
                _(
                    "Chaque appareil est déconnecté à sa prochaine page ; le consentement "
                    "donné à France Travail reste valable."
                ),
            ],
            items=self.account_items(queryset),
        )
        if page is not None:
            return page
        ended = sum(
            lifecycle.end_grants(
                account,
                None,
                kind=AuditEvent.Kind.SESSIONS_ENDED,
                why=f"admin ({request.user.get_username()})",
            )
            for account in queryset
        )
        self.message_user(
            request,
            ngettext("%(count)d session terminée.", "%(count)d sessions terminées.", ended)
            % {"count": ended},
            messages.SUCCESS,
        )
        return None

    def account_items(self, queryset: QuerySet) -> list[tuple[str, str]]:
        """Each account as the confirmation page lists it: who, where, how many sessions."""
        return [
            (
                f"{self.user_display(account)} · {realm_text(account.realm)} · {account.sub}",
                sessions_text(account.session_count),
            )
            for account in queryset.select_related("user").annotate(session_count=Count("sessions"))
        ]

    @admin.action(description=_("Rafraîchir les jetons maintenant"), permissions=["change"])
    def refresh_tokens(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Refresh every grant of the accounts; a refusal is judged like any other."""
        refreshed, failures = 0, []
        for account in queryset:
            for grant in vault.live_grants(account):
                grant.account = account
                try:
                    vault.refresh(grant, force=True)
                    refreshed += 1
                except vault.GrantRefused as exc:
                    verdict = consent.grant_refused(exc)
                    label = (
                        _("consentement retiré")
                        if verdict is consent.ConsentCheck.WITHDRAWN
                        else _("autorisation refusée, terminée")
                    )
                    failures.append((str(account), label))
                    if verdict is consent.ConsentCheck.WITHDRAWN:
                        break
                except FTAuthError as exc:
                    # The error's type only: messages never carry token material anyway.
                    failures.append((str(account), type(exc).__name__))
        if refreshed:
            self.message_user(
                request,
                ngettext(
                    "%(count)d autorisation rafraîchie.",
                    "%(count)d autorisations rafraîchies.",
                    refreshed,
                )
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

    # Deleting an account is an unlink done by the site: same path, its own audit event.
    def delete_model(self, request: HttpRequest, obj: LinkedAccount) -> None:
        lifecycle.remove_account(
            obj, kind=AuditEvent.Kind.DELETED, why=f"admin ({request.user.get_username()})"
        )

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for account in queryset:
            self.delete_model(request, account)


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
