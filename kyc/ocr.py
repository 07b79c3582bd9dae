"""Reading resident ID cards: one OCR engine interface, the card layout, and the reasons a picture
cannot be read.

The engine (``settings.KYC_OCR_BACKEND``, a dotted path; default the rapidocr backend) only turns
pixels into text lines with boxes. Everything the card means is here: rows are rebuilt from the
boxes (straightened first, so a tilted card in a video frame still reads row by row), fields are
found by their printed labels, traditional characters the model sometimes emits are mapped back,
and the validation rules of ``kyc.idcard.validation`` are applied.

A picture that gives no reading raises ``BadImage`` with a code the customer can act on:
``upside_down``, ``sideways``, ``blurred``, ``wrong_side`` or ``no_card``. A picture that gives a
partial reading returns it, with ``problems`` saying what is missing.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import statistics
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from django.conf import settings
from django.utils.module_loading import import_string
from PIL import Image

from .errors import BadImage
from .idcard.numbers import (
    id_number_checksum_ok,
    id_number_clean,
    id_number_mask,
)
from .idcard.validation import (
    ETHNIC_GROUPS,
    NEEDS_REVIEW,
    Check,
    birth_parse,
    id_card_back_checks,
    id_card_front_checks,
)
from .idcard.validation import (
    VALIDITY_RE as VALIDITY_FORM,
)
from .normalise import name_normalise, text_normalise

log = logging.getLogger(__name__)

DEFAULT_BACKEND = "kyc.backends.ocr_rapid.RapidOcrEngine"
FRONT_FIELDS = ("name", "sex", "ethnicity", "birth", "address", "id_number")
BACK_FIELDS = ("authority", "validity")
# Below this a field is read but worth a second look even if it has a checksum.
LOW_CONFIDENCE = 0.80
BLANK_CONTRAST = 20
# Sharpness (see image_sharpness) under which a picture that does not read is called blurred.
# Measured on generated cards in 640×480 frames: sharp 0.64-0.83 (with or without VP8), Gaussian
# blur radius 1: 0.21-0.41, radius 2: 0.12-0.16, radius 3: 0.08-0.11; reading fails from about
# radius 2.5. A photo of a face without a card: 0.21. Only a picture that gives no reading is
# judged, so a sharp threshold well above the failures costs nothing.
BLUR_THRESHOLD = 0.20
# A card held up in a 640×480 video frame has text lines 15-30 px high; the recogniser reads
# lines at 48 px. Below TEXT_SMALL_PX, or when the first reading is incomplete, the text area is
# cut out, enlarged to TEXT_TARGET_PX (at least 1.5×) and read again (bench/kyc.py: a card at
# half the frame width, and 1 in 40 full-size cards, lost single characters such as 男/女).
TEXT_SMALL_PX = 22
TEXT_TARGET_PX = 40
ENLARGED_MAX_SIDE = 2000  # rapidocr shrinks anything larger
READ_MAX_SIDE = 1280  # first reading of a phone photo


@dataclass(frozen=True)
class TextLine:
    """One line of text an engine found: its words, the recogniser's confidence (0-1) and its
    four corners (x, y) clockwise from the top left of the text as read."""

    text: str
    score: float
    box: tuple[tuple[float, float], ...]


class OcrEngine(Protocol):
    name: str

    def read(self, image: np.ndarray) -> list[TextLine]:
        """Text lines of an H×W×3 RGB uint8 image."""
        ...


# --- engine -------------------------------------------------------------------------------------

_engines: dict[str, OcrEngine] = {}
_engines_lock = threading.Lock()


def ocr_engine() -> OcrEngine:
    """The configured engine, created once per process (models take a second to load and are
    safe to share between threads: ONNX Runtime sessions are)."""
    path = getattr(settings, "KYC_OCR_BACKEND", "") or DEFAULT_BACKEND
    engine = _engines.get(path)
    if engine is None:
        with _engines_lock:
            engine = _engines.get(path)
            if engine is None:
                engine = import_string(path)()
                _engines[path] = engine
    return engine


# --- geometry -----------------------------------------------------------------------------------


@dataclass
class _Line:
    text: str  # normalised
    score: float
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def h(self) -> float:
        return max(1.0, self.y1 - self.y0)

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2


@dataclass
class _Row:
    lines: list[_Line] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(line.text for line in self.lines)

    @property
    def cy(self) -> float:
        return statistics.fmean(line.cy for line in self.lines)

    @property
    def h(self) -> float:
        return statistics.median(line.h for line in self.lines)

    @property
    def x0(self) -> float:
        return self.lines[0].x0

    @property
    def score(self) -> float:
        return min(line.score for line in self.lines)


def _text_angle(lines: Iterable[TextLine]) -> float:
    """Median slope of the longer text lines, in radians: how far the card is tilted."""
    angles = []
    for line in lines:
        (x0, y0), (x1, y1) = line.box[0], line.box[1]
        height = math.dist(line.box[0], line.box[3]) if len(line.box) >= 4 else 0
        if math.hypot(x1 - x0, y1 - y0) > 2 * height:
            angles.append(math.atan2(y1 - y0, x1 - x0))
    return statistics.median(angles) if angles else 0.0


def _rows(lines: list[TextLine]) -> list[_Row]:
    """Lines straightened by the card's tilt and grouped into rows, top to bottom; within a row,
    left to right, cut at the first wide gap (the photo area right of the text is not a field)."""
    angle = _text_angle(lines)
    cos, sin = math.cos(-angle), math.sin(-angle)
    flat = []
    for read in lines:
        text = text_normalise(read.text)
        if not text:
            continue
        pts = [(x * cos - y * sin, x * sin + y * cos) for x, y in read.box]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        flat.append(_Line(text, read.score, min(xs), min(ys), max(xs), max(ys)))
    if not flat:
        return []
    typical = statistics.median(line.h for line in flat)
    # Boxes much taller than a text line are pictures read as letters (the photo, the emblem).
    flat = [line for line in flat if line.h < 2.5 * typical]
    rows: list[_Row] = []
    for line in sorted(flat, key=lambda item: item.cy):
        row = next(
            (r for r in rows if abs(r.cy - line.cy) < 0.5 * min(r.h, line.h)),
            None,
        )
        if row is None:
            rows.append(_Row([line]))
        else:
            row.lines.append(line)
    for row in rows:
        row.lines.sort(key=lambda item: item.x0)
        kept = [row.lines[0]]
        for line in row.lines[1:]:
            if line.x0 - kept[-1].x1 > 5 * row.h:
                break
            kept.append(line)
        row.lines = kept
    rows.sort(key=lambda r: r.cy)
    return rows


# --- picture quality ----------------------------------------------------------------------------


def image_sharpness(image: np.ndarray) -> float:
    """How crisp the strongest edges are: the 99.5th percentile of the gradient over the contrast
    of the picture, at a fixed size. A sharp printed card gives 0.25-0.6, a card out of focus or
    moving well under 0.1. Unlike the variance of the Laplacian it is not fooled by sensor noise,
    which is strong everywhere but never as strong as a real edge."""
    gray = Image.fromarray(image).convert("L")
    scale = 640 / max(gray.size)
    if scale < 1:
        gray = gray.resize(
            (round(gray.width * scale), round(gray.height * scale)), Image.Resampling.BILINEAR
        )
    g = np.asarray(gray, dtype=np.float32)
    gx = np.abs(g[:, 1:] - g[:, :-1])
    gy = np.abs(g[1:, :] - g[:-1, :])
    grad = np.concatenate([gx.ravel(), gy.ravel()])
    contrast = float(np.percentile(g, 99) - np.percentile(g, 1))
    if contrast < BLANK_CONTRAST:
        return 0.0
    return float(np.percentile(grad, 99.5)) / contrast


def image_contrast(image: np.ndarray) -> float:
    """Grey-level spread (1st to 99th percentile): under ``BLANK_CONTRAST`` there is nothing to
    see at all (lens covered, a blank wall)."""
    g = np.asarray(Image.fromarray(image).convert("L"), dtype=np.float32)
    return float(np.percentile(g, 99) - np.percentile(g, 1))


# --- reading ------------------------------------------------------------------------------------

_LABELS_FRONT = {
    "姓名": "name",
    "性别": "sex",
    "民族": "ethnicity",
    "出生": "birth",
    "住址": "address",
    "公民身份号码": "id_number",
}
_BACK_WORDS = ("居民身份证", "签发机关", "有效期限", "中华人民共和国")
_ID_RE = re.compile(r"\d{17}[\dX]")
_BIRTH_RE = re.compile(r"(\d{4})年?(\d{1,2})月(\d{1,2})日?")
_VALIDITY_RE = re.compile(
    r"(\d{4})\D?(\d{2})\D?(\d{2})\D{0,3}?(?:(\d{4})\D?(\d{2})\D?(\d{2})|(长期|长|期))"
)


def _problem(code: str, detail: str, detail_zh: str, **extra) -> dict:
    return {"code": code, "detail": detail, "detail_zh": detail_zh, **extra}


def _strip_label(text: str, label: str) -> str | None:
    """The text after ``label`` at the start of a row, or None if the row does not start with it.
    One misread character in a two-character label is forgiven (娃名 for 姓名)."""
    if text.startswith(label):
        return text[len(label) :]
    if len(label) == 2 and len(text) >= 2 and (text[0] == label[0] or text[1] == label[1]):
        return text[2:]
    return None


@dataclass
class _Reading:
    values: dict[str, str] = field(default_factory=dict)
    confidence: dict[str, float] = field(default_factory=dict)
    anchors: int = 0  # labels and numbers found: how sure we are this is the side we want

    def put(self, name: str, value: str, score: float) -> None:
        if value and not self.values.get(name):
            self.values[name] = value
            self.confidence[name] = round(score, 3)


def _find_id_number(rows: list[_Row]) -> tuple[int, str, float] | None:
    """(row index, number, confidence), preferring a number whose check character is right."""
    found = []
    for i, row in enumerate(rows):
        compact = id_number_clean(row.text.replace("公民身份号码", ""))
        for match in _ID_RE.finditer(compact):
            found.append((i, match.group(), row.score))
    if not found:
        return None
    return next((f for f in found if id_number_checksum_ok(f[1])), found[-1])


def _ethnicity(raw: str) -> str:
    """The group among the 56 that the text names; the text itself if none."""
    raw = raw.removesuffix("族")
    if raw in ETHNIC_GROUPS:
        return raw
    for group in sorted(ETHNIC_GROUPS, key=len, reverse=True):
        if raw.startswith(group):
            return group
    return raw


def _parse_front(rows: list[_Row]) -> tuple[_Reading, bool]:
    """The front's fields, and whether its layout is upside down: an upside-down card read line
    by line (engines turn single lines round) still has the number, its bottom line, on top."""
    reading = _Reading()
    labelled: dict[str, int] = {}
    for i, row in enumerate(rows):
        for label, name in _LABELS_FRONT.items():
            if name not in labelled and row.text.startswith(label):
                labelled[name] = i
    # Forgive a misread label only in the label column, found from the labels read right.
    column = statistics.median(rows[i].x0 for i in labelled.values()) if labelled else None
    if column is not None:
        for i, row in enumerate(rows):
            if i in labelled.values() or abs(row.x0 - column) > row.h:
                continue
            for label, name in _LABELS_FRONT.items():
                if name not in labelled and len(label) == 2 and _strip_label(row.text, label):
                    labelled[name] = i
                    break
    reading.anchors = len(labelled)

    id_found = _find_id_number(rows)
    id_row = None
    if id_found is not None:
        id_row, number, score = id_found
        reading.put("id_number", number, score)
        reading.anchors += 1

    if "name" in labelled:
        row = rows[labelled["name"]]
        value = _strip_label(row.text, "姓名") or ""
        reading.put(
            "name", name_normalise(re.sub(r"[^\u4e00-\u9fff·.•・\-]", "", value)), row.score
        )

    sex_row = rows[labelled["sex"]] if "sex" in labelled else None
    eth_row = rows[labelled["ethnicity"]] if "ethnicity" in labelled else sex_row
    if sex_row is not None:
        match = re.search(r"性?别?([男女])", sex_row.text)
        if match:
            reading.put("sex", match.group(1), sex_row.score)
    if eth_row is not None:
        match = re.search(r"民?族([\u4e00-\u9fff]+)", eth_row.text)
        if match:
            reading.put("ethnicity", _ethnicity(match.group(1)), eth_row.score)

    birth_rows = [labelled["birth"]] if "birth" in labelled else range(len(rows))
    for i in birth_rows:
        match = _BIRTH_RE.search(rows[i].text)
        if match:
            y, m, d = match.groups()
            reading.put("birth", f"{y}{int(m):02d}{int(d):02d}", rows[i].score)
            break

    if "address" in labelled:
        start = labelled["address"]
        end = id_row if id_row is not None and id_row > start else labelled.get("id_number")
        end = end if end is not None and end > start else len(rows)
        first = rows[start]
        parts = [_strip_label(first.text, "住址") or ""]
        score = first.score
        for row in rows[start + 1 : end]:
            # Continuation lines start under the address value: right of the label column, far
            # left of the photo (text read into a face is not part of the address).
            if not first.h * 0.8 < row.x0 - first.x0 < first.h * 6 or row.text.startswith("公民"):
                break
            parts.append(row.text)
            score = min(score, row.score)
        reading.put("address", "".join(parts), score)
    above = [i for name, i in labelled.items() if name != "id_number"]
    inverted = id_row is not None and len(rows) >= 3 and id_row < min(above, default=1)
    return reading, inverted


def _parse_back(rows: list[_Row]) -> tuple[_Reading, bool]:
    """The back's fields, and whether its layout is upside down (labels above the title)."""
    reading = _Reading()
    texts = [row.text for row in rows]
    reading.anchors = sum(any(word in t for t in texts) for word in _BACK_WORDS)
    for row in rows:
        value = _strip_label(row.text, "签发机关")
        if value is None and "公安" in row.text and "有效" not in row.text:
            value = row.text
        if value:
            value = re.sub(r"[^\u4e00-\u9fff]", "", value.removeprefix("签发机关"))
            reading.put("authority", value, row.score)
    for row in rows:
        text = row.text.removeprefix("有效期限")
        match = _VALIDITY_RE.search(text)
        if match:
            y, m, d, y2, m2, d2, forever = match.groups()
            end = "长期" if forever else f"{y2}.{m2}.{d2}"
            reading.put("validity", f"{y}.{m}.{d}-{end}", row.score)
            break
    title = next((i for i, t in enumerate(texts) if "居民" in t or "共和国" in t), None)
    label = next((i for i, t in enumerate(texts) if "有效期" in t or "签发" in t), None)
    inverted = title is not None and label is not None and label < title
    return reading, inverted


