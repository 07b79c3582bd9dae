"""``manage.py kyc_face_match``: what a back-office user sees for two photos and for bad ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from kyc import testing
from kyc.faces import DEFAULT_MATCH_THRESHOLD
from tests.media import face_photos

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> dict[str, Path]:
    photos = face_photos()
    folder = tmp_path_factory.mktemp("faces")
    card = testing.id_card(testing.card_portrait(np.asarray(Image.open(photos["obama"])), seed=1))
    Image.fromarray(card).save(folder / "card.png")
    Image.new("RGB", (640, 480), (128, 128, 128)).save(folder / "plain.jpg")
    (folder / "notes.txt").write_text("not a picture")
    return {**photos, "card": folder / "card.png", "plain": folder / "plain.jpg"} | {
        "text": folder / "notes.txt"
    }


def _run(*args) -> dict:
    out = StringIO()
    call_command("kyc_face_match", *map(str, args), "--json", stdout=out)
    return json.loads(out.getvalue())


def test_json_for_the_same_and_for_different_people(pictures):
    same = _run(pictures["obama"], pictures["obama2"])
    assert same["match"] is True
    assert same["threshold"] == DEFAULT_MATCH_THRESHOLD
    assert 0 < same["distance"] <= same["threshold"]

    other = _run(pictures["obama"], pictures["biden"])
    assert other["match"] is False
    assert other["distance"] > other["threshold"]


def test_card_option_and_threshold_option(pictures):
    card = _run(pictures["card"], pictures["obama3"], "--card")
    assert card["match"] is True

    strict = _run(pictures["card"], pictures["obama3"], "--card", "--threshold", "0.1")
    assert strict["threshold"] == 0.1
    assert strict["match"] is False
    assert strict["distance"] == card["distance"]


def test_picture_without_a_face_is_a_clear_error(pictures):
    with pytest.raises(CommandError) as excinfo:
        _run(pictures["obama"], pictures["plain"])
    message = str(excinfo.value)
    assert "plain.jpg" in message
    assert "no_face" in message
    assert "未检测到人脸" in message
    assert excinfo.value.returncode == 2


@pytest.mark.process
def test_error_exit_status_and_stderr_from_the_shell(pictures):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "videobank.settings"}
    done = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "kyc_face_match",
            str(pictures["text"]),
            str(pictures["obama"]),
        ]
        + ["--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert "notes.txt" in done.stderr
    assert "not_image" in done.stderr
    assert "不是图片" in done.stderr
