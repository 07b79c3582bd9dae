"""Liveness: the customer makes head moves the server chose at random, seen on frames the
server sampled from the live video.

Why head moves: a move of the head shows as parallax between the nose and the eyes, which a flat
picture held to the camera cannot produce. The pose comes from the 5 facial landmarks of the
face engine:

- ``yaw``: the nose base's offset from the midpoint of the eyes along the eye line, divided by
  the distance between the eyes. 0 for a frontal face; positive when the nose is towards the
  picture's right, which in the (unmirrored) camera image is the person turning to *their* left.
- ``pitch``: the nose base's distance below the eye line over the same distance. About 0.6-0.95
  depending on the face; it falls when the person looks up and rises when they look down.

Both are measured against the person's own resting pose (the medians over the challenge), so
faces, cameras a little off-axis and small constant tilts do not matter. Tilting a flat photo
backwards shortens the nose-to-eyes drop just like looking up, so every challenge contains at
least one turn (left or right), which a flat photo cannot fake.

The verifier wants, in order within the challenge window: a neutral pose, the first move, back
to neutral, the second move. Frames before the sequence starts may hold anything the customer
was asked for (a looping test video replays them); a clear move that was not asked for fails
(``wrong_move``), as does the same person not staying in front of the camera throughout
(``face_changed``: encodings are compared with the first neutral frame's, within the face
match threshold for frames in the resting pose and within its ceiling for turned ones).
Unasked moves count up to the frame that completes the sequence: a customer who looks down
after finishing still passes. The teller watches the same video; this check does not replace
that.

A spoken code would need speech recognition to verify offline, so challenges are head moves
only.
"""

from __future__ import annotations

import math
import secrets
import statistics
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from django.conf import settings

from .errors import KycError
from .faces import (
    FaceFound,
    encoding_distance,
    face_encoding,
    face_engine,
    face_find_one,
    match_ceiling,
    match_threshold,
)

KINDS = ("turn_left", "turn_right", "look_up", "look_down")
TURNS = ("turn_left", "turn_right")
PROMPTS = {
    "turn_left": (
        "Turn your head slightly to your left, then face the camera again.",
        "请把头稍微转向左边，然后重新正对摄像头。",
    ),
    "turn_right": (
        "Turn your head slightly to your right, then face the camera again.",
        "请把头稍微转向右边，然后重新正对摄像头。",
    ),
    "look_up": (
        "Tilt your head slightly up, then face the camera again.",
        "请稍微抬头，然后重新正对摄像头。",
    ),
    "look_down": (
        "Tilt your head slightly down, then face the camera again.",
        "请稍微低头，然后重新正对摄像头。",
    ),
}
WORDS = {
    "turn_left": ("turn your head to the left", "向左转头"),
    "turn_right": ("turn your head to the right", "向右转头"),
    "look_up": ("look up", "抬头"),
    "look_down": ("look down", "低头"),
}
START_PROMPT = ("Look straight at the camera.", "请正对摄像头。")

# Pose thresholds, in inter-ocular distances, relative to the resting pose. In real photos the
# nose base sits 0.39 off-centre on a face turned ~35 degrees and 0.12 on one turned ~10-15;
# 0.15 is a deliberate "slight" turn of ~15 degrees. A still face on camera-like frames (shake,
# noise, JPEG) moves its landmarks by under 0.03.
TURN = 0.15
PITCH = 0.12
NEUTRAL_TURN = 0.08
NEUTRAL_PITCH = 0.08
# A move that was not asked for counts only when this clearly made (natural head moves couple
# a little pitch into a turn).
UNASKED_FACTOR = 1.25
# Below half the thresholds everywhere, the head did not move at all: a still picture.
STILL_FACTOR = 0.5
MIN_FACE_FRAMES = 4
# Encodings cost ~100 ms per frame: the identity check encodes the neutral frames that anchor
# the sequence, each move's frame, and evenly spread others up to this many.
MAX_ENCODED = 12
DEFAULT_WINDOW_SECONDS = 15.0


@dataclass(frozen=True)
class ChallengeStep:
    kind: str
    prompt_en: str
    prompt_zh: str


@dataclass(frozen=True)
class Challenge:
    """What the customer is asked to do. ``seconds``: the window after the challenge starts in
    which frames count (later ones are ignored)."""

    id: str
    steps: tuple[ChallengeStep, ...]
    seconds: float = DEFAULT_WINDOW_SECONDS
    prompt_en: str = START_PROMPT[0]
    prompt_zh: str = START_PROMPT[1]

    @property
    def kinds(self) -> list[str]:
        return [step.kind for step in self.steps]

    def as_dict(self) -> dict:
        return asdict(self) | {"steps": [asdict(step) for step in self.steps]}

    @classmethod
    def from_dict(cls, data: dict) -> Challenge:
        kinds = [step["kind"] for step in data["steps"]]
        return challenge_for(kinds, id=data["id"], seconds=float(data["seconds"]))