def _read(image: np.ndarray) -> tuple[list[TextLine], list[_Row]]:
    lines = ocr_engine().read(image)
    return lines, _rows(lines)


def _text_height(lines: list[TextLine]) -> float:
    return statistics.median(math.dist(line.box[0], line.box[-1]) for line in lines)


def _text_region_enlarged(
    image: np.ndarray, lines: list[TextLine], scale: float, *, at_least: float = 1.0
) -> np.ndarray | None:
    """The part of ``image`` holding the text (``lines`` were found at ``scale`` of it), with a
    margin, enlarged so that a line is about ``TEXT_TARGET_PX`` high (at least ``at_least``
    times); None if it would hardly grow."""
    height = _text_height(lines) / scale
    factor = max(min(TEXT_TARGET_PX / height, 3.0), at_least)
    if factor < 1.25:
        return None
    xs = [x / scale for line in lines for x, _ in line.box]
    ys = [y / scale for line in lines for _, y in line.box]
    margin = 2 * height
    x0, x1 = max(0, int(min(xs) - margin)), min(image.shape[1], int(max(xs) + margin))
    y0, y1 = max(0, int(min(ys) - margin)), min(image.shape[0], int(max(ys) + margin))
    factor = min(factor, ENLARGED_MAX_SIDE / max(x1 - x0, y1 - y0))
    region = Image.fromarray(image[y0:y1, x0:x1])
    size = (round(region.width * factor), round(region.height * factor))
    return np.asarray(region.resize(size, Image.Resampling.BICUBIC))


