from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _


class FTAuthConfig(AppConfig):
    name = "ftauth"
    verbose_name = _("France Travail Connect")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the system checks, the settings reset and the auth signal receivers.
        from . import checks, conf, metrics, signals  # noqa: F401

        metrics.connect()
        refuse_to_start_without_token_keys()


def refuse_to_start_without_token_keys() -> None:
    """No server starts (runserver, gunicorn, any ``manage.py`` command) with
    ``TOKEN_KEYS`` empty or malformed.

    Every sign-in and every call with a user's token would fail until the keys are
    fixed: a permanent fault, said once at start-up, as Django does for a missing
    ``SECRET_KEY``, rather than a "try again" page to every user.
    """
    from .checks import check_token_keys

    errors = check_token_keys()
    if errors:
        error = errors[0]
        raise ImproperlyConfigured(f"{error.msg} ({error.id}). {error.hint}")
