"""Rotate the sandbox's signing keys: ``manage.py ftauth_sandbox_rotate_keys``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ...directory import REALM_HOST
from ...keys import rotate_signing_keys


class Command(BaseCommand):
    help = (
        "Give each sandbox realm a new RS256 signing key; the previous key stays in "
        "the JWKS for FTAUTH_SANDBOX['RETIRED_KEY_TTL'] seconds."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--realm", action="append", choices=sorted(REALM_HOST), help="only this realm"
        )

    def handle(self, *args: Any, realm: list[str] | None = None, **options: Any) -> None:
        for kid in rotate_signing_keys(tuple(realm) if realm else None):
            self.stdout.write(f"new signing key: {kid}")