def _completeness(reading: _Reading, names: tuple[str, ...]) -> int:
    """Fields read, plus one for a number whose check character is right or a validity period in
    the right form: how to tell the better of two readings of one picture."""
    score = sum(bool(reading.values.get(name)) for name in names)
    number = reading.values.get("id_number", "")
    score += bool(number) and id_number_checksum_ok(number)
    score += bool(VALIDITY_FORM.match(reading.values.get("validity", "")))
    return score


def _read_card(array: np.ndarray, side: str) -> tuple[list[_Row], _Reading, bool]:
    """Rows, reading and whether the layout is upside down; a second, enlarged reading of the text
    area when the card is small in the picture (a card held up in a 640×480 video frame) and
    either very small or the first reading incomplete."""
    parse = _parse_front if side == "front" else _parse_back
    names = FRONT_FIELDS if side == "front" else BACK_FIELDS
    # A phone photo is read at most READ_MAX_SIDE wide first (detection time grows with the
    # area); if its card turns out small, the enlarged second reading comes from full resolution.
    scale = min(1.0, READ_MAX_SIDE / max(array.shape[:2]))
    first = array
    if scale < 1:
        size = (round(array.shape[1] * scale), round(array.shape[0] * scale))
        first = np.asarray(Image.fromarray(array).resize(size, Image.Resampling.BILINEAR))
    lines, rows = _read(first)
    if _sideways_text(lines):
        raise _sideways()
    reading, inverted = parse(rows)
    if inverted or reading.anchors < 1 or not lines:
        return rows, reading, inverted
    complete = _completeness(reading, names) == len(names) + 1
    if _text_height(lines) < TEXT_SMALL_PX or not complete:
        # The detector misses a lone character (男, 女, 汉) now and then at any size; seen
        # larger it finds it.
        region = _text_region_enlarged(array, lines, scale, at_least=1.0 if complete else 1.5)
        if region is not None:
            _, rows2 = _read(region)
            reading2, inverted2 = parse(rows2)
            if not inverted2 and _completeness(reading2, names) >= _completeness(reading, names):
                return rows2, reading2, False
    return rows, reading, inverted


