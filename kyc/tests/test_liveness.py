"""Liveness: random head-move challenges verified on frames the server samples.

The head moves are SYNTHETIC: no package ships a video of a head turning, so
``kyc.testing.liveness_clip_frames`` warps a real photograph (the nose, mouth and chin swing
sideways below the eye line for a turn; the part between eyes and nose is squeezed or stretched
for looking up or down), a 2-D stand-in for a 3-D move that the 5-point landmark model reads as
one. The still-photo case is the same photograph with camera-like jitter (shake, noise, JPEG).
Frames are sampled as the server does, every 4th frame of a 15 fps clip (3.75 per second).
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image

from kyc import testing
from kyc.liveness import (
    KINDS,
    TURNS,
    Challenge,
    challenge_for,
    liveness_challenge_new,
    liveness_verify,
)
from tests.media import face_photos

MOVES = ["turn_left", "look_up"]


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    return {k: np.asarray(Image.open(p).convert("RGB")) for k, p in face_photos().items()}


@pytest.fixture(scope="module")
def clip(photos) -> list[np.ndarray]:
    """obama.jpg: neutral, turn left, neutral, look up, neutral (1 s each, 15 fps)."""
    return testing.liveness_clip_frames(photos["obama"], MOVES, seconds_per_step=1.0)


@pytest.fixture(scope="module")
def passed(clip):
    return liveness_verify(challenge=challenge_for(MOVES), frames=testing.sampled(clip))


def test_challenge_is_two_random_moves_with_a_turn_and_words_in_both_languages():
    seen = set()
    for seed in range(60):
        challenge = liveness_challenge_new(rng=random.Random(seed))
        kinds = challenge.kinds
        assert len(kinds) == 2
        assert kinds[0] != kinds[1]
        assert set(kinds) <= set(KINDS)
        assert set(kinds) & set(TURNS), "a flat photo tilted back fakes 'look up': need a turn"
        assert all(step.prompt_en and step.prompt_zh for step in challenge.steps)
        seen.add(tuple(kinds))
    assert len(seen) == 10  # every allowed sequence comes up
    again = liveness_challenge_new(rng=random.Random(3))
    assert again.kinds == liveness_challenge_new(rng=random.Random(3)).kinds
    assert Challenge.from_dict(again.as_dict()) == again
    assert liveness_challenge_new().id != liveness_challenge_new().id  # system randomness


def test_moves_in_order_pass(passed):
    assert passed.passed is True, passed.detail
    assert passed.reason_code == "passed"
    left, up = passed.steps
    assert left.kind == "turn_left"
    assert left.seen
    assert left.d_yaw >= 0.15
    assert up.kind == "look_up"
    assert up.seen
    assert up.d_pitch <= -0.12
    assert left.at < up.at
    assert passed.max_distance < 0.6  # the same person throughout
    assert "passed" in passed.detail
    assert "通过" in passed.detail_zh
    assert passed.as_dict()["frames"][0]["pose"] == "neutral"


def test_a_looping_clip_passes_from_any_point(clip):
    """Chromium's fake camera loops its file: the window may open mid-clip, replaying the last
    move before the first one. The moves still come in order inside the window."""
    start = len(clip) * 3 // 5  # inside "look up", before "turn left" of the next loop
    looped = clip[start:] + clip
    result = liveness_verify(challenge=challenge_for(MOVES), frames=testing.sampled(looped))
    assert result.passed is True, result.detail


def test_still_photo_fails(photos):
    still = testing.still_clip_frames(photos["obama"], seconds=3.0)
    result = liveness_verify(challenge=challenge_for(MOVES), frames=testing.sampled(still))
    assert result.passed is False
    assert result.reason_code == "no_movement"
    assert "photo" in result.detail
    assert "照片" in result.detail_zh
    assert max(abs(f.d_yaw) for f in result.frames) < 0.05  # jitter only


def test_wrong_direction_fails(clip):
    result = liveness_verify(
        challenge=challenge_for(["turn_right", "look_up"]), frames=testing.sampled(clip)
    )
    assert result.passed is False
    assert result.reason_code == "wrong_move"
    assert "turn your head to the left" in result.detail  # what was seen
    assert "向左转头" in result.detail_zh


def test_wrong_order_fails(clip):
    result = liveness_verify(
        challenge=challenge_for(["look_up", "turn_left"]), frames=testing.sampled(clip)
    )
    assert result.passed is False
    assert result.reason_code == "wrong_order"
    assert result.steps[0].seen is True
    assert result.steps[1].seen is False


def test_face_swap_mid_challenge_fails(photos, clip):
    """Someone else takes over after the first move."""
    other = testing.liveness_clip_frames(photos["biden"], MOVES, seconds_per_step=1.0)
    half = len(clip) // 2
    result = liveness_verify(
        challenge=challenge_for(MOVES), frames=testing.sampled(clip[:half] + other[half:])
    )
    assert result.passed is False
    assert result.reason_code == "face_changed"
    assert result.max_distance > 0.6
    assert "same person" in result.detail
    assert "同一人" in result.detail_zh


def test_frames_after_the_window_do_not_count(clip):
    challenge = challenge_for(MOVES, seconds=2.5)  # ends before "look up"
    result = liveness_verify(challenge=challenge, frames=testing.sampled(clip))
    assert result.passed is False
    assert result.reason_code == "move_not_seen"
    assert result.ignored_frames > 0
    assert result.steps[0].seen
    assert not result.steps[1].seen
    assert "look up" in result.detail
    assert "抬头" in result.detail_zh


def test_no_face_and_too_few_frames():
    plain = np.full((480, 640, 3), 90, dtype=np.uint8)
    result = liveness_verify(
        challenge=challenge_for(MOVES), frames=[(t / 4, plain) for t in range(8)]
    )
    assert result.passed is False
    assert result.reason_code == "no_face"
    assert all(f.problem == "no_face" for f in result.frames)
    assert "未检测到人脸" in result.detail_zh

    result = liveness_verify(challenge=challenge_for(MOVES), frames=[(0.0, plain)])
    assert result.reason_code == "too_few_frames"


def test_two_people_in_front_of_the_camera_fail(photos):
    halves = [
        testing.live_frame(photos[name], seed=2, face_width=140, width=320)
        for name in ("obama", "biden")
    ]
    two = np.concatenate(halves, axis=1)
    result = liveness_verify(challenge=challenge_for(MOVES), frames=[(t, two) for t in range(6)])
    assert result.passed is False
    assert result.reason_code == "several_faces"
