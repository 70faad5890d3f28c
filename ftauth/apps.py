from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FTAuthConfig(AppConfig):
    name = "ftauth"
    verbose_name = _("France Travail Connect")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, conf  # noqa: F401  (registers checks and the settings reset)
