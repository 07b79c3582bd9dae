"""Faces for the in-call identity check: find exactly one face, and match the ID card's portrait
against frames the server sampled from the customer's live video.

The engine sits behind :class:`FaceEngine`; ``settings.KYC_FACE_BACKEND`` names it by dotted path
(default: dlib's HOG detector, 5-point landmarks and ResNet encodings, the models face_recognition
uses with ``model="small"``). Distances are Euclidean distances between 128-d encodings.

Settings (read at call time, so tests can override them):

- ``KYC_FACE_BACKEND``: dotted path of the engine class.
- ``KYC_FACE_MATCH_THRESHOLD`` (default :data:`DEFAULT_MATCH_THRESHOLD`): the median
  card-to-frame distance must not exceed it. Measured with ``bench/face_threshold.py``.
- ``KYC_FACE_MATCH_CEILING`` (default :data:`DEFAULT_MATCH_CEILING`): no usable frame may exceed
  it, so that one frame of somebody else cannot hide behind a good median.
- ``KYC_FACE_MIN_FRAMES`` (default 3): usable frames needed for a decision.
- ``KYC_FACE_MIN_SIZE_PX`` (default :data:`DEFAULT_MIN_SIZE_PX`): the smallest face, as the
  detector box's width in the picture's own pixels, that counts as a face in a video frame.
- ``KYC_FACE_CARD_MIN_SIZE_PX`` (default :data:`DEFAULT_CARD_MIN_SIZE_PX`): the same for the ID
  card's portrait, which may be the small photo read from the card's chip.
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from django.conf import settings
from django.utils.module_loading import import_string
from PIL import Image

from .errors import BadImage, FaceProblem, KycError
from .images import MAX_PIXELS

DEFAULT_BACKEND = "kyc.backends.face_dlib.DlibFaceEngine"

# Measured with bench/face_threshold.py (ID-card portraits, scanned or chip-sized, against
# 640x480 live-like frames; 10 people, 4,536 different-person and 216 same-person-other-photo
# pairs): same person at most 0.512 (the 102x126 chip photo), different people at least 0.543.
# The threshold sits in that gap, 0.4 of the way from the same-person side, because letting
# somebody else through costs more than asking a customer to try again.
DEFAULT_MATCH_THRESHOLD = 0.52
# No usable frame may be further than this (face_recognition's own tolerance): one frame of
# somebody else must not hide behind a good median, while one poor frame of the right person
# (blur, a turned head) may.
DEFAULT_MATCH_CEILING = 0.60
DEFAULT_MIN_FRAMES = 3
# Live frames: HOG at upsample 0 reports no box under 72 px, and the customer at arm's length
# shows 150-250 px; under 80 px the customer is too far away.
DEFAULT_MIN_SIZE_PX = 80
# The card's portrait: the photo a reader returns from a Chinese ID card's chip is 102x126 px,
# its face box 52-72 px; its distances stay in the ranges above (bench: "chip card").
DEFAULT_CARD_MIN_SIZE_PX = 48

# Larger pictures are shrunk to this longest side before HOG: HOG time grows with the pixels
# (2-3 MP test photos: 200-250 ms at full size, 43-78 ms shrunk; phone photos take seconds).
# Landmarks and encodings are still taken from the full picture.
DETECT_MAX_SIDE = 1024
# With ``ghost_ok``, faces smaller than this share of the largest are ignored: the small
# "ghost" copy of the portrait printed on many ID cards and passports.
GHOST_RATIO = 0.6


@dataclass(frozen=True)
class FaceBox:
    """A detector box in picture pixels (may reach past the edges for faces cut by the frame)."""

    left: int
    top: int
    right: int
    bottom: int
    score: float = 0.0

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def scaled(self, factor: float) -> FaceBox:
        return FaceBox(
            round(self.left * factor),
            round(self.top * factor),
            round(self.right * factor),
            round(self.bottom * factor),
            self.score,
        )

    def as_list(self) -> list[int]:
        return [self.left, self.top, self.right, self.bottom]


@dataclass(frozen=True)
class FaceFound:
    """The one face in a picture. ``landmarks`` are dlib's 5 points (x, y) in picture pixels:
    0-1 the outer and inner corner of the eye on the picture's right, 2-3 the outer and inner
    corner of the eye on the picture's left, 4 the base of the nose."""

    box: FaceBox
    landmarks: np.ndarray
    encoding: np.ndarray | None

    @property
    def eye_left(self) -> np.ndarray:
        """Centre of the eye on the picture's left (the person's right eye)."""
        return self.landmarks[2:4].mean(axis=0)

    @property
    def eye_right(self) -> np.ndarray:
        return self.landmarks[0:2].mean(axis=0)

    @property
    def nose(self) -> np.ndarray:
        return self.landmarks[4]


