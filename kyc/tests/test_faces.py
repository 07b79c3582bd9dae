"""Face match of the in-call identity check, on real photographs (tests/media.py).

The card portraits and live frames are made from those photos by ``kyc.testing`` (ID-style
print/chip degradation; 640x480 frames with VP8-like degradation). Same-person cases use
*different* photos of one person for the card and the video, as in real life.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from kyc import testing
from kyc.errors import BadImage, FaceProblem
from kyc.faces import (
    DEFAULT_MATCH_THRESHOLD,
    FaceMatchResult,
    face_distance,
    face_find_one,
    face_match,
)
from tests.media import astronaut_photo, face_photos


def _load(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    out = {name: _load(path) for name, path in face_photos().items()}
    out["astronaut"] = _load(astronaut_photo())
    return out


@pytest.fixture(scope="module")
def obama_card(photos) -> np.ndarray:
    """A whole card-like picture: text fields, the portrait, and a small ghost copy of it."""
    return testing.id_card(testing.card_portrait(photos["obama"], seed=1))


@pytest.fixture(scope="module")
def obama_frames(photos) -> list[np.ndarray]:
    """Live-like frames from two other photos of the same person."""
    return [
        testing.live_frame(photos["obama2"], seed=1),
        testing.live_frame(photos["obama3"], seed=2),
        testing.live_frame(photos["obama2"], seed=3),
    ]


@pytest.fixture(scope="module")
def matched(obama_card, obama_frames) -> FaceMatchResult:
    return face_match(card=obama_card, frames=obama_frames)


def _two_people(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A 640x480 frame with two people side by side, faces ~140 px wide."""
    halves = [testing.live_frame(x, seed=9, face_width=140, width=320) for x in (a, b)]
    return np.concatenate(halves, axis=1)


def test_same_person_card_against_live_frames_matches(matched, obama_frames):
    assert matched.decision is True
    assert matched.reason_code == "match"
    assert matched.usable_frames == 3
    assert all(d is not None and d <= matched.threshold for d in matched.distances)
    assert matched.problems == [None, None, None]
    assert matched.threshold == DEFAULT_MATCH_THRESHOLD
    # evidence: the frames given, the boxes found, words for the teller in both languages
    assert matched.frames == obama_frames
    assert all(box is not None and box.width >= 80 for box in matched.frame_boxes)
    assert "matches" in matched.reason
    assert "相符" in matched.reason_zh
    evidence = matched.as_dict()
    assert evidence["decision"] is True
    assert len(evidence["frame_boxes"]) == 3


def test_card_ghost_portrait_is_not_a_second_face(photos):
    """Many cards print a small second copy of the portrait; it must not count as a person."""
    portrait = Image.fromarray(testing.card_portrait(photos["obama"], seed=1))
    card = Image.new("RGB", (856, 540), (226, 232, 238))
    card.paste(portrait.resize((260, 320)), (560, 60))
    card.paste(portrait.resize((130, 160)).convert("L").convert("RGB"), (380, 340))
    pixels = np.asarray(card)

    found = face_find_one(pixels, ghost_ok=True, min_size=48)
    assert found.box.left > 560  # the main portrait, on the right
    with pytest.raises(FaceProblem) as excinfo:
        face_find_one(pixels, min_size=48)
    assert excinfo.value.code == "several_faces"


def test_different_person_does_not_match(photos, obama_frames):
    card = testing.card_portrait(photos["biden"], seed=4)
    result = face_match(card=card, frames=obama_frames)
    assert result.decision is False
    assert result.reason_code == "distance_over_threshold"
    assert min(result.distances) > result.threshold
    assert "does not match" in result.reason
    assert "不符" in result.reason_zh


def test_chip_sized_portrait_matches(photos, obama_frames):
    """The 102x126 photo a card reader returns: small, but the right person still matches."""
    chip = testing.card_portrait(photos["obama"], kind="chip", seed=5)
    assert chip.shape[:2] == (126, 102)
    result = face_match(card=chip, frames=obama_frames)
    assert result.decision is True, result.reason


def test_one_frame_of_somebody_else_fails_despite_a_good_median(photos, obama_card, obama_frames):
    swapped = [*obama_frames, testing.live_frame(photos["astronaut"], seed=6)]
    result = face_match(card=obama_card, frames=swapped)
    assert result.median_distance <= result.threshold
    assert result.decision is False
    assert result.reason_code == "frame_over_ceiling"
    assert result.distances[-1] > result.ceiling


