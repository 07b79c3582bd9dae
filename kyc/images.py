"""Pictures from outside (uploads, frames, card-reader photos): checked before anything reads them.

Limits: 10 MB of file, 20 megapixels, JPEG/PNG/WebP/BMP only (decided by content, not by name or
declared type). Pillow's own decompression-bomb guard is a second line behind the pixel limit.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import BadImage

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 20_000_000
ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP", "BMP"}


def image_load(data: bytes) -> Image.Image:
    """An RGB image from uploaded bytes, EXIF orientation applied; BadImage (in words) if not."""
    if not data:
        raise BadImage("The file is empty.", detail_zh="文件为空。", code="empty")
    if len(data) > MAX_BYTES:
        raise BadImage(
            f"The file is {len(data) / 1e6:.1f} MB; the limit is 10 MB.",
            detail_zh=f"文件大小 {len(data) / 1e6:.1f} MB，超过 10 MB 上限。",
            code="too_large",
        )
    try:
        with Image.open(io.BytesIO(data)) as probe:
            fmt = probe.format
            width, height = probe.size
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
        raise BadImage(
            f"The picture has {width * height / 1e6:.0f} megapixels; the limit is 20.",
            detail_zh=f"图片为 {width * height / 1e6:.0f} 百万像素，超过 2000 万像素上限。",
            code="too_many_pixels",
        )
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            return img.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
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