class FaceEngine(Protocol):
    name: str

    def detect(self, image: np.ndarray, *, upsample: int) -> list[FaceBox]:
        """All face boxes in an RGB uint8 picture."""

    def describe(
        self, image: np.ndarray, box: FaceBox, *, encode: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The 5 landmarks (5x2) of the face in ``box`` and, if asked, its 128-d encoding."""


_engines: dict[str, FaceEngine] = {}
_engines_lock = threading.Lock()


def face_engine() -> FaceEngine:
    """The configured engine, created once per process (its models load on first use)."""
    path = getattr(settings, "KYC_FACE_BACKEND", DEFAULT_BACKEND)
    with _engines_lock:
        engine = _engines.get(path)
        if engine is None:
            engine = _engines[path] = import_string(path)()
    return engine


def match_threshold() -> float:
    return float(getattr(settings, "KYC_FACE_MATCH_THRESHOLD", DEFAULT_MATCH_THRESHOLD))


def match_ceiling() -> float:
    return float(getattr(settings, "KYC_FACE_MATCH_CEILING", DEFAULT_MATCH_CEILING))


def min_size_px() -> int:
    return int(getattr(settings, "KYC_FACE_MIN_SIZE_PX", DEFAULT_MIN_SIZE_PX))


def card_min_size_px() -> int:
    return int(getattr(settings, "KYC_FACE_CARD_MIN_SIZE_PX", DEFAULT_CARD_MIN_SIZE_PX))


def _rgb(image: np.ndarray) -> np.ndarray:
    """A contiguous HxWx3 uint8 array (what dlib takes), or BadImage in words."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise BadImage(
            "The picture is not an 8-bit image.",
            detail_zh="图片不是 8 位图像。",
            code="not_image",
        )
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.shape[2] == 4:
        image = image[:, :, :3]
    elif image.shape[2] != 3:
        raise BadImage(
            "The picture is not an RGB image.",
            detail_zh="图片不是 RGB 彩色图像。",
            code="not_image",
        )
    height, width = image.shape[:2]
    if height < 16 or width < 16:
        raise BadImage(
            f"The picture is only {width}x{height} pixels.",
            detail_zh=f"图片只有 {width}x{height} 像素。",
            code="too_small",
        )
    if height * width > MAX_PIXELS:
        raise BadImage(
            f"The picture has {height * width / 1e6:.0f} megapixels; the limit is 20.",
            detail_zh=f"图片为 {height * width / 1e6:.0f} 百万像素，超过 2000 万像素上限。",
            code="too_many_pixels",
        )
    return np.ascontiguousarray(image)


def _shrunk(image: np.ndarray) -> tuple[np.ndarray, float]:
    """The picture at most DETECT_MAX_SIDE on its longest side, and the factor applied."""
    longest = max(image.shape[:2])
    if longest <= DETECT_MAX_SIDE:
        return image, 1.0
    factor = DETECT_MAX_SIDE / longest
    size = (round(image.shape[1] * factor), round(image.shape[0] * factor))
    small = Image.fromarray(image).resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(small), factor


