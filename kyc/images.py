"""Pictures from outside (uploads, frames, card-reader photos): checked before anything reads them.

Limits: 10 MB of file, 20 megapixels, JPEG/PNG/WebP/BMP only (decided by content, not by name or
declared type). The pixel count is read from the file's header (Pillow opens lazily) before a
single pixel is decoded. Pillow's own decompression-bomb guard is set to the same limit on purpose
and is a second line behind ours: its error (and its warning, made an error in ``KycConfig``) is
answered like our own limit, in words, never as a crash.
"""

from __future__ import annotations

import io
import re

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import BadImage

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 20_000_000
ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP", "BMP"}

# Pillow warns past this many pixels and refuses past twice as many; by default that is ~89 MP,
# far above what this product decodes. Deliberately the same as our limit.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
BOMB = (Image.DecompressionBombError, Image.DecompressionBombWarning)


def _too_many_pixels(pixels: int | None) -> BadImage:
    if pixels is None:
        en, zh = "more than 20", "超过 2000 万"
    else:
        en, zh = f"{pixels / 1e6:.0f}", f"{pixels / 1e4:.0f} 万"
    return BadImage(
        f"The picture has {en} megapixels; the limit is 20. Take the photo again at a lower "
        "resolution.",
        detail_zh=f"图片为 {zh} 像素，超过 2000 万像素上限，请降低分辨率后重新拍摄。",
        code="too_many_pixels",
    )


def _pixels_in(exc: Exception) -> int | None:
    """Pillow says "Image size (900000000 pixels) exceeds limit of …"."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    return int(found.group(1)) if found else None


def image_load(data: bytes, *, max_side: int | None = None) -> Image.Image:
    """An RGB image from uploaded bytes, EXIF orientation applied; BadImage (in words) if not.

    ``max_side``: the caller shrinks the picture to this anyway, so a JPEG is decoded at the
    smallest scale (1/2, 1/4, 1/8) that still covers it — a 20 MP photo costs a quarter of the
    memory."""
    if not data:
        raise BadImage("The file is empty.", detail_zh="文件为空。", code="empty")
    if len(data) > MAX_BYTES:
        raise BadImage(
            f"The file is {len(data) / 1e6:.1f} MB; the limit is 10 MB.",
            detail_zh=f"文件大小 {len(data) / 1e6:.1f} MB，超过 10 MB 上限。",
            code="too_large",
        )
    try:
        with Image.open(io.BytesIO(data)) as probe:  # reads the header only
            fmt = probe.format
            width, height = probe.size
    except BOMB as exc:  # Pillow's own guard fired on the header's size
        raise _too_many_pixels(_pixels_in(exc)) from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise BadImage(
            "This file is not a picture (JPEG, PNG or WebP).",
            detail_zh="文件不是图片（请使用 JPEG、PNG 或 WebP）。",
            code="not_image",
        ) from exc
    if fmt not in ALLOWED_FORMATS:
        raise BadImage(
            f"{fmt} pictures are not accepted; use JPEG, PNG or WebP.",
            detail_zh=f"不支持 {fmt} 格式，请使用 JPEG、PNG 或 WebP。",
            code="bad_format",
        )
    if width * height > MAX_PIXELS:
        raise _too_many_pixels(width * height)
    try:
        with Image.open(io.BytesIO(data)) as img:
            if max_side and fmt == "JPEG" and max(width, height) > max_side:
                scale = max_side / max(width, height)
                img.draft("RGB", (max(1, int(width * scale)), max(1, int(height * scale))))
            img.load()
            upright = ImageOps.exif_transpose(img)
            return upright.convert("RGB")
    except BOMB as exc:
        raise _too_many_pixels(_pixels_in(exc)) from exc
    except (OSError, ValueError) as exc:
        raise BadImage(
            "The picture is damaged and cannot be read.",
            detail_zh="图片已损坏，无法读取。",
            code="damaged",
        ) from exc


def image_array(image: Image.Image) -> np.ndarray:
    """H×W×3 uint8 RGB, as face_recognition and the OCR engine take it."""
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def image_jpeg(image: Image.Image, *, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()
