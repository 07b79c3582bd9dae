from django.apps import AppConfig

from videobank import events


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = "Business workflows"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Services load once the app registry is ready, hence imported here.
        from . import services

        events.on(events.CallEnded, services.call_cases_close)
        events.on(events.FaceMatchFinished, services.case_identity_refreshed)
        events.on(events.SubmissionChanged, services.case_submission_result)