def challenge_for(kinds: list[str], *, id: str | None = None, seconds: float | None = None):
    """A challenge with the given moves (tests, and rebuilding a stored challenge)."""
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"unknown move {kind!r}; known: {', '.join(KINDS)}")
    window = seconds or float(getattr(settings, "KYC_LIVENESS_SECONDS", DEFAULT_WINDOW_SECONDS))
    return Challenge(
        id=id or uuid.uuid4().hex,
        steps=tuple(ChallengeStep(kind, *PROMPTS[kind]) for kind in kinds),
        seconds=window,
    )


def liveness_challenge_new(*, rng=None) -> Challenge:
    """Two different moves in random order, at least one of them a turn (see the module
    docstring); ten possible sequences. ``rng``: a ``random.Random`` (default: the system's
    secure source, as the challenge must not be guessable)."""
    rng = rng or secrets.SystemRandom()
    pairs = [(a, b) for a in KINDS for b in KINDS if a != b and (a in TURNS or b in TURNS)]
    return challenge_for(list(rng.choice(pairs)))


@dataclass
class FrameReading:
    """One sampled frame: ``problem`` (face problem code) or its pose relative to the resting
    pose; ``pose`` is the move it shows (``neutral``, a move kind, or ``between``);
    ``distance`` to the neutral reference where it was encoded."""

    t: float
    problem: str | None = None
    yaw: float | None = None
    pitch: float | None = None
    roll: float | None = None
    d_yaw: float | None = None
    d_pitch: float | None = None
    pose: str | None = None
    distance: float | None = None


@dataclass
class StepResult:
    """``at``: when the move was first seen; ``d_yaw``/``d_pitch``: its fullest extent."""

    kind: str
    seen: bool = False
    at: float | None = None
    d_yaw: float | None = None
    d_pitch: float | None = None


@dataclass
class LivenessResult:
    passed: bool
    reason_code: str
    detail: str
    detail_zh: str
    steps: list[StepResult]
    frames: list[FrameReading]
    baseline: dict | None = None
    max_distance: float | None = None
    seconds: float = 0.0
    ignored_frames: int = 0
    engine: str = ""
    challenge: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """JSON-ready evidence."""
        return asdict(self)


def head_pose(face: FaceFound) -> tuple[float, float, float]:
    """(yaw, pitch, roll in degrees) from the 5 landmarks; see the module docstring."""
    left, right, nose = face.eye_left, face.eye_right, face.nose
    eye_line = right - left
    iod = float(np.linalg.norm(eye_line))
    along = eye_line / iod
    down = np.array([-along[1], along[0]])
    offset = nose - (left + right) / 2
    roll = math.degrees(math.atan2(eye_line[1], eye_line[0]))
    return float(offset @ along / iod), float(offset @ down / iod), roll


def _classify(d_yaw: float, d_pitch: float, factor: float = 1.0) -> str:
    if abs(d_yaw) <= NEUTRAL_TURN and abs(d_pitch) <= NEUTRAL_PITCH:
        return "neutral"
    turn, tilt = abs(d_yaw) / (TURN * factor), abs(d_pitch) / (PITCH * factor)
    if max(turn, tilt) < 1.0:
        return "between"
    if turn >= tilt:
        return "turn_left" if d_yaw > 0 else "turn_right"
    return "look_down" if d_pitch > 0 else "look_up"


def _fail(code: str, detail: str, detail_zh: str, **kw: Any) -> LivenessResult:
    return LivenessResult(False, code, detail, detail_zh, **kw)


def _pose(reading: FrameReading) -> tuple[float, float]:
    """(yaw, pitch) of a frame with a face (read with the face)."""
    assert reading.yaw is not None
    assert reading.pitch is not None
    return reading.yaw, reading.pitch


def _move(reading: FrameReading) -> tuple[float, float]:
    """(d_yaw, d_pitch) of a frame with a face, from the resting pose (once it is known)."""
    assert reading.d_yaw is not None
    assert reading.d_pitch is not None
    return reading.d_yaw, reading.d_pitch