def _upside_down() -> BadImage:
    return BadImage(
        "The card is upside down: turn it round.",
        detail_zh="证件上下颠倒，请调转方向。",
        code="upside_down",
    )


def _sideways() -> BadImage:
    return BadImage(
        "The card is on its side: hold it level, text horizontal.",
        detail_zh="证件方向不正，请横向放正，使文字保持水平。",
        code="sideways",
    )


def _sideways_text(lines: list[TextLine]) -> bool:
    """Most lines of several characters standing upright: the card is turned by about 90°."""
    long = [line for line in lines if len(line.text.strip()) >= 3 and len(line.box) >= 4]
    upright = sum(
        math.dist(line.box[0], line.box[3]) > 1.5 * math.dist(line.box[0], line.box[1])
        for line in long
    )
    return len(long) >= 2 and upright > len(long) / 2


def _raise_unreadable(image: np.ndarray, rows: list[_Row], *, want: str) -> None:
    """Called when the wanted side's labels are not there: say why, as precisely as we can."""
    if image_contrast(image) < BLANK_CONTRAST:
        raise BadImage(
            "The picture is blank: nothing to read.",
            detail_zh="图片一片空白，没有可识别的内容。",
            code="no_card",
        )
    texts = " ".join(row.text for row in rows)
    front_words = sum(label in texts for label in _LABELS_FRONT) + bool(_find_id_number(rows))
    back_words = sum(word in texts for word in _BACK_WORDS)
    if want == "front" and back_words >= 2 and front_words == 0:
        raise BadImage(
            "This is the back of the card (national emblem side); show the side with the photo.",
            detail_zh="这是身份证国徽面，请出示有照片的一面。",
            code="wrong_side",
        )
    if want == "back" and front_words >= 2 and back_words == 0:
        raise BadImage(
            "This is the photo side of the card; show the side with the national emblem.",
            detail_zh="这是身份证人像面，请出示国徽面。",
            code="wrong_side",
        )
    sharpness = image_sharpness(image)
    if sharpness < BLUR_THRESHOLD:
        raise BadImage(
            "The picture is too blurred to read: hold the card still, close to the camera, "
            "and let it focus.",
            detail_zh="图片太模糊，无法识别：请将证件拿稳、靠近镜头，等待对焦。",
            code="blurred",
        )
    # Engines that do not turn lines themselves read an upside-down card as noise.
    _, turned_rows = _read(np.ascontiguousarray(np.rot90(image, k=2)))
    if _looks_like(turned_rows, want):
        raise _upside_down()
    if not rows:
        raise BadImage(
            "No text found: this does not look like an identity card.",
            detail_zh="未识别到文字：这不像是身份证。",
            code="no_card",
        )
    raise BadImage(
        "This does not look like a resident identity card.",
        detail_zh="这不像是居民身份证。",
        code="no_card",
    )


