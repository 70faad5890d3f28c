from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FTAuthConfig(AppConfig):
    name = "ftauth"
    verbose_name = _("France Travail Connect")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the system checks, the settings reset and the auth signal receivers.
        from . import checks, conf, metrics, signals  # noqa: F401

        metrics.connect()
