"""Check every linked account's consent with France Travail, within the API quota.

The middleware checks signed-in sessions as they come; this command reaches
the accounts nobody is using (run it from cron, e.g. hourly). Calls are
spaced to stay under ``--rate`` per second (France Travail asks clients to
sequence their calls), and a 429 is honoured by waiting its ``Retry-After``
(capped by FTAUTH API_RETRY_AFTER_CAP) before trying that account once more.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.utils import timezone

from ...conf import get_settings
from ...consent import ConsentCheck, check_consent
from ...core.errors import QuotaExceeded, TransportError
from ...models import LinkedAccount


class Command(BaseCommand):
    help = "Check the consent of linked accounts with France Travail (spaced calls)."

    # Replaced in tests to observe the spacing without waiting for it.
    sleep: Callable[[float], None] = staticmethod(time.sleep)
    clock: Callable[[], float] = staticmethod(time.monotonic)

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--realm", help="Only this realm.")
        parser.add_argument(
            "--rate",
            type=float,
            default=None,
            help="Checks per second (default: FTAUTH API_DEFAULT_RATE / 2, leaving room "
            "for the site's own calls).",
        )
        parser.add_argument(
            "--older-than",
            type=int,
            default=None,
            help="Only accounts not checked for this many seconds "
            "(default: CONSENT_CHECK_INTERVAL).",
        )
        parser.add_argument("--limit", type=int, default=None, help="At most this many.")

    def handle(self, *args: Any, **options: Any) -> None:
        conf = get_settings()
        rate = options["rate"] or conf.api_default_rate / 2
        if rate <= 0:
            raise CommandError("--rate must be positive")
        older_than = options["older_than"]
        if older_than is None:
            older_than = conf.consent_check_interval
        realms = list(conf.enabled_realms)
        if options["realm"]:
            if options["realm"] not in realms:
                raise CommandError(f"unknown or disabled realm {options['realm']!r}")
            realms = [options["realm"]]
        stale = timezone.now() - timedelta(seconds=older_than)
        accounts = (
            LinkedAccount.objects.filter(
                realm__in=realms, consent_withdrawn_at__isnull=True, token_set__isnull=False
            )
            .filter(Q(consent_checked_at__isnull=True) | Q(consent_checked_at__lte=stale))
            .order_by("consent_checked_at", "pk")
        )
        if options["limit"]:
            accounts = accounts[: options["limit"]]
        results: Counter[str] = Counter()
        spacing = 1.0 / rate
        next_call = self.clock()
        for account in accounts.iterator():
            wait = next_call - self.clock()
            if wait > 0:
                self.sleep(wait)
            results[self._check(account, conf.api_retry_after_cap)] += 1
            next_call = self.clock() + spacing
        summary = ", ".join(f"{status.value} {results[status]}" for status in ConsentCheck)
        self.stdout.write(f"{sum(results.values())} account(s) checked: {summary}")

    def _check(self, account: LinkedAccount, retry_after_cap: float) -> ConsentCheck:
        for attempt in range(2):
            try:
                return check_consent(account, raise_transient=True)
            except QuotaExceeded as exc:
                if attempt:
                    break
                self.sleep(min(exc.retry_after or 1.0, retry_after_cap))
            except TransportError:
                break
        return ConsentCheck.UNKNOWN