def _looks_like(rows: list[_Row], side: str) -> bool:
    reading, inverted = _parse_front(rows) if side == "front" else _parse_back(rows)
    return reading.anchors >= 2 and not inverted


def _result(
    side: str,
    names: tuple[str, ...],
    reading: _Reading,
    checks: list[Check],
    seconds: float,
    image: np.ndarray,
) -> dict:
    fields = {name: reading.values.get(name, "") for name in names}
    confidence = {name: reading.confidence.get(name, 0.0) for name in names}
    failed_rules = {c.rule for c in checks if not c.passed}
    problems = []
    for name in names:
        if not fields[name]:
            problems.append(
                _problem(
                    "field_missing",
                    f"The {FIELD_WORDS[name][0]} could not be read.",
                    f"未能识别{FIELD_WORDS[name][1]}。",
                    field=name,
                )
            )
        elif confidence[name] < LOW_CONFIDENCE:
            problems.append(
                _problem(
                    "low_confidence",
                    f"The {FIELD_WORDS[name][0]} was read with low confidence.",
                    f"{FIELD_WORDS[name][1]}识别置信度较低。",
                    field=name,
                )
            )
    if problems or failed_rules:
        sharpness = image_sharpness(image)
        if sharpness < BLUR_THRESHOLD:
            problems.append(
                _problem(
                    "blurred",
                    "The picture is blurred; a sharper one may read better.",
                    "图片较模糊，换一张清晰的图片可能识别更准确。",
                )
            )
    needs_review = {
        name: name in NEEDS_REVIEW
        or not fields[name]
        or confidence[name] < LOW_CONFIDENCE
        or any(rule in failed_rules for rule in _RULES_OF.get(name, ()))
        for name in names
    }
    return {
        "side": side,
        "fields": fields,
        "confidence": confidence,
        "needs_review": needs_review,
        "checks": [c.as_dict() for c in checks],
        "problems": problems,
        "ok": not problems and not failed_rules,
        "seconds": round(seconds, 3),
        "engine": getattr(ocr_engine(), "name", ""),
    }


