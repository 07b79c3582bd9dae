"""``manage.py kyc_ocr``: what a back-office user sees for a good card and for bad pictures."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from kyc.idcard.generator import card_back, card_flat, card_front, card_in_frame, person_random

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    """A person and their card front as a JPEG frame of a video call, written to a temp dir."""
    rng = random.Random(42)
    person = person_random(rng)
    folder = tmp_path_factory.mktemp("cards")
    front = card_front(person, rng=rng)
    frame = folder / "front.jpg"
    card_in_frame(front, rotate_deg=2, rng=rng).save(frame, quality=90)
    back = folder / "back.png"
    card_flat(card_back(person, rng=rng)).save(back)
    blurred = folder / "blurred.png"
    card_in_frame(front, blur=5, rng=rng).save(blurred)
    return person, frame, back, blurred


def run(*args) -> str:
    out = StringIO()
    call_command("kyc_ocr", *map(str, args), stdout=out)
    return out.getvalue()


def test_json_gives_the_front_fields_and_every_check(card):
    person, frame, _, _ = card
    data = json.loads(run(frame, "--json"))
    for key, value in person.front_fields().items():
        assert data[key] == value, key
    assert len(data["birth"]) == 8
    assert {c["rule"] for c in data["checks"]} >= {
        "id_number_format",
        "id_number_checksum",
        "id_number_region",
        "birth_date_matches",
        "sex_matches",
    }
    for check in data["checks"]:
        assert set(check) == {"rule", "passed", "detail", "detail_zh"}
        assert check["passed"] is True
    assert data["needs_review"]["name"] is True
    assert data["needs_review"]["address"] is True
    assert data["needs_review"]["id_number"] is False


def test_table_shows_fields_checks_and_the_verdict(card):
    person, frame, _, _ = card
    text = run(frame)
    assert person.name in text
    assert person.id_number in text
    assert "checks:" in text
    assert "ok   id_number_checksum" in text
    assert "all checks passed" in text


def test_back_side_with_birth_checks_the_validity_length(card):
    person, _, back, _ = card
    data = json.loads(run(back, "--side", "back", "--birth", person.birth_text, "--json"))
    assert data["authority"] == person.authority
    assert data["validity"] == person.validity_text
    length = next(c for c in data["checks"] if c["rule"] == "validity_period_length")
    assert length["passed"]
    assert "age" in length["detail"]


def test_blurred_picture_fails_with_the_reason_in_both_languages(card):
    _, _, _, blurred = card
    with pytest.raises(CommandError) as caught:
        run(blurred, "--json")
    assert caught.value.returncode == 2
    message = str(caught.value)
    assert message.startswith("blurred: ")
    assert "blurred" in message
    assert "模糊" in message


@pytest.mark.process
def test_not_an_image_exits_non_zero_with_the_reason_on_stderr(tmp_path):
    """The real command line: status and stderr as a shell script sees them."""
    not_image = tmp_path / "card.jpg"
    not_image.write_text("this is not a picture")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "videobank.settings"}
    done = subprocess.run(
        [sys.executable, "manage.py", "kyc_ocr", str(not_image), "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert "not_image" in done.stderr
    assert "not a picture" in done.stderr
    assert "不是图片" in done.stderr


def test_missing_file_and_bad_birth_are_refused(tmp_path, card):
    with pytest.raises(CommandError, match="Cannot read"):
        run(tmp_path / "nothing.jpg")
    _, _, back, _ = card
    with pytest.raises(CommandError, match="YYYYMMDD"):
        run(back, "--side", "back", "--birth", "1990-01-01")
