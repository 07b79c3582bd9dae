import uuid

from celery import shared_task
from django.db import OperationalError

from recordings.services import recording_finalise


@shared_task(
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
    acks_late=True,
)
def recording_finalise_task(recording_id: str) -> str:
    """Finalise a recording once both sides' writers are closed. Idempotent."""
    recording = recording_finalise(recording_id=uuid.UUID(recording_id))
    return recording.manifest_sha256
