"""A local France Travail identity server for development, demos and tests."""

from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "ftauth.sandbox"
    label = "ftauth_sandbox"
    verbose_name = "France Travail sandbox"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .conf import check_debug_allowed

        check_debug_allowed()