def liveness_verify(
    *, challenge: Challenge, frames: list[tuple[float, np.ndarray]]
) -> LivenessResult:
    """Did a live person do ``challenge``'s moves? ``frames``: (seconds since the challenge
    started, RGB frame) sampled by the server, ~3-5 per second, during the challenge.

    ``reason_code``: ``passed``, or ``too_few_frames``, ``no_face``, ``face_too_small``,
    ``several_faces``, ``face_changed``, ``no_movement``, ``wrong_move``, ``wrong_order``,
    ``move_not_seen``; ``detail``/``detail_zh`` say it in words.
    """
    started = time.perf_counter()
    # Same person: frames in the resting pose within the card-match threshold of the reference
    # (frames of one session are easier to match than card against video); frames in a move
    # within the ceiling, as a turned head costs distance (a still face: 0.07-0.11).
    same_neutral, same_moved = match_threshold(), max(match_ceiling(), match_threshold())
    steps = [StepResult(kind) for kind in challenge.kinds]
    ordered = sorted(frames, key=lambda pair: pair[0])
    inside = [(t, frame) for t, frame in ordered if 0.0 <= t <= challenge.seconds]
    readings: list[FrameReading] = []
    found: list[FaceFound | None] = []
    for t, frame in inside:
        reading = FrameReading(t=round(float(t), 3))
        try:
            face: FaceFound | None = face_find_one(frame, encode=False)
        except KycError as exc:
            reading.problem = exc.code
            face = None
        if face is not None:
            reading.yaw, reading.pitch, reading.roll = (round(v, 4) for v in head_pose(face))
        readings.append(reading)
        found.append(face)

    def finish(result: LivenessResult) -> LivenessResult:
        result.seconds = round(time.perf_counter() - started, 3)
        result.ignored_frames = len(frames) - len(inside)
        result.engine = face_engine().name
        result.challenge = challenge.as_dict()
        return result

    common: dict[str, Any] = {"steps": steps, "frames": readings}
    faces = {i: face for i, face in enumerate(found) if face is not None}
    good = list(faces)
    several = sum(r.problem == "several_faces" for r in readings)
    if len(inside) < MIN_FACE_FRAMES:
        return finish(
            _fail(
                "too_few_frames",
                f"Only {len(inside)} video frames arrived during the check; please try again.",
                f"检查期间只收到 {len(inside)} 帧视频，请重试。",
                **common,
            )
        )
    # One frame with a second face is tolerated: HOG now and then takes a badge or a poster
    # for a face. Two or more mean somebody else is there.
    if several > 1:
        return finish(
            _fail(
                "several_faces",
                "More than one face was in front of the camera; only the customer may be in "
                "the picture during the check.",
                "检查期间镜头前出现了多张人脸，画面中只能有客户本人。",
                **common,
            )
        )
    if len(good) < MIN_FACE_FRAMES:
        small = sum(r.problem == "face_too_small" for r in readings)
        no_face = sum(r.problem == "no_face" for r in readings)
        if small > no_face:
            return finish(
                _fail(
                    "face_too_small",
                    "The face was too small in the video: please come closer to the camera.",
                    "视频中的人脸太小，请靠近摄像头。",
                    **common,
                )
            )
        return finish(
            _fail(
                "no_face",
                "No face was seen in the video during the check: please face the camera.",
                "检查期间视频中未检测到人脸，请正对摄像头。",
                **common,
            )
        )

    # The resting pose: the median yaw over all frames with a face, and the median pitch of
    # those that are not turned; moves are a minority of the frames of a challenge.
    base_yaw = statistics.median(_pose(readings[i])[0] for i in good)
    level = [i for i in good if abs(_pose(readings[i])[0] - base_yaw) <= NEUTRAL_TURN] or good
    base_pitch = statistics.median(_pose(readings[i])[1] for i in level)
    for i in good:
        r = readings[i]
        yaw, pitch = _pose(r)
        r.d_yaw = round(yaw - base_yaw, 4)
        r.d_pitch = round(pitch - base_pitch, 4)
        r.pose = _classify(r.d_yaw, r.d_pitch)
    common["baseline"] = {"yaw": round(base_yaw, 4), "pitch": round(base_pitch, 4)}

    # The sequence, in order: neutral, move 1, neutral, move 2, ...
    anchors: list[int] = []
    position, need_neutral = 0, True
    for i in good:
        pose = readings[i].pose
        if position and need_neutral and pose == steps[position - 1].kind:
            # still in the move just seen: keep its fullest extent as the step's measurement
            step = steps[position - 1]
            d_yaw, d_pitch = _move(readings[i])
            assert step.d_yaw is not None  # set when the move was seen
            assert step.d_pitch is not None
            if abs(d_yaw) + abs(d_pitch) > abs(step.d_yaw) + abs(step.d_pitch):
                step.d_yaw, step.d_pitch = d_yaw, d_pitch
            continue
        if position == len(steps):
            break
        if need_neutral:
            if pose == "neutral":
                need_neutral = False
                anchors.append(i)
            continue
        if pose == steps[position].kind:
            step = steps[position]
            step.seen, step.at = True, readings[i].t
            step.d_yaw, step.d_pitch = readings[i].d_yaw, readings[i].d_pitch
            anchors.append(i)
            position += 1
            need_neutral = True

    # Same person throughout: encodings of the anchors and of frames spread over the window,
    # against the first neutral frame (the reference).
    reference = anchors[0] if anchors else good[0]
    budget = max(MAX_ENCODED - len(anchors), 2)
    spread = {good[round(k * (len(good) - 1) / (budget - 1))] for k in range(budget)}
    chosen = sorted(set(anchors) | spread | {reference})
    ref_encoding = face_encoding(inside[reference][1], faces[reference])
    changed: list[tuple[float, float]] = []
    distances: list[float] = []
    for i in chosen:
        distance = encoding_distance(ref_encoding, face_encoding(inside[i][1], faces[i]))
        readings[i].distance = round(distance, 4)
        distances.append(round(distance, 4))
        limit = same_neutral if readings[i].pose == "neutral" else same_moved
        if distance > limit:
            changed.append((distance, limit))
    common["max_distance"] = max(distances)
    if changed:
        distance, limit = max(changed)
        return finish(
            _fail(
                "face_changed",
                "The face in front of the camera changed during the check (distance "
                f"{distance:.2f}, limit {limit:.2f}); the same person must do every step.",
                f"检查过程中镜头前的人脸发生了变化（距离 {distance:.2f}，上限 {limit:.2f}），"
                "每一步都必须由同一人完成。",
                **common,
            )
        )

    d_yaws = [abs(_move(readings[i])[0]) for i in good]
    d_pitches = [abs(_move(readings[i])[1]) for i in good]
    if max(d_yaws) < STILL_FACTOR * TURN and max(d_pitches) < STILL_FACTOR * PITCH:
        return finish(
            _fail(
                "no_movement",
                "The head did not move: a live person must make the moves asked for "
                "(a photo or a still picture does not pass).",
                "头部没有移动：必须由真人按提示完成动作（照片或静止画面无法通过）。",
                **common,
            )
        )
    # Moves not asked for, up to the frame that completed the sequence (all frames when it was
    # not completed): turning the wrong way fails, looking away after finishing does not.
    asked = set(challenge.kinds)
    last = anchors[-1] if position == len(steps) else good[-1]
    unasked = sorted(
        {
            moved
            for i in good
            if i <= last
            and (moved := _classify(*_move(readings[i]), UNASKED_FACTOR)) in KINDS
            and moved not in asked
        }
    )
    if unasked:
        wanted = " then ".join(WORDS[k][0] for k in challenge.kinds)
        wanted_zh = "，然后".join(WORDS[k][1] for k in challenge.kinds)
        seen = " and ".join(WORDS[k][0] for k in unasked)
        seen_zh = "和".join(WORDS[k][1] for k in unasked)
        return finish(
            _fail(
                "wrong_move",
                f"You were asked to {wanted}, but we saw you {seen}.",
                f"提示的动作是{wanted_zh}，但检测到您{seen_zh}。",
                **common,
            )
        )
    if position < len(steps):
        seen_kinds = {readings[i].pose for i in good}
        if asked <= seen_kinds:
            wanted = " then ".join(WORDS[k][0] for k in challenge.kinds)
            wanted_zh = "，然后".join(WORDS[k][1] for k in challenge.kinds)
            return finish(
                _fail(
                    "wrong_order",
                    f"The moves were not made in the order asked: {wanted}.",
                    f"动作顺序不对，应为：{wanted_zh}。",
                    **common,
                )
            )
        missing = steps[position].kind
        return finish(
            _fail(
                "move_not_seen",
                f"We did not see you {WORDS[missing][0]} clearly (step {position + 1}); "
                "please move a little further and come back to face the camera.",
                f"未清楚检测到您{WORDS[missing][1]}（第 {position + 1} 步），"
                "请把动作做得更明显一些，然后重新正对摄像头。",
                **common,
            )
        )
    return finish(
        LivenessResult(
            True,
            "passed",
            "The live check passed: every move was made in order by the same person.",
            "活体检测通过：同一人按顺序完成了全部动作。",
            **common,
        )
    )