def test_fewer_than_three_usable_frames_is_no_decision(photos, obama_card, obama_frames):
    plain = np.full((480, 640, 3), 128, dtype=np.uint8)
    two = _two_people(photos["obama2"], photos["biden"])
    result = face_match(card=obama_card, frames=[obama_frames[0], plain, obama_frames[1], two])
    assert result.decision is False
    assert result.reason_code == "too_few_frames"
    assert result.usable_frames == 2
    assert result.distances[1] is None
    assert result.distances[3] is None
    assert [p and p["code"] for p in result.problems] == [None, "no_face", None, "several_faces"]
    assert all(p is None or p["detail_zh"] for p in result.problems)
    assert "2 of 4" in result.reason


def test_no_usable_frame_is_no_decision_even_when_the_setting_asks_for_none(settings, obama_card):
    """KYC_FACE_MIN_FRAMES=0 (a slip in the configuration) must not let a match without a single
    face through, nor crash the analysis: the teller gets the usual words."""
    settings.KYC_FACE_MIN_FRAMES = 0
    plain = np.full((480, 640, 3), 128, dtype=np.uint8)
    result = face_match(card=obama_card, frames=[plain, plain])
    assert result.decision is False
    assert result.reason_code == "too_few_frames"
    assert result.usable_frames == 0
    assert "Only 0 of 2 video frames" in result.reason
    assert "至少需要 1 帧" in result.reason_zh


def test_text_only_card_has_no_face(obama_frames):
    result = face_match(card=testing.id_card(None), frames=obama_frames)
    assert result.decision is False
    assert result.reason_code == "card_no_face"
    assert result.card_problem["code"] == "no_face"
    assert "证件照片" in result.reason_zh


def test_bad_input_gives_a_reason_not_a_crash(photos):
    with pytest.raises(FaceProblem) as excinfo:
        face_find_one(np.full((480, 640, 3), 200, dtype=np.uint8))
    assert excinfo.value.code == "no_face"
    assert excinfo.value.detail_zh == "图片中未检测到人脸。"

    with pytest.raises(FaceProblem) as excinfo:
        face_find_one(_two_people(photos["obama2"], photos["biden"]))
    assert excinfo.value.code == "several_faces"
    assert "2 faces" in excinfo.value.detail

    far_away = testing.live_frame(photos["obama"], seed=7, face_width=50)
    with pytest.raises(FaceProblem) as excinfo:
        face_find_one(far_away)
    assert excinfo.value.code == "face_too_small"
    assert "come closer" in excinfo.value.detail
    assert "请靠近摄像头" in excinfo.value.detail_zh

    for not_a_picture in (np.zeros((480, 640, 3), dtype=np.float32), np.zeros((4, 4, 3), "u1")):
        with pytest.raises(BadImage):
            face_find_one(not_a_picture)


def test_large_photo_is_shrunk_for_detection_but_measured_in_its_own_pixels(photos):
    photo = photos["obama"]  # 910x1137
    big = np.asarray(Image.fromarray(photo).resize((photo.shape[1] * 2, photo.shape[0] * 2)))
    small_face, big_face = face_find_one(photo), face_find_one(big)
    assert big_face.box.width == pytest.approx(2 * small_face.box.width, rel=0.15)
    assert big_face.box.left == pytest.approx(2 * small_face.box.left, abs=30)
    assert np.linalg.norm(big_face.encoding - small_face.encoding) < 0.15


def test_threshold_comes_from_settings(settings, obama_card, obama_frames, matched):
    strict = min(d for d in matched.distances) - 0.01
    settings.KYC_FACE_MATCH_THRESHOLD = strict
    result = face_match(card=obama_card, frames=obama_frames)
    assert result.threshold == strict
    assert result.decision is False
    assert result.reason_code == "distance_over_threshold"


def test_face_distance_of_two_photos(photos):
    assert face_distance(photos["obama"], photos["obama2"]) < DEFAULT_MATCH_THRESHOLD
    assert face_distance(photos["obama"], photos["biden"]) > DEFAULT_MATCH_THRESHOLD
