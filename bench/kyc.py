"""How well and how fast the in-call identity check reads ID cards and matches faces.

    .venv/bin/python bench/kyc.py [--cards 40] [--seed 7] [--no-face]
    .venv/bin/python bench/kyc.py --frame-scale 0.45,0.6 --vp8 300000 --tilt 8   # harder frames

For each of ``--cards`` synthetic people (``kyc.idcard.generator``: random but consistent
names, ethnicities, addresses, numbers, authorities and validity periods; the portrait is the
real face photo of ``tests.media.face_photo()``, cut to a card portrait by
``kyc.testing.card_portrait``) both sides of the card are read in two settings:

- **full**: the full-size render (856×540, as a scan or a close phone photo);
- **frame**: the card held up in a 640×480 video frame as the server decodes it from the
  customer's call: 80-95 % of the frame width, tilted up to ±4°, slightly off-centre, an indoor
  background, and the frame passed through VP8 at 600 kbit/s or 1 Mbit/s.

A side counts as read when every field equals the ground truth exactly (front: name, sex,
ethnicity, birth date, address, ID number; back: issuing authority, validity period).
``all_fields_acc`` is the share of cards with all eight fields right.

Face match (``kyc.faces.face_match``): the card (the full render, or the frame) against the same
photo placed in three 640×480 frames at slightly different scales and offsets.
``kyc_total`` for one card and setting = OCR of the front + OCR of the back + the face match.

The last line is for scripts; accuracy there is the worse of the two settings, times are over
both::

    id_number_acc=<a> all_fields_acc=<b> ocr_p95_s=<c> face_match_p95_s=<d> kyc_total_p95_s=<e>
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "videobank.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from kyc.errors import KycError  # noqa: E402
from kyc.idcard.generator import (  # noqa: E402
    card_back,
    card_flat,
    card_front,
    card_in_frame,
    person_random,
)
from kyc.ocr import id_card_read_back, id_card_read_front, ocr_engine  # noqa: E402

SETTINGS = ("full", "frame")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def face_source() -> Image.Image | None:
    try:
        from tests.media import face_photo

        return Image.open(face_photo()).convert("RGB")
    except Exception as exc:  # noqa: BLE001 - a bench without network still measures OCR
        print(f"face photo unavailable ({exc}); cards get a silhouette, face match skipped")
        return None


def card_portrait_of(photo: Image.Image) -> Image.Image:
    """The head-and-shoulders crop an ID card carries (``kyc.testing.card_portrait``: washed out,
    ~240×296, JPEG), not the whole photo, so the face on the card has a card's size."""
    try:
        from kyc.testing import card_portrait
    except ImportError:
        return photo
    return Image.fromarray(card_portrait(np.asarray(photo), kind="scan"))


def live_frames(photo: Image.Image, rng: random.Random) -> list[np.ndarray]:
    """The face photo in three 640×480 frames, each a little different in scale and place."""
    frames = []
    for _ in range(3):
        scale = rng.uniform(0.9, 1.1)
        w, h = round(photo.width * scale), round(photo.height * scale)
        fit = min(640 / w, 480 / h) * rng.uniform(0.85, 1.0)
        face = photo.resize((round(w * fit), round(h * fit)), Image.LANCZOS)
        frame = Image.new("RGB", (640, 480), (rng.randint(60, 160),) * 3)
        x = (640 - face.width) // 2 + rng.randint(-30, 30)
        y = (480 - face.height) // 2 + rng.randint(-15, 15)
        frame.paste(face, (x, y))
        frames.append(np.asarray(frame))
    return frames


