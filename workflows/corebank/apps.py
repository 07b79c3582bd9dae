from django.apps import AppConfig


class CoreBankClientConfig(AppConfig):
    """Our client of the bank's core system: submissions with idempotency keys, the outage queue."""

    name = "workflows.corebank"
    label = "workflows_corebank"
    verbose_name = "Core banking (client)"
    default_auto_field = "django.db.models.BigAutoField"