def face_find_one(
    image: np.ndarray,
    *,
    encode: bool = True,
    ghost_ok: bool = False,
    min_size: int | None = None,
) -> FaceFound:
    """The single face of at least ``min_size`` pixels (default ``KYC_FACE_MIN_SIZE_PX``).

    Raises FaceProblem ``no_face``, ``several_faces`` or ``face_too_small`` (words in English and
    Chinese), BadImage if ``image`` is not an 8-bit picture. ``ghost_ok`` ignores faces under
    60% of the largest one (the ghost portrait of an ID card or passport).
    """
    rgb = _rgb(image)
    smallest = min_size or min_size_px()
    engine = face_engine()
    work, factor = _shrunk(rgb)
    # Upsample 0 finds faces from ~50 px (boxes from 72 px) at a quarter of upsample 1's cost
    # (bench: 26-39 vs 110-168 ms per 640x480 frame), enough for the 80 px limit. Only when it
    # finds nothing big enough do we look again at upsample 1, to tell "too small" from "no
    # face" and to size small faces more finely than its coarse boxes.
    boxes = [box.scaled(1 / factor) for box in engine.detect(work, upsample=0)]
    if not any(box.width >= smallest for box in boxes):
        boxes = [box.scaled(1 / factor) for box in engine.detect(work, upsample=1)]
    if not boxes:
        raise FaceProblem(
            "No face was found in the picture.",
            detail_zh="图片中未检测到人脸。",
            code="no_face",
        )
    big = [box for box in boxes if box.width >= smallest]
    if not big:
        widest = max(box.width for box in boxes)
        raise FaceProblem(
            f"The face is too small ({widest} pixels wide, at least {smallest} needed): "
            "come closer to the camera or use a larger picture.",
            detail_zh=f"人脸太小（宽 {widest} 像素，至少需要 {smallest} 像素），"
            "请靠近摄像头或使用更大的图片。",
            code="face_too_small",
        )
    if ghost_ok:
        largest = max(box.width for box in big)
        big = [box for box in big if box.width >= GHOST_RATIO * largest]
    if len(big) > 1:
        raise FaceProblem(
            f"{len(big)} faces were found; only one person may be in the picture.",
            detail_zh=f"检测到 {len(big)} 张人脸，画面中只能有一个人。",
            code="several_faces",
        )
    landmarks, encoding = engine.describe(rgb, big[0], encode=encode)
    return FaceFound(box=big[0], landmarks=landmarks, encoding=encoding)


def face_encoding(image: np.ndarray, face: FaceFound) -> np.ndarray:
    """The encoding of a face found earlier without one (``face_find_one(..., encode=False)``),
    without detecting it again."""
    if face.encoding is not None:
        return face.encoding
    _, encoding = face_engine().describe(_rgb(image), face.box, encode=True)
    assert encoding is not None  # asked with encode=True
    return encoding


def _encoded(face: FaceFound) -> np.ndarray:
    """The encoding of a face found with one (``face_find_one``'s default)."""
    assert face.encoding is not None
    return face.encoding


def encoding_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))


def face_distance(a: np.ndarray, b: np.ndarray, *, card: bool = False) -> float:
    """Distance between the single faces of two pictures (FaceProblem/BadImage if either has
    none, several or too small a face). Lower is more alike; see ``match_threshold()``.
    ``card``: ``a`` is an ID card or its portrait, found as :func:`face_match` finds it."""
    if card:
        first = face_find_one(a, ghost_ok=True, min_size=card_min_size_px())
    else:
        first = face_find_one(a)
    second = face_find_one(b)
    return encoding_distance(_encoded(first), _encoded(second))


def _problem(exc: KycError) -> dict:
    return {"code": exc.code, "detail": exc.detail, "detail_zh": exc.detail_zh}


@dataclass
class FaceMatchResult:
    """The decision and its evidence. ``distances``, ``problems``, ``frame_boxes`` and ``frames``
    are per input frame, in order (``None`` where not applicable). ``reason_code`` is ``match``
    or why not: ``card_<face problem>``, ``too_few_frames``, ``distance_over_threshold``,
    ``frame_over_ceiling``."""

    decision: bool
    threshold: float
    ceiling: float
    distances: list[float | None]
    problems: list[dict | None]
    usable_frames: int
    median_distance: float | None
    max_distance: float | None
    reason_code: str
    reason: str
    reason_zh: str
    seconds: float
    engine: str
    card_box: FaceBox | None = None
    card_problem: dict | None = None
    frame_boxes: list[FaceBox | None] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list, repr=False, compare=False)

    def as_dict(self) -> dict:
        """JSON-ready evidence (everything but the pixels)."""
        return {
            "decision": self.decision,
            "threshold": self.threshold,
            "ceiling": self.ceiling,
            "distances": self.distances,
            "problems": self.problems,
            "usable_frames": self.usable_frames,
            "median_distance": self.median_distance,
            "max_distance": self.max_distance,
            "reason_code": self.reason_code,
            "reason": self.reason,
            "reason_zh": self.reason_zh,
            "seconds": self.seconds,
            "engine": self.engine,
            "card_box": self.card_box.as_list() if self.card_box else None,
            "card_problem": self.card_problem,
            "frame_boxes": [box.as_list() if box else None for box in self.frame_boxes],
        }