def read_side(reader, image: Image.Image, truth: dict, **kwargs) -> tuple[dict, float, str]:
    """(fields read, seconds, error code or "")."""
    started = time.perf_counter()
    try:
        result = reader(image, **kwargs)
    except KycError as exc:
        return {}, time.perf_counter() - started, exc.code
    return result["fields"], time.perf_counter() - started, ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cards", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-face", action="store_true", help="OCR only")
    parser.add_argument("--verbose", action="store_true", help="print every wrong field")
    parser.add_argument("--save-failures", metavar="DIR", help="write misread pictures there")
    parser.add_argument(
        "--frame-scale",
        default="0.8,0.95",
        help="card width as a share of the frame width: LOW,HIGH (default 0.8,0.95)",
    )
    parser.add_argument(
        "--vp8", default="600000,1000000", help="VP8 bitrates to choose from, bit/s"
    )
    parser.add_argument("--tilt", type=float, default=4, help="largest tilt, degrees")
    args = parser.parse_args()

    scale_low, scale_high = (float(v) for v in args.frame_scale.split(","))
    bitrates = [int(v) for v in args.vp8.split(",")]
    logging.getLogger("kyc.ocr").setLevel(logging.WARNING)  # one line per read otherwise
    rng = random.Random(args.seed)
    photo = face_source()
    portrait = card_portrait_of(photo) if photo is not None else None
    face_match = None
    if photo is not None and not args.no_face:
        try:
            from kyc.faces import face_match
        except ImportError as exc:
            print(f"kyc.faces.face_match unavailable ({exc}); face match skipped")

    started = time.perf_counter()
    engine = ocr_engine()
    print(f"OCR engine {engine.name}: loaded in {time.perf_counter() - started:.2f} s")
    # Warm-up: the first inference allocates and is not what a customer waits for.
    warm = person_random(random.Random(0))
    id_card_read_front(card_flat(card_front(warm, rng=random.Random(0))))

    stats = {
        s: {
            "id": 0,
            "all": 0,
            "front": 0,
            "back": 0,
            "errors": {},
            "ocr": [],
            "total": [],
            "face": [],
            "face_ok": 0,
            "face_reasons": {},
        }
        for s in SETTINGS
    }
    field_errors: dict[str, dict[str, int]] = {s: {} for s in SETTINGS}
    for i in range(args.cards):
        person = person_random(rng)
        front = card_front(person, portrait=portrait, rng=rng)
        back = card_back(person, rng=rng)
        images = {
            "full": (card_flat(front), card_flat(back)),
            "frame": tuple(
                card_in_frame(
                    side,
                    scale=rng.uniform(scale_low, scale_high),
                    rotate_deg=rng.uniform(-args.tilt, args.tilt),
                    offset=(rng.uniform(-0.03, 0.03), rng.uniform(-0.03, 0.03)),
                    vp8_bitrate=rng.choice(bitrates),
                    rng=rng,
                )
                for side in (front, back)
            ),
        }
        truth_front, truth_back = person.front_fields(), person.back_fields()
        for setting, (front_img, back_img) in images.items():
            s = stats[setting]
            got_front, t_front, err_front = read_side(id_card_read_front, front_img, truth_front)
            got_back, t_back, err_back = read_side(
                id_card_read_back, back_img, truth_back, birth=person.birth
            )
            s["ocr"] += [t_front, t_back]
            for err in (err_front, err_back):
                if err:
                    s["errors"][err] = s["errors"].get(err, 0) + 1
            front_ok = all(got_front.get(k) == v for k, v in truth_front.items())
            back_ok = all(got_back.get(k) == v for k, v in truth_back.items())
            s["id"] += got_front.get("id_number") == person.id_number
            s["front"] += front_ok
            s["back"] += back_ok
            s["all"] += front_ok and back_ok
            for truth, got in ((truth_front, got_front), (truth_back, got_back)):
                for key, value in truth.items():
                    if got.get(key) != value:
                        field_errors[setting][key] = field_errors[setting].get(key, 0) + 1
                        if args.verbose:
                            print(f"  card {i} {setting} {key}: {got.get(key)!r} != {value!r}")
                        if args.save_failures:
                            folder = Path(args.save_failures)
                            folder.mkdir(parents=True, exist_ok=True)
                            picture = front_img if key in truth_front else back_img
                            picture.save(folder / f"card{i}-{setting}-{key}.png")
            t_face = 0.0
            if face_match is not None:
                card_array = np.asarray(front_img.convert("RGB"))
                result = face_match(card=card_array, frames=live_frames(photo, rng))
                t_face = float(getattr(result, "seconds", 0.0))
                s["face"].append(t_face)
                s["face_ok"] += bool(result.decision)
                reason = getattr(result, "reason_code", "")
                s["face_reasons"][reason] = s["face_reasons"].get(reason, 0) + 1
            s["total"].append(t_front + t_back + t_face)

    n = args.cards
    for setting in SETTINGS:
        s = stats[setting]
        errors = ", ".join(f"{k}×{v}" for k, v in sorted(s["errors"].items())) or "none"
        wrong = ", ".join(f"{k}×{v}" for k, v in sorted(field_errors[setting].items())) or "none"
        print(
            f"{setting:>5}: ID number {s['id']}/{n}, front {s['front']}/{n}, "
            f"back {s['back']}/{n}, all fields {s['all']}/{n}; wrong fields: {wrong}; "
            f"refused: {errors}"
        )
        print(
            f"{setting:>5}: OCR per side p50 {percentile(s['ocr'], 50):.2f} s, "
            f"p95 {percentile(s['ocr'], 95):.2f} s; kyc total p95 "
            f"{percentile(s['total'], 95):.2f} s"
        )
        if s["face"]:
            reasons = ", ".join(f"{k}×{v}" for k, v in sorted(s["face_reasons"].items()))
            print(
                f"{setting:>5}: face match {s['face_ok']}/{len(s['face'])} matched ({reasons}), "
                f"p50 {percentile(s['face'], 50):.2f} s, p95 {percentile(s['face'], 95):.2f} s"
            )
        else:
            print(f"{setting:>5}: face match not measured")
    face_times = [t for s in SETTINGS for t in stats[s]["face"]]
    id_acc = min(stats[s]["id"] for s in SETTINGS) / n
    all_acc = min(stats[s]["all"] for s in SETTINGS) / n
    ocr_p95 = percentile([t for s in SETTINGS for t in stats[s]["ocr"]], 95)
    total_p95 = percentile([t for s in SETTINGS for t in stats[s]["total"]], 95)
    face_p95 = percentile(face_times, 95) if face_times else float("nan")
    per = {s: (stats[s]["id"] / n, stats[s]["all"] / n) for s in SETTINGS}
    print(
        f"ID number accuracy: {id_acc:.3f} (full {per['full'][0]:.3f}, "
        f"640x480 frame {per['frame'][0]:.3f}; the worse is reported)"
    )
    print(
        f"all-fields accuracy (8 fields, both sides): {all_acc:.3f} (full {per['full'][1]:.3f}, "
        f"640x480 frame {per['frame'][1]:.3f})"
    )
    print(f"OCR time per side, p95 over both settings: {ocr_p95:.2f} s")
    print(f"face match time, p95: {face_p95:.2f} s")
    print(f"KYC total (front OCR + back OCR + face match) per card, p95: {total_p95:.2f} s")
    print(
        f"id_number_acc={id_acc:.3f} all_fields_acc={all_acc:.3f} ocr_p95_s={ocr_p95:.2f} "
        f"face_match_p95_s={face_p95:.2f} kyc_total_p95_s={total_p95:.2f}"
    )


if __name__ == "__main__":
    main()