FIELD_WORDS = {
    "name": ("name", "姓名"),
    "sex": ("sex", "性别"),
    "ethnicity": ("ethnicity", "民族"),
    "birth": ("birth date", "出生日期"),
    "address": ("address", "住址"),
    "id_number": ("ID number", "公民身份号码"),
    "authority": ("issuing authority", "签发机关"),
    "validity": ("validity period", "有效期限"),
}
_RULES_OF = {
    "id_number": ("id_number_format", "id_number_checksum", "id_number_region"),
    "birth": ("birth_date_matches", "id_number_birth_date"),
    "sex": ("sex_matches",),
    "ethnicity": ("ethnicity_known",),
    "validity": (
        "validity_format",
        "validity_started",
        "validity_not_expired",
        "validity_period_length",
    ),
    "authority": ("authority_format",),
}


def id_card_read_front(image: Image.Image, *, today: dt.date | None = None) -> dict:
    """Fields of the photo side, their checks, confidences and problems (see module doc).

    Raises ``BadImage`` (codes ``upside_down``, ``sideways``, ``blurred``, ``wrong_side``,
    ``no_card``) when the picture gives no reading of a card front."""
    started = time.perf_counter()
    array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    rows, reading, inverted = _read_card(array, "front")
    if inverted:
        raise _upside_down()
    if reading.anchors < 2:
        _raise_unreadable(array, rows, want="front")
    checks = id_card_front_checks(
        {name: reading.values.get(name, "") for name in FRONT_FIELDS}, today=today
    )
    result = _result("front", FRONT_FIELDS, reading, checks, time.perf_counter() - started, array)
    log.info(
        "id card front read: number %s, ok=%s, %.2f s",
        id_number_mask(result["fields"]["id_number"]),
        result["ok"],
        result["seconds"],
    )
    return result


def id_card_read_back(
    image: Image.Image,
    *,
    birth: dt.date | str | None = None,
    today: dt.date | None = None,
) -> dict:
    """Issuing authority and validity period of the emblem side, with their checks.

    ``birth`` (a date or YYYYMMDD, from the front) lets the validity length be checked against
    the holder's age at issue. Raises ``BadImage`` like ``id_card_read_front``."""
    started = time.perf_counter()
    array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    rows, reading, inverted = _read_card(array, "back")
    if inverted:
        raise _upside_down()
    if reading.anchors < 2:
        _raise_unreadable(array, rows, want="back")
    if isinstance(birth, str):
        birth = birth_parse(birth)
    checks = id_card_back_checks(
        {name: reading.values.get(name, "") for name in BACK_FIELDS}, birth=birth, today=today
    )
    return _result("back", BACK_FIELDS, reading, checks, time.perf_counter() - started, array)
