"""Check every linked account's consent with France Travail, within the API quota.

The middleware checks signed-in sessions as they come; this command reaches
the accounts nobody is using (run it from cron, e.g. hourly). One call per
account, like the middleware: an account none of whose grants France Travail
vouched for within ``--older-than`` has its most recently used grant checked;
a refused grant is judged like anywhere else (``ftauth.consent``): the other
grants are probed, and the account is withdrawn only when every grant it has
is refused. Calls are spaced to stay under ``--rate`` per second (France
Travail asks clients to sequence their calls); each takes only a turn under the
shared quota that is free now, so the site's pages and sign-ins come first, and
a 429 or a busy quota is honoured by waiting its ``Retry-After`` (capped by
FTAUTH API_RETRY_AFTER_CAP) before trying that account once more.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Exists, F, OuterRef, Subquery
from django.utils import timezone

from ...conf import get_settings
from ...consent import ConsentCheck, check_grant
from ...core.errors import QuotaExceeded, TransportError
from ...models import Grant

# Tries per account when the quota says "later".
ATTEMPTS = 3


class Command(BaseCommand):
    help = "Check the grants of linked accounts with France Travail (spaced calls)."

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
            help="Only accounts none of whose grants was checked for this many seconds "
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
        recently_checked = Grant.objects.filter(
            account_id=OuterRef("account_id"), checked_at__gt=stale
        )
        # Per account, the grant the account's status goes by (``latest_first``).
        latest = Grant.objects.filter(account_id=OuterRef("account_id")).latest_first()
        grants = (
            Grant.objects.select_related("account")
            .filter(account__realm__in=realms, account__consent_withdrawn_at__isnull=True)
            .exclude(Exists(recently_checked))
            .filter(pk=Subquery(latest.values("pk")[:1]))
            .order_by(F("checked_at").asc(nulls_first=True), "pk")
        )
        if options["limit"]:
            grants = grants[: options["limit"]]
        results: Counter[str] = Counter()
        spacing = 1.0 / rate
        next_call = self.clock()
        # A list, not an iterator: checking one grant may end others of its account.
        for grant in list(grants):
            wait = next_call - self.clock()
            if wait > 0:
                self.sleep(wait)
            results[self._check(grant, conf.api_retry_after_cap)] += 1
            next_call = self.clock() + spacing
        summary = ", ".join(f"{status.value} {results[status]}" for status in ConsentCheck)
        self.stdout.write(f"{sum(results.values())} account(s) checked: {summary}")

    def _check(self, grant: Grant, retry_after_cap: float) -> ConsentCheck:
        # A 429, then the rest of the pause it set (its jitter), then the check.
        for attempt in range(ATTEMPTS):
            try:
                return check_grant(grant, raise_transient=True, background=True)
            except QuotaExceeded as exc:
                if attempt == ATTEMPTS - 1:
                    break
                self.sleep(min(exc.retry_after or 1.0, retry_after_cap))
            except TransportError:
                break
        return ConsentCheck.UNKNOWN
