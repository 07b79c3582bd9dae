"""Optional OCR engine: PaddleOCR 3.x itself (``pip install videobank[paddle]``), offline.

PaddleOCR downloads its models on first use unless it is given local model directories; a bank
server has no business fetching weights at run time, so this backend refuses to start without
them. Settings:

- ``KYC_PADDLE_MODEL_DIR``: a directory holding one sub-directory per model, named after the
  model (PaddleX's own cache ``~/.paddlex/official_models`` has exactly this layout);
- ``KYC_PADDLE_DET_MODEL`` (default ``PP-OCRv5_mobile_det``) and ``KYC_PADDLE_REC_MODEL``
  (default ``PP-OCRv5_mobile_rec``): the model names.

Document orientation, unwarping and text-line orientation are switched off: the card reader
handles orientation itself (it tries the picture turned 180° when nothing reads).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from kyc.ocr import TextLine

DEFAULT_DET_MODEL = "PP-OCRv5_mobile_det"
DEFAULT_REC_MODEL = "PP-OCRv5_mobile_rec"


def paddle_model_dirs() -> tuple[Path, str, Path, str]:
    """(detection dir, detection model name, recognition dir, recognition model name), checked."""
    base = getattr(settings, "KYC_PADDLE_MODEL_DIR", "") or ""
    det_name = getattr(settings, "KYC_PADDLE_DET_MODEL", "") or DEFAULT_DET_MODEL
    rec_name = getattr(settings, "KYC_PADDLE_REC_MODEL", "") or DEFAULT_REC_MODEL
    if not base:
        raise ImproperlyConfigured(
            "The PaddleOCR backend needs local models: set KYC_PADDLE_MODEL_DIR to a directory "
            f"holding {det_name}/ and {rec_name}/ (PaddleOCR would otherwise download them)."
        )
    det_dir, rec_dir = Path(base) / det_name, Path(base) / rec_name
    missing = [str(d) for d in (det_dir, rec_dir) if not d.is_dir()]
    if missing:
        raise ImproperlyConfigured(
            f"KYC_PADDLE_MODEL_DIR={base}: model directories missing: {', '.join(missing)}."
        )
    return det_dir, det_name, rec_dir, rec_name


class PaddleOcrEngine:
    name = "paddleocr"

    def __init__(self) -> None:
        det_dir, det_name, rec_dir, rec_name = paddle_model_dirs()
        try:  # an optional extra (pip install .[paddle]): only when this backend is chosen
            from paddleocr import PaddleOCR
        except ImportError as exc:
            raise ImproperlyConfigured(
                "KYC_OCR_BACKEND names the PaddleOCR backend but paddleocr is not installed "
                "(pip install 'videobank[paddle]')."
            ) from exc
        self._ocr = PaddleOCR(
            text_detection_model_dir=str(det_dir),
            text_detection_model_name=det_name,
            text_recognition_model_dir=str(rec_dir),
            text_recognition_model_name=rec_name,
            use_doc_orientation_classify=False,
            use_doc_unwarping=False,
            use_textline_orientation=False,
        )

    def read(self, image: np.ndarray) -> list[TextLine]:
        # PaddleOCR, like OpenCV, takes arrays as BGR.
        lines: list[TextLine] = []
        for res in self._ocr.predict(np.ascontiguousarray(image[..., ::-1])):
            texts = res["rec_texts"]
            scores = res["rec_scores"]
            polys = res.get("rec_polys")
            if polys is None or len(polys) == 0:
                polys = res.get("dt_polys", [])
            for text, score, poly in zip(texts, scores, polys, strict=False):
                points = np.asarray(poly, dtype=float).reshape(-1, 2)
                lines.append(
                    TextLine(
                        text=str(text),
                        score=float(score),
                        box=tuple((float(x), float(y)) for x, y in points),
                    )
                )
        return lines
