"""Re-encrypt every stored token (and registered session key) under the first key.

Rotation: put the new key first in FTAUTH['TOKEN_KEYS'], keep the old ones
after it, deploy, run this command, then remove the old keys. Each row is
re-encrypted under its own row lock, so a refresh running at the same time is
never overwritten with an older token. Rows that no key can decrypt are left
untouched and reported: the command then exits with an error. When their key is
lost for good, ``--forget-unreadable`` ends those grants instead (their sessions
sign in again): nothing else would ever make them serve again.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import F, Model
from django.utils import timezone

from ... import crypto
from ...internal import audit, lifecycle
from ...models import AccountSession, AuditEvent, Grant

TOKEN_FIELDS = (
    "access_token_ciphertext",
    "refresh_token_ciphertext",
    "id_token_ciphertext",
    "pending_id_token_ciphertext",
)
SESSION_FIELDS = ("session_key_ciphertext",)


class Command(BaseCommand):
    help = "Re-encrypt stored tokens under the first key of FTAUTH['TOKEN_KEYS']."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Only count the rows that would be re-encrypted or cannot be.",
        )
        parser.add_argument(
            "--forget-unreadable",
            action="store_true",
            help=(
                "End the grants no key decrypts (their users sign in again), for a key "
                "lost for good. Without it they are left untouched, to put the key back."
            ),
        )

    def handle(
        self,
        *args: Any,
        dry_run: bool = False,
        forget_unreadable: bool = False,
        **options: Any,
    ) -> None:
        try:
            crypto.cipher()
        except crypto.TokenKeyError as exc:
            raise CommandError(str(exc)) from None
        counts = {"rotated": 0, "unreadable": 0, "busy": 0}
        unreadable: dict[type[Model], list[int]] = {Grant: [], AccountSession: []}
        for model, fields in ((Grant, TOKEN_FIELDS), (AccountSession, SESSION_FIELDS)):
            for pk in model.objects.order_by("pk").values_list("pk", flat=True).iterator():
                outcome = self._rotate(model, pk, fields, dry_run)
                counts[outcome] += 1
                if outcome == "unreadable":
                    unreadable[model].append(pk)
        if not dry_run:
            audit.record(AuditEvent.Kind.KEYS_ROTATED, **counts)
        verb = "would be re-encrypted" if dry_run else "re-encrypted"
        self.stdout.write(f"{counts['rotated']} row(s) {verb} under the first key.")
        if forget_unreadable and counts["unreadable"]:
            self._forget(unreadable[Grant], unreadable[AccountSession], dry_run)
            counts["unreadable"] = 0
        problems = []
        if counts["unreadable"]:
            problems.append(
                f"{counts['unreadable']} row(s) cannot be decrypted with any key of "
                "FTAUTH['TOKEN_KEYS'] and were left untouched: add the missing key at the end "
                "of the list"
            )
        if counts["busy"]:
            problems.append(f"{counts['busy']} row(s) were being refreshed")
        if problems:
            raise CommandError("; ".join(problems) + ". Run this command again.")

    def _forget(self, grant_ids: list[int], session_ids: list[int], dry_run: bool) -> None:
        """End the unreadable grants, each as an operator's ending (audit event, its
        sessions signed out), and drop unreadable session rows left: a session whose
        row is gone is signed out at its next request (``ConsentMiddleware``)."""
        if not dry_run:
            for grant in Grant.objects.filter(pk__in=grant_ids).select_related("account"):
                lifecycle.end_grants(
                    grant.account,
                    [grant.pk],
                    kind=AuditEvent.Kind.GRANT_ENDED,
                    why="ftauth_rotate_keys --forget-unreadable: no key decrypts its tokens",
                )
            AccountSession.objects.filter(pk__in=session_ids).delete()
        verb = "would be ended" if dry_run else "ended"
        self.stdout.write(
            f"{len(grant_ids)} grant(s) no key decrypts {verb}: their users sign in again."
        )

    def _rotate(self, model: type[Model], pk: int, fields: tuple[str, ...], dry_run: bool) -> str:
        with transaction.atomic():
            # Lock the row before reading it (row lock on PostgreSQL, write lock on
            # SQLite) for the few statements below; no HTTP call happens in here.
            model.objects.filter(pk=pk).update(**{fields[0]: F(fields[0])})
            row = model.objects.filter(pk=pk).first()
            if row is None:
                return "rotated"  # deleted meanwhile: nothing left to rotate
            lease = getattr(row, "refresh_lease_until", None)
            if lease is not None and lease > timezone.now():
                # A refresh is in flight (its lease, on every database): its answer
                # is stored only if the refresh token is unchanged, so re-encrypting
                # now would throw that answer away. Later.
                return "busy"
            try:
                values = {name: crypto.reencrypt(getattr(row, name)) for name in fields}
            except crypto.TokenDecryptionError:
                return "unreadable"
            if not dry_run:
                model.objects.filter(pk=pk).update(**values)
        return "rotated"
