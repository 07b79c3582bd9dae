from django.apps import AppConfig

from videobank import events


class RecordingsConfig(AppConfig):
    name = "recordings"

    def ready(self) -> None:
        # Services load once the app registry is ready, hence imported here.
        from . import services

        events.on(events.CallAnswered, services.recording_start)
        events.on(events.Housekeeping, services.recordings_sweep)
