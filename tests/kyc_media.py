"""Fake-camera media for the identity check: a synthetic ID card held up to the camera, then
the same person's face — as one looping y4m for Chromium's fake camera.

The card is generated (kyc/idcard/generator.py) for a random valid person with a real face
photo (face_recognition's ``obama.jpg``) in its photo area. Each phase has a coloured backdrop so
a test can tell from the teller's side which phase the customer's camera shows right now:
the front on green, the back on blue, then the face photo.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tests.media import HEIGHT, WIDTH, _fit, _yuv420, face_photo

FRONT_BACKDROP = (0, 150, 40)
BACK_BACKDROP = (20, 40, 170)
PHASES = ("front", "back", "face")

# The colour of the top-left corner of the customer's video as the teller sees it.
CORNER_RGB = """() => {
  const video = document.querySelector('[data-testid="remote-video"]');
  if (!video || !video.videoWidth) return null;
  const canvas = document.createElement("canvas");
  canvas.width = 8; canvas.height = 8;
  const g = canvas.getContext("2d");
  g.drawImage(video, 0, 0, video.videoWidth / 20, video.videoHeight / 20, 0, 0, 8, 8);
  const d = g.getImageData(0, 0, 8, 8).data;
  let r = 0, gr = 0, b = 0;
  for (let i = 0; i < d.length; i += 4) { r += d[i]; gr += d[i + 1]; b += d[i + 2]; }
  const n = d.length / 4;
  return [r / n, gr / n, b / n];
}"""
# Same rule as tests.kyc_media.phase_of, in the page.
PHASE_IS = f"""(want) => {{
  const rgb = ({CORNER_RGB})();
  if (!rgb) return false;
  const [r, g, b] = rgb;
  const phase = g > 100 && g > r + 50 && g > b + 50 ? "front"
    : b > 110 && b > r + 50 && b > g + 50 ? "back" : "face";
  return phase === want;
}}"""


@dataclass
class KycClip:
    path: Path
    person: object  # kyc.idcard.generator.Person
    seconds_per_phase: float
    fps: int


def phase_of(rgb: tuple[float, float, float]) -> str:
    """Which phase a corner colour of the (VP8-compressed) video belongs to."""
    r, g, b = rgb
    if g > 100 and g > r + 50 and g > b + 50:
        return "front"
    if b > 110 and b > r + 50 and b > g + 50:
        return "back"
    return "face"


def _close_up(photo: Image.Image) -> Image.Image:
    """The person close to the camera (face about 45 % of the frame's width), as at a video
    call: even if the browser sends the video at half resolution the face stays large."""
    from kyc.faces import face_find_one

    box = face_find_one(np.asarray(photo)).box
    width = box.width / 0.45
    height = width * HEIGHT / WIDTH
    cx, cy = (box.left + box.right) / 2, (box.top + box.bottom) / 2
    left, top = max(0, cx - width / 2), max(0, cy - height * 0.45)
    crop = photo.crop((int(left), int(top), int(left + width), int(top + height)))
    return _fit(crop)


def kyc_clip(path: Path, *, seed: int = 7, seconds_per_phase: float = 8.0, fps: int = 5) -> KycClip:
    """Write the clip (front, back, face; ``seconds_per_phase`` each) and return its person."""
    from kyc.idcard.generator import card_back, card_front, card_in_frame, person_random

    rng = random.Random(seed)
    person = person_random(rng)
    photo = Image.open(face_photo()).convert("RGB")
    front = card_in_frame(
        card_front(person, portrait=photo, rng=random.Random(seed)),
        background=FRONT_BACKDROP,
        scale=0.95,
    )
    back = card_in_frame(
        card_back(person, rng=random.Random(seed)), background=BACK_BACKDROP, scale=0.95
    )
    face = _close_up(photo)
    per_phase = max(1, round(seconds_per_phase * fps))
    header = f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{fps}:1 Ip A1:1 C420jpeg\n".encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        out.write(header)
        for image in (front, back, face):
            frame = _yuv420(np.asarray(image.convert("RGB").resize((WIDTH, HEIGHT))))
            for _ in range(per_phase):
                out.write(b"FRAME\n")
                out.write(frame)
    return KycClip(path=path, person=person, seconds_per_phase=seconds_per_phase, fps=fps)
