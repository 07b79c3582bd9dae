import warnings

from django.apps import AppConfig


class KycConfig(AppConfig):
    name = "kyc"
    verbose_name = "Identity checks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from PIL import Image

        # Past Image.MAX_IMAGE_PIXELS (set in kyc/images.py) Pillow only *warns*; nothing in this
        # process has a reason to decode such a picture, so the warning stops it like the error.
        warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
        from . import images  # noqa: F401  (sets Image.MAX_IMAGE_PIXELS for every process)
