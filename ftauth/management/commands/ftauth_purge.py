"""Remove what ftauth no longer needs: expired pending sign-ins, consumed logout
tokens past their replay window, audit events past AUDIT_RETENTION_DAYS,
registry rows of sessions that no longer exist, and the grants of sign-ins
whose sessions are all gone (but each account's latest, which jobs may use)."""

from __future__ import annotations

from datetime import timedelta
from importlib import import_module
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from ... import crypto
from ...conf import get_settings
from ...internal.sessions import is_server_side
from ...models import (
    AccountSession,
    AuditEvent,
    ConsumedLogoutToken,
    Grant,
    PendingAuthorization,
)


class Command(BaseCommand):
    help = "Delete expired pending sign-ins, logout token ids, old audit events, dead sessions."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Only count.")

    def handle(self, *args: Any, dry_run: bool = False, **options: Any) -> None:
        now = timezone.now()
        retention = timedelta(days=get_settings().audit_retention_days)
        querysets = {
            "pending sign-ins": PendingAuthorization.objects.filter(expires_at__lt=now),
            "logout token ids": ConsumedLogoutToken.objects.filter(expires_at__lt=now),
            "audit events": AuditEvent.objects.filter(created_at__lt=now - retention),
        }
        for label, queryset in querysets.items():
            count = queryset.count() if dry_run else queryset.delete()[0]
            self.stdout.write(f"{label}: {count}")
        dead = self._dead_sessions(now)
        if not dry_run:
            AccountSession.objects.filter(pk__in=dead).delete()
        self.stdout.write(f"dead sessions: {len(dead)}")
        stale = self._stale_grants(now)
        count = stale.count() if dry_run else stale.delete()[1].get(Grant._meta.label, 0)
        self.stdout.write(f"grants without sessions: {count}")

    def _stale_grants(self, now: Any) -> QuerySet:
        """Grants no session uses, last used longer ago than any session lasts, and not
        their account's most recent one (kept for calls made outside a request)."""
        too_old = now - timedelta(seconds=settings.SESSION_COOKIE_AGE)
        latest = Grant.objects.filter(account=OuterRef("account")).latest_first().values("pk")[:1]
        return (
            Grant.objects.filter(sessions__isnull=True, obtained_at__lt=too_old)
            .filter(Q(refreshed_at__isnull=True) | Q(refreshed_at__lt=too_old))
            .exclude(pk=Subquery(latest))
        )

    def _dead_sessions(self, now: Any) -> list[int]:
        """Rows whose session is gone: expired from a server-side store, or not seen by
        the middleware for longer than any session lasts (SESSION_COOKIE_AGE)."""
        dead = []
        too_old = now - timedelta(seconds=settings.SESSION_COOKIE_AGE)
        for row in AccountSession.objects.iterator():
            engine = row.engine or settings.SESSION_ENGINE
            try:
                server_side = is_server_side(engine)
            except ImportError:
                dead.append(row.pk)
                continue
            if row.seen_at < too_old:
                dead.append(row.pk)
                continue
            if not server_side or not row.session_key_ciphertext:
                continue
            try:
                key = crypto.decrypt(row.session_key_ciphertext)
            except crypto.TokenDecryptionError:
                continue  # a key is missing: keep the row, the system check reports it
            if not import_module(engine).SessionStore().exists(key):
                dead.append(row.pk)
        return dead
