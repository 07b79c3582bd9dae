"""Reading ID cards: the real engine on generated cards (full-size and in 640×480 video frames),
pictures that cannot be read, the card layout logic on scripted engine output, and the backends.

OCR takes 0.5-1 s per picture, so the real-engine readings are made once per module."""

from __future__ import annotations

import datetime as dt
import math
import random
import sys
import types

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured
from PIL import Image

from kyc.errors import BadImage
from kyc.idcard import generator, regions
from kyc.idcard.generator import (
    card_back,
    card_flat,
    card_front,
    card_in_frame,
    person_random,
)
from kyc.idcard.numbers import id_number_make
from kyc.normalise import name_normalise, text_normalise, traditional_to_simplified
from kyc.ocr import TextLine, id_card_read_back, id_card_read_front, ocr_engine
from tests.media import face_photo

TODAY = dt.date(2026, 6, 1)
SCRIPTED = "kyc.tests.test_ocr.ScriptedEngine"
PADDLE = "kyc.backends.ocr_paddle.PaddleOcrEngine"


def assert_reason(exc: BadImage, code: str) -> None:
    assert exc.code == code
    assert exc.detail
    assert exc.detail_zh
    assert exc.detail != exc.detail_zh


# --- the real engine on generated cards ---------------------------------------------------------


@pytest.fixture(scope="module")
def readings():
    """Six people, both sides read once: three full-size renders and three cards held up in a
    VP8-compressed 640×480 frame, tilted; two carry a real face photo; the last card expired."""
    rng = random.Random(20260601)
    portrait = Image.open(face_photo())
    out = []
    for i in range(6):
        person = person_random(rng, today=TODAY, expired=i == 5)
        front = card_front(person, portrait=portrait if i in (1, 2) else None, rng=rng)
        back = card_back(person, rng=rng)
        if i % 2 == 0:
            pictures: tuple[Image.Image, ...] = card_flat(front), card_flat(back)
        else:
            pictures = tuple(
                card_in_frame(
                    side,
                    scale=0.85,
                    rotate_deg=rng.uniform(-4, 4),
                    vp8_bitrate=600_000,
                    rng=rng,
                )
                for side in (front, back)
            )
        out.append(
            (
                person,
                id_card_read_front(pictures[0], today=TODAY),
                id_card_read_back(pictures[1], birth=person.birth, today=TODAY),
            )
        )
    return out


def test_every_front_field_is_read_exactly(readings):
    for person, front, _ in readings:
        assert front["fields"] == person.front_fields()
        assert front["side"] == "front"


def test_every_back_field_is_read_exactly(readings):
    for person, _, back in readings:
        assert back["fields"] == person.back_fields()


def test_valid_cards_pass_all_checks_and_the_expired_one_says_so(readings):
    for i, (person, front, back) in enumerate(readings):
        assert front["ok"], front
        assert all(c["passed"] for c in front["checks"])
        failed = [c for c in back["checks"] if not c["passed"]]
        if i < 5:
            assert back["ok"], back
            assert failed == []
        else:
            assert not back["ok"]
            assert [c["rule"] for c in failed] == ["validity_not_expired"]
            assert f"{person.valid_until:%Y-%m-%d}" in failed[0]["detail"]
            assert "过期" in failed[0]["detail_zh"]


def test_name_and_address_are_flagged_for_the_teller_and_checked_fields_are_not(readings):
    for _, front, back in readings:
        assert front["needs_review"] == {
            "name": True,
            "sex": False,
            "ethnicity": False,
            "birth": False,
            "address": True,
            "id_number": False,
        }
        assert back["needs_review"]["authority"] is True
        assert front["problems"] == []
        assert min(front["confidence"].values()) >= 0.8
        assert front["seconds"] > 0


