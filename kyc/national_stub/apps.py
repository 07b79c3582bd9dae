from django.apps import AppConfig


class NationalStubConfig(AppConfig):
    """A stand-in for the public-security online ID check: an outside service of its own."""

    name = "kyc.national_stub"
    label = "national_stub"
    verbose_name = "National ID check (stub of the outside service)"
    default_auto_field = "django.db.models.BigAutoField"
