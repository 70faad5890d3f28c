from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "ftauth.sandbox"
    label = "ftauth_sandbox"
    verbose_name = "France Travail sandbox"
    default_auto_field = "django.db.models.BigAutoField"
