import os

from celery import Celery, signals
from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "videobank.settings")

app = Celery("videobank")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
def _refuse_unsafe_production(**kwargs) -> None:
    """A worker runs no system checks: on the production profile it refuses to start with unset
    or published keys, or an outside system pointed at a stub (videobank/checks.py). Celery logs
    and swallows a signal handler's exception, so the refusal leaves by SystemExit."""
    # This module loads with the videobank package (its __init__), before Django has settings:
    # the checks, which read them, load when a worker starts.
    from videobank.checks import production_refuse_unsafe

    try:
        production_refuse_unsafe("celery worker")
    except ImproperlyConfigured as exc:
        raise SystemExit(f"ImproperlyConfigured: {exc}") from exc