def face_match(
    *, card: np.ndarray, frames: list[np.ndarray], threshold: float | None = None
) -> FaceMatchResult:
    """Is the person in ``frames`` (sampled by the server from the live video, at random
    moments) the person on the ID card?

    ``card`` is the whole card, its portrait or the chip photo; its largest face is the portrait
    (a smaller ghost copy is ignored; the size limit is ``KYC_FACE_CARD_MIN_SIZE_PX``). A frame
    is usable when it holds exactly one face of sufficient size. The decision needs at least
    ``KYC_FACE_MIN_FRAMES`` usable frames, a median distance to the card at most ``threshold``
    (default ``KYC_FACE_MATCH_THRESHOLD``) and no usable frame beyond
    ``KYC_FACE_MATCH_CEILING``. The median forgives one blurred or turned frame; the ceiling
    stops a swap to another person in some of the frames.
    """
    started = time.perf_counter()
    limit = match_threshold() if threshold is None else float(threshold)
    ceiling = max(match_ceiling(), limit)
    # A decision rests on one usable frame at least, whatever the setting says.
    needed = max(1, int(getattr(settings, "KYC_FACE_MIN_FRAMES", DEFAULT_MIN_FRAMES)))
    engine = face_engine()

    def result(decision: bool, code: str, reason: str, reason_zh: str, **extra) -> FaceMatchResult:
        return FaceMatchResult(
            decision=decision,
            threshold=limit,
            ceiling=ceiling,
            reason_code=code,
            reason=reason,
            reason_zh=reason_zh,
            seconds=round(time.perf_counter() - started, 3),
            engine=engine.name,
            frames=list(frames),
            **extra,
        )

    empty = {
        "distances": [None] * len(frames),
        "problems": [None] * len(frames),
        "usable_frames": 0,
        "median_distance": None,
        "max_distance": None,
    }
    try:
        portrait = face_find_one(card, ghost_ok=True, min_size=card_min_size_px())
    except KycError as exc:
        return result(
            False,
            f"card_{exc.code}",
            f"The ID card photo cannot be used: {exc.detail}",
            f"证件照片无法使用：{exc.detail_zh}",
            card_problem=_problem(exc),
            **empty,
        )

    distances: list[float | None] = []
    problems: list[dict | None] = []
    boxes: list[FaceBox | None] = []
    for frame in frames:
        try:
            found = face_find_one(frame)
        except KycError as exc:
            distances.append(None)
            problems.append(_problem(exc))
            boxes.append(None)
            continue
        distances.append(round(encoding_distance(_encoded(portrait), _encoded(found)), 4))
        problems.append(None)
        boxes.append(found.box)

    usable = [d for d in distances if d is not None]
    median = round(statistics.median(usable), 4) if usable else None
    worst = max(usable) if usable else None
    evidence = {
        "distances": distances,
        "problems": problems,
        "usable_frames": len(usable),
        "median_distance": median,
        "max_distance": worst,
        "card_box": portrait.box,
        "frame_boxes": boxes,
    }
    if len(usable) < needed:
        codes = sorted({p["code"] for p in problems if p})
        return result(
            False,
            "too_few_frames",
            f"Only {len(usable)} of {len(frames)} video frames showed one clear face "
            f"({needed} needed; problems: {', '.join(codes) or 'none'}). Please face the camera "
            "alone, in good light.",
            f"{len(frames)} 帧视频中只有 {len(usable)} 帧清楚地显示一张人脸"
            f"（至少需要 {needed} 帧）。请独自正对摄像头，保持光线充足。",
            **evidence,
        )
    assert median is not None  # usable frames: at least one (needed)
    assert worst is not None
    if median > limit:
        return result(
            False,
            "distance_over_threshold",
            f"The face in the video does not match the ID card photo (median distance "
            f"{median:.2f}, limit {limit:.2f}).",
            f"视频中的人脸与证件照片不符（中位距离 {median:.2f}，上限 {limit:.2f}）。",
            **evidence,
        )
    if worst > ceiling:
        return result(
            False,
            "frame_over_ceiling",
            f"At least one video frame shows a face that does not match the ID card photo "
            f"(distance {worst:.2f}, above {ceiling:.2f}).",
            f"至少有一帧视频中的人脸与证件照片不符（距离 {worst:.2f}，超过 {ceiling:.2f}）。",
            **evidence,
        )
    return result(
        True,
        "match",
        f"The face in the video matches the ID card photo (median distance {median:.2f} over "
        f"{len(usable)} frames, limit {limit:.2f}).",
        f"视频中的人脸与证件照片相符（{len(usable)} 帧中位距离 {median:.2f}，上限 {limit:.2f}）。",
        **evidence,
    )
