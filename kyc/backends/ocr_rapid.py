"""Default OCR engine: PaddleOCR's PP-OCR models run by ONNX Runtime through the ``rapidocr`` wheel.

The detection, direction-classifier and recognition models ship inside the wheel, so this works
offline from the first call. The direction classifier is kept on: it turns upside-down text lines
before recognition, which is how an upside-down card is still read and then reported as such
(from the layout) instead of coming back as noise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import numpy as np
from django.conf import settings

from kyc.ocr import TextLine

if TYPE_CHECKING:
    from rapidocr.utils.output import RapidOCROutput

# rapidocr enlarges pictures whose shorter side is under 736 px before text detection. A card
# filling a 640×480 frame or a 856×540 render has text large enough for the detector at its own
# size, and enlarging costs a third of the CPU time (bench/kyc.py: 2.5 → 1.8 CPU-s for both
# sides, same accuracy). Small text is handled by the card reader's enlarged second reading.
DET_MIN_SIDE = 480


class RapidOcrEngine:
    name = "rapidocr"

    def __init__(self, *, threads: int | None = None):
        from rapidocr import RapidOCR  # heavy import (onnxruntime, models): only when chosen

        if threads is None:
            threads = settings.KYC_OCR_THREADS
        params: dict[str, Any] = {"Global.log_level": "error", "Det.limit_side_len": DET_MIN_SIDE}
        if threads:
            params["EngineConfig.onnxruntime.intra_op_num_threads"] = threads
        self._ocr = RapidOCR(params=params)

    def read(self, image: np.ndarray) -> list[TextLine]:
        # rapidocr takes arrays as BGR (OpenCV order); ours are RGB.
        # Detection, classification and recognition all run (the defaults): the whole output.
        result = cast("RapidOCROutput", self._ocr(np.ascontiguousarray(image[..., ::-1])))
        if result is None or result.txts is None or result.scores is None or result.boxes is None:
            return []
        return [
            TextLine(
                text=str(text),
                score=float(score),
                box=tuple((float(x), float(y)) for x, y in np.asarray(box).reshape(-1, 2)),
            )
            for text, score, box in zip(result.txts, result.scores, result.boxes, strict=False)
        ]
