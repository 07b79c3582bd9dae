"""Test media for the face checks, made from real photographs (see ``tests/media.py``).

No package ships a video of a head turning, an ID card with a real face on it, or a webcam
stream, so these helpers make them from still photos, and say what is synthetic:

- :func:`card_portrait` / :func:`id_card`: an ID-style portrait (tight head-and-shoulders crop,
  washed-out print colours, small, JPEG) and a card-like picture carrying it.
- :func:`live_frame`: a 640x480 frame as the server decodes it from the customer's video
  (the face 150-230 px wide, light and colour changes, resolution loss and block artefacts of a
  low-bitrate VP8 stream).
- :func:`liveness_clip_frames`: a clip neutral -> move 1 -> neutral -> move 2 ... The head moves
  are a 2-D approximation: a smooth warp swings the nose, mouth and chin sideways below the
  eye line (one half of the face stretched, the other compressed) for a turn, or squeezes the
  part between eyes and nose for looking up (stretches it for looking down), which is how a
  real move shows in the 5 facial landmarks the verifier reads. It is not a 3-D rendering: it
  tests the verifier's logic and its landmark reading, not how far real heads turn. The warp's
  size is measured per photo so the landmarks read it as 1.4x the verifier's threshold.
- :func:`still_clip_frames`: the same photo held still in front of the camera (hand tremor,
  sensor noise, JPEG), which the liveness check must refuse.

Every helper is deterministic for a given ``seed``.
"""

from __future__ import annotations

import hashlib
import io
import math
import threading

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from .errors import KycError
from .faces import FaceFound, face_find_one
from .liveness import PITCH, TURN, head_pose

WIDTH, HEIGHT = 640, 480

# The synthetic moves read as this many times the verifier's thresholds (and as the right move).
MOVE_MARGIN = 1.4
MOVES = {
    # (horizontal, vertical) direction of the nose in the picture. The camera image is not
    # mirrored: a person turning to their left shows the nose moving to the picture's right.
    "turn_left": (1.0, 0.0),
    "turn_right": (-1.0, 0.0),
    "look_up": (0.0, -1.0),
    "look_down": (0.0, 1.0),
}


def _face(photo: np.ndarray) -> FaceFound:
    return face_find_one(photo, encode=False, min_size=40, ghost_ok=True)


def _jpeg(frame: np.ndarray, quality: int) -> np.ndarray:
    out = io.BytesIO()
    Image.fromarray(frame).save(out, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(out.getvalue())).convert("RGB"))


