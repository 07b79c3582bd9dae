from django.apps import AppConfig


class CoreBankStubConfig(AppConfig):
    """A stand-in for the bank's core system: an outside service of its own."""

    name = "workflows.corebank_stub"
    label = "corebank_stub"
    verbose_name = "Core banking (stub of the outside service)"
    default_auto_field = "django.db.models.BigAutoField"