# --- pictures that cannot be read ---------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_card():
    rng = random.Random(5)
    person = person_random(rng, today=TODAY)
    return person, card_front(person, rng=rng), card_back(person, rng=rng)


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("front_upside_down", "upside_down"),
        ("front_upside_down_full_size", "upside_down"),
        ("back_upside_down", "upside_down"),
        ("front_sideways", "sideways"),
        ("front_blurred", "blurred"),
        ("back_shown_for_front", "wrong_side"),
        ("front_shown_for_back", "wrong_side"),
        ("random_noise", "no_card"),
        ("blank_wall", "no_card"),
        ("face_without_card", "no_card"),
    ],
)
def test_unreadable_pictures_give_a_reason_in_both_languages(sample_card, case, code):
    _, front, back = sample_card
    rng = random.Random(1)
    reader = id_card_read_front
    if case == "front_upside_down":
        picture = card_in_frame(front, rotate_deg=180, vp8_bitrate=600_000, rng=rng)
    elif case == "front_upside_down_full_size":
        picture = card_flat(front).rotate(180)
    elif case == "back_upside_down":
        picture, reader = card_in_frame(back, rotate_deg=178, rng=rng), id_card_read_back
    elif case == "front_sideways":
        picture = card_in_frame(front, rotate_deg=90, scale=0.7, rng=rng)
    elif case == "front_blurred":
        picture = card_in_frame(front, blur=5, rng=rng)
    elif case == "back_shown_for_front":
        picture = card_in_frame(back, rng=rng)
    elif case == "front_shown_for_back":
        picture, reader = card_in_frame(front, rng=rng), id_card_read_back
    elif case == "random_noise":
        noise = np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8)
        picture = Image.fromarray(noise)
    elif case == "blank_wall":
        picture = Image.new("RGB", (640, 480), (180, 176, 170))
    else:
        picture = Image.open(face_photo())
    with pytest.raises(BadImage) as caught:
        reader(picture, today=TODAY)
    assert_reason(caught.value, code)


def test_slightly_blurred_card_still_reads(sample_card):
    person, front, _ = sample_card
    result = id_card_read_front(card_in_frame(front, blur=1.5, rng=random.Random(2)), today=TODAY)
    assert result["fields"]["id_number"] == person.id_number
    assert result["ok"]


def test_card_small_in_the_frame_is_enlarged_and_read(sample_card):
    person, front, _ = sample_card
    picture = card_in_frame(front, scale=0.5, vp8_bitrate=400_000, rng=random.Random(3))
    assert id_card_read_front(picture, today=TODAY)["fields"] == person.front_fields()


# --- layout logic on scripted engine output -----------------------------------------------------


class ScriptedEngine:
    """Returns the lines a test put in ``script``: the card logic without the model."""

    name = "scripted"
    script: list[TextLine] = []

    def read(self, image: np.ndarray) -> list[TextLine]:
        return list(type(self).script)


def line(text: str, x: float, y: float, *, h: float = 30, score: float = 0.99, w: float = 0):
    w = w or h * len(text) * 0.9
    return TextLine(text, score, ((x, y), (x + w, y), (x + w, y + h), (x, y + h)))


def tilted(lines: list[TextLine], degrees: float) -> list[TextLine]:
    a = math.radians(degrees)

    def turn(p):
        x, y = p[0] - 400, p[1] - 250
        return (400 + x * math.cos(a) - y * math.sin(a), 250 + x * math.sin(a) + y * math.cos(a))

    return [TextLine(t.text, t.score, tuple(turn(p) for p in t.box)) for t in lines]


NUMBER = id_number_make(region="310104", birth=dt.date(1990, 3, 7), sequence=447)


def front_lines(**override) -> list[TextLine]:
    texts = {
        "name": "劉偉",
        "sex_row": "性別男",
        "ethnicity_row": "民族漢",
        "birth_row": "出生1990年3月7日",
        "address_1": "上海市徐匯區漕溪北路",
        "address_2": "595號",
        "number": NUMBER,
    } | override
    lines = [
        line("姓名", 60, 70),
        line(texts["name"], 165, 68, h=36),
        line(texts["sex_row"], 60, 140),
        line(texts["ethnicity_row"], 210, 140),
        line(texts["birth_row"], 60, 210, w=380),
        line("住址", 60, 280),
        line(texts["address_1"], 165, 280),
        line(texts["address_2"], 165, 326),
        line("公民身份號碼", 60, 465),
        line(texts["number"], 320, 462, h=38, w=470),
    ]
    return [item for item in lines if item.text]


