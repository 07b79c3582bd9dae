from django.apps import AppConfig

from videobank import events


class CoreBankClientConfig(AppConfig):
    """Our client of the bank's core system: submissions with idempotency keys, the outage queue."""

    name = "workflows.corebank"
    label = "workflows_corebank"
    verbose_name = "Core banking (client)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Services load once the app registry is ready, hence imported here.
        from . import services

        # Submissions a stopped process left behind are sent again (safe: each keeps its
        # idempotency key).
        events.on(events.Housekeeping, services.submissions_resume)