def _noise(frame: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    noisy = frame.astype(np.float32) + rng.normal(0.0, sigma, frame.shape).astype(np.float32)
    return np.clip(noisy, 0, 255).astype(np.uint8)


class _Placement:
    """A similarity transform putting a photo's face at a chosen place and size in a frame."""

    def __init__(self, face: FaceFound, *, face_width: float, centre, angle_deg: float = 0.0):
        eyes = (face.eye_left + face.eye_right) / 2
        self.scale = face_width / face.box.width
        self.angle = math.radians(angle_deg)
        self.source = eyes
        self.target = np.asarray(centre, dtype=np.float64)

    def point(self, xy: np.ndarray) -> np.ndarray:
        c, s = math.cos(self.angle), math.sin(self.angle)
        d = (np.asarray(xy, dtype=np.float64) - self.source) * self.scale
        return np.array([c * d[0] - s * d[1], s * d[0] + c * d[1]]) + self.target

    def render(self, photo: np.ndarray, width: int, height: int, fill=(96, 96, 96)) -> np.ndarray:
        # PIL wants the inverse map: output pixel -> source pixel.
        c, s = math.cos(self.angle), math.sin(self.angle)
        k = 1.0 / self.scale
        a, b = c * k, s * k
        d, e = -s * k, c * k
        tx, ty = self.target
        sx, sy = self.source
        data = (a, b, sx - a * tx - b * ty, d, e, sy - d * tx - e * ty)
        image = Image.fromarray(photo).transform(
            (width, height), Image.Transform.AFFINE, data, Image.Resampling.BICUBIC, fillcolor=fill
        )
        return np.asarray(image)


def _smooth(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _turn_head(frame: np.ndarray, points, dx: float, dy: float) -> np.ndarray:
    """A 2-D stand-in for a head move (see the module docstring), by (dx, dy) inter-ocular
    distances of the nose relative to the eyes.

    Sideways: below the eye line the face is remapped horizontally, one half stretched and the
    other compressed, so the nose, mouth and chin swing across while the face's outline and the
    eyes stay. Up/down: between the eye line and the chin the face is remapped vertically, the
    part above the nose compressed and the part below stretched (or the reverse)."""
    if dx == 0 and dy == 0:
        return frame
    left, right, nose = points
    iod = float(np.linalg.norm(right - left))
    height, width = frame.shape[:2]
    xn, yn = float(nose[0]), float(nose[1])
    ye = float((left[1] + right[1]) / 2)
    half = iod  # half the face's width
    chin = ye + 1.9 * iod
    x0, x1 = max(int(xn - 1.3 * half), 0), min(int(xn + 1.3 * half) + 1, width)
    y0, y1 = max(int(ye - 0.2 * iod), 0), min(int(chin + 0.5 * iod) + 1, height)
    if x0 >= x1 or y0 >= y1:
        return frame
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    across = 1 - _smooth((np.abs(xx - xn) - half) / (0.3 * iod))  # 1 on the face, 0 beside it
    below_chin = 1 - _smooth((yy - chin) / (0.5 * iod))
    sx, sy = xx, yy
    if dx:
        centre = xn + dx * iod
        edge_l, edge_r = xn - half, xn + half
        inverse = np.where(
            xx < centre,
            edge_l + (xx - edge_l) * (xn - edge_l) / (centre - edge_l),
            xn + (xx - centre) * (edge_r - xn) / (edge_r - centre),
        )
        inverse = np.where((xx < edge_l) | (xx > edge_r), xx, inverse)
        weight = _smooth((yy - ye) / (yn - ye)) * below_chin * across
        sx = xx + weight * (inverse - xx)
    if dy:
        level = yn + dy * iod
        inverse = np.where(
            yy < level,
            ye + (yy - ye) * (yn - ye) / (level - ye),
            yn + (yy - level) * (chin - yn) / (chin - level),
        )
        inverse = np.where((yy < ye) | (yy > chin), yy, inverse)
        sy = yy + across * (inverse - yy)
    sx = np.clip(sx, 0, width - 1.001)
    sy = np.clip(sy, 0, height - 1.001)
    ix, iy = sx.astype(np.int32), sy.astype(np.int32)
    fx, fy = (sx - ix)[..., None], (sy - iy)[..., None]
    src = frame.astype(np.float32)
    patch = (
        src[iy, ix] * (1 - fx) * (1 - fy)
        + src[iy, ix + 1] * fx * (1 - fy)
        + src[iy + 1, ix] * (1 - fx) * fy
        + src[iy + 1, ix + 1] * fx * fy
    )
    out = frame.copy()
    out[y0:y1, x0:x1] = np.clip(patch + 0.5, 0, 255).astype(np.uint8)
    return out


def _move_amounts(base: np.ndarray, points, kinds) -> dict[str, float]:
    """Per move, the warp (in inter-ocular distances) that the landmark model reads as
    ``MOVE_MARGIN`` times the verifier's threshold. Faces differ in how the 5-point model follows
    the warp, so each is measured on the clean frame (bisection, a few landmark readings)."""
    rest_yaw, rest_pitch, _ = head_pose(_face(base))
    amounts = {}
    for kind in kinds:
        hx, hy = MOVES[kind]
        target = MOVE_MARGIN * (TURN if hx else PITCH)
        low, high = 0.02, 0.6
        for _ in range(7):
            middle = (low + high) / 2
            try:
                yaw, pitch, _ = head_pose(_face(_turn_head(base, points, hx * middle, hy * middle)))
            except KycError:
                high = middle
                continue
            moved = (yaw - rest_yaw) * hx + (pitch - rest_pitch) * hy
            low, high = (middle, high) if moved < target else (low, middle)
        amounts[kind] = high
    return amounts


def video_degrade(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What a low-bitrate VP8 stream does to a frame: resolution loss, noise, block artefacts."""
    height, width = frame.shape[:2]
    factor = rng.uniform(0.5, 0.8)
    small = Image.fromarray(frame).resize(
        (round(width * factor), round(height * factor)), Image.Resampling.BILINEAR
    )
    frame = np.asarray(small.resize((width, height), Image.Resampling.BILINEAR))
    frame = _noise(frame, rng, rng.uniform(2.0, 5.0))
    return _jpeg(frame, int(rng.integers(30, 60)))


def live_frame(
    photo: np.ndarray,
    *,
    seed: int = 0,
    face_width: float | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> np.ndarray:
    """A live-video-like frame of the person in ``photo``: face 150-230 px wide near the centre,
    a slight head tilt, different light and white balance, VP8-like degradation."""
    rng = np.random.default_rng(seed)
    face = _face(photo)
    size = face_width or rng.uniform(150, 230)
    centre = (width * rng.uniform(0.4, 0.6), height * rng.uniform(0.36, 0.46))
    frame = _Placement(face, face_width=size, centre=centre, angle_deg=rng.uniform(-6, 6)).render(
        photo, width, height
    )
    gain = rng.uniform(0.75, 1.15) * rng.uniform(0.92, 1.08, size=3)
    frame = np.clip(frame.astype(np.float32) * gain + rng.uniform(-12, 12), 0, 255)
    return video_degrade(frame.astype(np.uint8), rng)


def card_portrait(photo: np.ndarray, *, kind: str = "scan", seed: int = 0) -> np.ndarray:
    """An ID-card style portrait of the person in ``photo``.

    ``scan``: the portrait as it appears on a photographed or scanned card, ~240x296 px, washed
    out, slightly soft, JPEG. ``chip``: the photo a card reader returns from the chip of a
    Chinese resident ID card, 102x126 px, heavily compressed.
    """
    rng = np.random.default_rng(seed)
    face = _face(photo)
    out_w, out_h = (102, 126) if kind == "chip" else (240, 296)
    # Head and shoulders, face about 55% of the width, eyes a little above the middle. Rendered
    # 4x larger, then shrunk: a picture reduced for print, not a small crop blown up.
    big = 4
    placement = _Placement(
        face, face_width=0.55 * out_w * big, centre=(out_w * big / 2, out_h * big * 0.42)
    )
    light = tuple(int(v) for v in rng.integers(200, 235, size=3))
    rendered = placement.render(photo, out_w * big, out_h * big, fill=light)
    image = Image.fromarray(rendered).resize((out_w, out_h), Image.Resampling.LANCZOS)
    array = np.asarray(image).astype(np.float32)
    grey = array.mean(axis=2, keepdims=True)
    array = 0.65 * array + 0.35 * grey  # print colours: desaturated, lower contrast
    array = 0.8 * array + 0.2 * 215
    image = Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))
    if kind != "chip":
        image = image.filter(ImageFilter.GaussianBlur(0.6))
    return _jpeg(np.asarray(image), 35 if kind == "chip" else 60)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in (
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
        "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    ):
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            continue
    return ImageFont.load_default()


def id_card(portrait: np.ndarray | None, *, ghost: bool = True) -> np.ndarray:
    """A card-like picture (856x540, the ID-1 shape at 10 px/mm) with text fields, the portrait
    on the right and, with ``ghost``, a small faint copy of it as many cards print. Without a
    portrait it is a text-only card (no face)."""
    card = Image.new("RGB", (856, 540), (226, 232, 238))
    draw = ImageDraw.Draw(card)
    for y in range(0, 540, 12):  # guilloche-like background lines
        draw.line([(0, y), (856, y + 40)], fill=(214, 222, 230), width=2)
    font = _font(30)
    lines = [
        "姓名  张三",
        "性别  男    民族  汉",
        "出生  1990 年 1 月 1 日",
        "住址  北京市东城区某某路 1 号",
        "公民身份号码  110101199001011234",
    ]
    for i, line in enumerate(lines):
        draw.text((40, 50 + i * 90), line, fill=(30, 30, 30), font=font)
    if portrait is not None:
        photo = Image.fromarray(portrait).resize((260, 320), Image.Resampling.LANCZOS)
        card.paste(photo, (560, 60))
        if ghost:
            faint = Image.fromarray(portrait).convert("L").resize((78, 96))
            faint = Image.eval(faint, lambda v: 150 + v * 0.4).convert("RGB")
            card.paste(faint, (440, 400))
    return np.asarray(card)


def _pose_track(kinds: list[str], fps: int, seconds_per_step: float):
    """Per frame (move or None, share of the full move): neutral, then for each move a smooth
    ramp out, a hold and a ramp back, then neutral again."""
    step = max(int(round(seconds_per_step * fps)), 4)
    track: list[tuple[str | None, float]] = [(None, 0.0)] * step
    for kind in kinds:
        for i in range(step):
            phase = i / (step - 1)
            # 30% out, 40% hold, 30% back, with a smooth (cosine) ramp
            if phase < 0.3:
                share = 0.5 - 0.5 * math.cos(math.pi * phase / 0.3)
            elif phase <= 0.7:
                share = 1.0
            else:
                share = 0.5 + 0.5 * math.cos(math.pi * (phase - 0.7) / 0.3)
            track.append((kind, share))
        track.extend([(None, 0.0)] * step)
    return track


# Clips made so far in this process, by what they are made of: a clip takes a second or two
# (face landmarks, a warp, noise and JPEG per frame) and tests ask for the same few again and
# again. Callers get copies; the cache holds the most recent few.
_CLIPS: dict[tuple, list[np.ndarray]] = {}
_CLIPS_KEPT = 12
_clips_lock = threading.Lock()


def _clip(photo, track, *, width, height, seed) -> list[np.ndarray]:
    photo = np.ascontiguousarray(photo)
    key = (
        hashlib.blake2b(photo.data, digest_size=16).hexdigest(),
        photo.shape,
        tuple(track),
        width,
        height,
        seed,
    )
    with _clips_lock:
        frames = _CLIPS.get(key)
    if frames is None:
        frames = _clip_made(photo, track, width=width, height=height, seed=seed)
        with _clips_lock:
            _CLIPS[key] = frames
            while len(_CLIPS) > _CLIPS_KEPT:
                del _CLIPS[next(iter(_CLIPS))]
    return [frame.copy() for frame in frames]


def _clip_made(photo, track, *, width, height, seed) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    face = _face(photo)
    placement = _Placement(face, face_width=190.0, centre=(width / 2, height * 0.42))
    base = placement.render(photo, width, height)
    points = (
        placement.point(face.eye_left),
        placement.point(face.eye_right),
        placement.point(face.nose),
    )
    amounts = _move_amounts(base, points, {kind for kind, _ in track if kind})
    frames = []
    for kind, share in track:
        frame = base
        if kind:
            hx, hy = MOVES[kind]
            amount = amounts[kind] * share
            frame = _turn_head(base, points, hx * amount, hy * amount)
        # hand-held camera: a pixel or two of shake, sensor noise, compression
        shift = rng.integers(-2, 3, size=2)
        frame = np.roll(frame, tuple(int(v) for v in shift), axis=(0, 1))
        frames.append(_jpeg(_noise(frame, rng, 2.5), 80))
    return frames


def liveness_clip_frames(
    photo: np.ndarray,
    challenge_kinds: list[str],
    *,
    fps: int = 15,
    seconds_per_step: float = 2.0,
    width: int = WIDTH,
    height: int = HEIGHT,
    seed: int = 0,
) -> list[np.ndarray]:
    """Frames (RGB, ``width``x``height``) of the person in ``photo`` doing the challenge moves
    in order: neutral for ``seconds_per_step``, then per move ``seconds_per_step`` of motion
    (out, hold, back) followed by ``seconds_per_step`` of neutral. Synthetic head moves: see the
    module docstring. Played in a loop (Chromium's fake camera), the moves repeat in the same
    order; the verifier looks for them in order inside its window."""
    for kind in challenge_kinds:
        if kind not in MOVES:
            raise ValueError(f"unknown move {kind!r}; known: {sorted(MOVES)}")
    track = _pose_track(list(challenge_kinds), fps, seconds_per_step)
    return _clip(photo, track, width=width, height=height, seed=seed)


def still_clip_frames(
    photo: np.ndarray,
    *,
    fps: int = 15,
    seconds: float = 6.0,
    width: int = WIDTH,
    height: int = HEIGHT,
    seed: int = 0,
) -> list[np.ndarray]:
    """The photo held up to the camera for ``seconds``: no head movement, only camera-like
    jitter (shake of a pixel or two, noise, JPEG). The liveness check must fail it."""
    track = [(None, 0.0)] * max(int(round(seconds * fps)), 1)
    return _clip(photo, track, width=width, height=height, seed=seed)


def sampled(frames: list[np.ndarray], *, fps: int = 15, every: int = 4):
    """``(seconds, frame)`` pairs as the server samples a clip: every ``every``-th frame
    (15 fps / 4 = 3.75 samples per second)."""
    return [(i / fps, frame) for i, frame in enumerate(frames) if i % every == 0]
