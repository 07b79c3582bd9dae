import warnings

from django.apps import AppConfig
from PIL import Image

from recordings.evidence import EvidenceKeeper, keeper_set
from videobank import events


class KycConfig(AppConfig):
    name = "kyc"
    verbose_name = "Identity checks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Past Image.MAX_IMAGE_PIXELS (set in kyc/images.py) Pillow only *warns*; nothing in this
        # process has a reason to decode such a picture, so the warning stops it like the error.
        warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
        # Models and services load once the app registry is ready, hence imported here.
        from . import (
            images,  # noqa: F401  (sets Image.MAX_IMAGE_PIXELS for every process)
            selectors,
            services,
        )

        events.on(events.NationalCheckFinished, services.identity_national_result)
        # What the media engine grabbed for a check (it imports no kyc code).
        events.on(events.FramesGrabbed, services.identity_frames_received)
        events.on(events.GrabFailed, services.identity_grab_failed)
        # The identity pictures are sealed with the call recording's key: the QA console shows
        # and exports them with the recording.
        keeper_set(
            EvidenceKeeper(
                listed=selectors.identity_evidence_for_call,
                found=selectors.identity_evidence_get,
                opened=services.identity_evidence_open,
            )
        )
