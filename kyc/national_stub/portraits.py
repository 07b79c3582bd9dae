"""Portrait comparison of the stub's three-factor check, on the project's face engine.

The engine loads when first needed (``kyc.faces.face_engine``): the stub starts (and answers
two-factor queries) without loading dlib.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.conf import settings

from kyc.faces import (
    DEFAULT_MATCH_THRESHOLD,
    card_min_size_px,
    encoding_distance,
    face_find_one,
)


def portrait_encoding(image: np.ndarray) -> list[float]:
    """The 128-float encoding of the one face in an RGB image; FaceProblem (in words) if none.
    Portraits are ID photos (a card's photo area, a chip photo): small faces are normal there,
    so the card's size limit applies, and a printed ghost copy is not a second face."""
    face = face_find_one(image, ghost_ok=True, min_size=card_min_size_px())
    assert face.encoding is not None  # encode=True (the default) computes it
    return [float(x) for x in face.encoding]


def portrait_distance(reference: Sequence[float], probe: Sequence[float]) -> float:
    return float(encoding_distance(np.asarray(reference), np.asarray(probe)))


def portrait_max_distance() -> float:
    """Faces at most this far apart are the same person: ``NATIONAL_STUB_FACE_MAX_DISTANCE``,
    by default the threshold the project measured for card portraits against live frames
    (``kyc.faces.DEFAULT_MATCH_THRESHOLD``)."""
    value = getattr(settings, "NATIONAL_STUB_FACE_MAX_DISTANCE", None)
    if value is None:
        value = DEFAULT_MATCH_THRESHOLD
    return float(value)
