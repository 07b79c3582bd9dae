from django.apps import AppConfig


class NationalCheckConfig(AppConfig):
    """Our client of the national online ID check (results, cache)."""

    name = "kyc.national"
    label = "kyc_national"
    verbose_name = "National ID check (client)"
    default_auto_field = "django.db.models.BigAutoField"