@pytest.fixture
def scripted(settings):
    settings.KYC_OCR_BACKEND = SCRIPTED
    yield ScriptedEngine
    ScriptedEngine.script = []


# The scripted engine ignores the pixels; a sharp pattern keeps the blur judgement out of the way.
PICTURE = Image.fromarray(
    (np.indices((540, 856)).sum(axis=0) // 20 % 2 * 255).astype(np.uint8)
).convert("RGB")


def test_traditional_forms_are_read_as_simplified(scripted):
    scripted.script = front_lines()
    result = id_card_read_front(PICTURE, today=TODAY)
    assert result["fields"] == {
        "name": "刘伟",
        "sex": "男",
        "ethnicity": "汉",
        "birth": "19900307",
        "address": "上海市徐汇区漕溪北路595号",
        "id_number": NUMBER,
    }
    assert result["ok"]
    assert result["engine"] == "scripted"


def test_tilted_card_is_straightened_before_rows_are_formed(scripted):
    scripted.script = tilted(front_lines(), 8)
    fields = id_card_read_front(PICTURE, today=TODAY)["fields"]
    assert fields["address"] == "上海市徐汇区漕溪北路595号"
    assert fields["sex"] == "男"
    assert fields["ethnicity"] == "汉"


def test_text_read_into_the_photo_is_not_part_of_a_field(scripted):
    scripted.script = [
        *front_lines(),
        line("田口", 650, 75, h=30),  # photo area, on the name's row
        line("王田", 700, 330, h=30),  # photo area, between address lines
        line("囗", 620, 100, h=180),  # the whole portrait taken for one character
    ]
    fields = id_card_read_front(PICTURE, today=TODAY)["fields"]
    assert fields["name"] == "刘伟"
    assert fields["address"] == "上海市徐汇区漕溪北路595号"


def test_misread_digit_fails_the_checksum_and_flags_the_number(scripted):
    wrong = NUMBER[:8] + ("1" if NUMBER[8] != "1" else "2") + NUMBER[9:]
    scripted.script = front_lines(number=wrong)
    result = id_card_read_front(PICTURE, today=TODAY)
    assert result["fields"]["id_number"] == wrong
    assert not result["ok"]
    assert result["needs_review"]["id_number"] is True
    failed = {c["rule"] for c in result["checks"] if not c["passed"]}
    assert "id_number_checksum" in failed


def test_missing_field_is_a_problem_in_both_languages(scripted):
    scripted.script = front_lines(sex_row="性别")
    result = id_card_read_front(PICTURE, today=TODAY)
    assert result["fields"]["sex"] == ""
    assert not result["ok"]
    assert result["needs_review"]["sex"] is True
    [problem] = [p for p in result["problems"] if p["code"] == "field_missing"]
    assert problem["field"] == "sex"
    assert "sex" in problem["detail"]
    assert "性别" in problem["detail_zh"]


def test_low_confidence_field_is_flagged(scripted):
    lines = front_lines()
    lines[1] = line("刘伟", 165, 68, h=36, score=0.6)
    scripted.script = lines
    result = id_card_read_front(PICTURE, today=TODAY)
    assert [p["field"] for p in result["problems"]] == ["name"]
    assert result["problems"][0]["code"] == "low_confidence"
    assert not result["ok"]


def test_dotted_names_keep_their_middle_dot(scripted):
    scripted.script = front_lines(name="艾力•买买提")
    assert id_card_read_front(PICTURE, today=TODAY)["fields"]["name"] == "艾力·买买提"


def test_back_fields_from_merged_and_split_lines(scripted):
    scripted.script = [
        line("中华人民共和国", 290, 95, h=48),
        line("居民身份证", 215, 210, h=80),
        line("簽發機關", 137, 393),
        line("上海市公安局徐匯分局", 308, 393),
        line("有效期限2016.05.20-2036.05.20", 137, 463, w=420),
    ]
    result = id_card_read_back(PICTURE, birth="19900307", today=TODAY)
    assert result["fields"] == {
        "authority": "上海市公安局徐汇分局",
        "validity": "2016.05.20-2036.05.20",
    }
    assert result["ok"], result["checks"]


def test_normaliser_maps_traditional_and_full_width_only():
    assert traditional_to_simplified("漢族") == "汉族"
    assert text_normalise("民族 漢　１２３") == "民族汉123"
    assert name_normalise("阿依古丽・吐尔逊") == "阿依古丽·吐尔逊"


def test_normaliser_leaves_everything_the_card_prints_in_simplified_alone():
    printed = [
        *generator.SURNAMES,
        generator.GIVEN_MALE,
        generator.GIVEN_FEMALE,
        *generator.ETHNICITIES,
        *generator.STREET_WORDS,
        *generator.ESTATE_WORDS,
        *generator.TOWN_WORDS,
        *generator.VILLAGE_WORDS,
        *generator.DOTTED_MALE,
        *generator.DOTTED_FEMALE,
        *generator.TIBETAN_NAMES,
        *generator.MONGOLIAN_NAMES,
        *(r.name + r.authority for r in regions.region_all()),
        "姓名性别民族出生住址公民身份号码中华人民共和国居民身份证签发机关有效期限长期",
    ]
    for text in printed:
        assert traditional_to_simplified(text) == text


# --- engines ------------------------------------------------------------------------------------


def test_engine_is_loaded_once_per_backend(scripted):
    assert ocr_engine() is ocr_engine()
    assert isinstance(ocr_engine(), ScriptedEngine)


def test_paddle_backend_without_model_dirs_names_the_setting(settings):
    settings.KYC_OCR_BACKEND = PADDLE
    settings.KYC_PADDLE_MODEL_DIR = ""
    with pytest.raises(ImproperlyConfigured, match="KYC_PADDLE_MODEL_DIR"):
        ocr_engine()


def test_paddle_backend_with_missing_model_dirs_lists_them(settings, tmp_path):
    settings.KYC_OCR_BACKEND = PADDLE
    settings.KYC_PADDLE_MODEL_DIR = str(tmp_path)
    (tmp_path / "PP-OCRv5_mobile_det").mkdir()
    with pytest.raises(ImproperlyConfigured, match="PP-OCRv5_mobile_rec"):
        ocr_engine()


@pytest.fixture
def paddle_models(settings, tmp_path):
    settings.KYC_OCR_BACKEND = PADDLE
    settings.KYC_PADDLE_MODEL_DIR = str(tmp_path)
    for name in ("PP-OCRv5_mobile_det", "PP-OCRv5_mobile_rec"):
        (tmp_path / name).mkdir()
    return tmp_path


def test_paddle_backend_without_paddleocr_installed_says_so(paddle_models, monkeypatch):
    monkeypatch.setitem(sys.modules, "paddleocr", None)  # import fails
    with pytest.raises(ImproperlyConfigured, match="paddleocr is not installed"):
        ocr_engine()


def test_paddle_backend_adapter_passes_local_model_dirs_and_parses_the_output(
    paddle_models, monkeypatch
):
    created = {}
    scripted_front = front_lines()

    class FakePaddleOCR:
        def __init__(self, **kwargs):
            created.update(kwargs)

        def predict(self, image):
            created["shape"] = image.shape
            return [
                {
                    "rec_texts": [t.text for t in scripted_front],
                    "rec_scores": [t.score for t in scripted_front],
                    "rec_polys": [np.array(t.box) for t in scripted_front],
                }
            ]

    monkeypatch.setitem(sys.modules, "paddleocr", types.SimpleNamespace(PaddleOCR=FakePaddleOCR))
    monkeypatch.setattr("kyc.ocr._engines", {})
    result = id_card_read_front(PICTURE, today=TODAY)
    assert created == {
        "text_detection_model_dir": str(paddle_models / "PP-OCRv5_mobile_det"),
        "text_detection_model_name": "PP-OCRv5_mobile_det",
        "text_recognition_model_dir": str(paddle_models / "PP-OCRv5_mobile_rec"),
        "text_recognition_model_name": "PP-OCRv5_mobile_rec",
        "use_doc_orientation_classify": False,
        "use_doc_unwarping": False,
        "use_textline_orientation": False,
        "shape": (540, 856, 3),
    }
    assert result["fields"]["id_number"] == NUMBER
    assert result["fields"]["name"] == "刘伟"
    assert result["engine"] == "paddleocr"
