"""Several threads ask for an expiring access token at once, on a SQLite *file* database.

Run by ``tests/test_vault.py`` in a subprocess: the test suite's SQLite
database lives in memory with a shared cache, whose table locks fail at once
instead of waiting, unlike a real SQLite file. Reads a JSON job on stdin
(token response of a grant at the test's fake France Travail, its settings),
prints a JSON result: the token each caller got, and the errors.
"""

from __future__ import annotations

import json
import os
import sys
import threading


def main() -> None:
    job = json.load(sys.stdin)
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django

    django.setup()
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connections
    from django.test.utils import override_settings
    from django.utils import timezone

    from ftauth import vault
    from ftauth.core.tokens import TokenResponse
    from ftauth.models import Grant, LinkedAccount

    with override_settings(FTAUTH=job["ftauth"]):
        call_command("migrate", verbosity=0, interactive=False)
        user = get_user_model().objects.create_user("sqlite-caller")
        account = LinkedAccount.objects.create(user=user, realm="individu", sub=job["sub"])
        tokens = TokenResponse.from_json(job["token_response"])
        grant = vault.new_grant(account, tokens, job["claims"])
        Grant.objects.filter(account=account).update(
            expires_at=timezone.now() + timedelta(seconds=10)
        )
        barrier = threading.Barrier(job["callers"])
        results, errors = [], []

        def caller() -> None:
            try:
                barrier.wait()
                current = Grant.objects.select_related("account").get(pk=grant.pk)
                results.append(vault.access_token(current))
            except Exception as exc:  # reported to the test
                errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                connections.close_all()

        threads = [threading.Thread(target=caller) for _ in range(job["callers"])]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    json.dump({"tokens": results, "errors": errors}, sys.stdout)


if __name__ == "__main__":
    main()
