"""Which face distance separates "same person" from "somebody else" in the identity check, and
how long a frame takes.

    .venv/bin/python bench/face_threshold.py [--frames 6] [--sessions 30] [--no-extra]

The setting it measures is the one the check runs in: an ID-card portrait (``scan``: the
portrait of a photographed card, ~240x296 px, washed out, JPEG q60; ``chip``: the 102x126 px,
JPEG q35 photo a card reader returns) against 640x480 frames like the ones the server decodes
from the customer's video (face 150-230 px, head tilt, light and white balance changes, VP8-like
down/up-scaling, noise and block artefacts). Both are made by ``kyc.testing`` from real photos:

- face_recognition 1.3.0's test images (MIT; White House photos): obama, obama2, obama3 (three
  different photos of one person) and biden;
- scikit-image's astronaut (NASA, public domain);
- unless ``--no-extra``: 7 more people from insightface's wheel (MIT code; the pictures are a
  TV-series promotional still and a face-dataset crop, not the package authors' own, so they are
  used here only, cached under tests/.media, never in the test suite or the repository).

Pairs:

- **same person, other photo** (the honest case, obama only): card from one photo against frames
  made from another;
- **same person, same photo**: card and frames made from the same photo (easier: the pose and
  expression are the same; printed for comparison, not used to choose);
- **different people**: every card against every other person's frames.

It prints the distance distributions, false accepts / false rejects per frame and per decision
(``kyc.faces.face_match``'s rule: median of 3 random frames <= threshold and none above the
ceiling), live frame against live frame distances (the liveness check's identity test), one
liveness verification's time, detection size limits at upsample 0 and 1, per-frame timings at
640x480, and checks that our engine's encodings equal face_recognition's. The last line is for
scripts::

    face_threshold=<t> same_max=<x> diff_min=<y> far=<a> frr=<b> ceiling=<c> ...
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
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

from kyc import faces, testing  # noqa: E402
from kyc.errors import KycError  # noqa: E402
from tests.media import astronaut_photo, face_photos, pip_members  # noqa: E402

EXTRA_PACKAGE = "insightface"
EXTRA_MEMBERS = {
    "insightface-t1.jpg": "insightface/data/images/t1.jpg",
    "insightface-hanks.png": "insightface/data/images/Tom_Hanks_54745.png",
}


def load(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def sources(extra: bool) -> list[tuple[str, str, np.ndarray]]:
    """(person, photo name, pixels) for every source photo."""
    photos = face_photos()
    out = [
        ("obama", "obama", load(photos["obama"])),
        ("obama", "obama2", load(photos["obama2"])),
        ("obama", "obama3", load(photos["obama3"])),
        ("biden", "biden", load(photos["biden"])),
        ("astronaut", "astronaut", load(astronaut_photo())),
    ]
    if extra:
        files = pip_members(EXTRA_PACKAGE, EXTRA_MEMBERS, sdist=False)
        group = load(files["insightface-t1.jpg"])
        boxes = faces.face_engine().detect(group, upsample=0)
        for i, box in enumerate(sorted(boxes, key=lambda b: b.left)):
            pad = box.width
            crop = group[
                max(box.top - pad, 0) : box.bottom + pad, max(box.left - pad, 0) : box.right + pad
            ]
            out.append((f"group{i + 1}", f"group{i + 1}", np.ascontiguousarray(crop)))
        out.append(("hanks", "hanks", load(files["insightface-hanks.png"])))
    return out


def encode(image: np.ndarray, *, card: bool = False):
    """As face_match finds faces: cards with their own size limit and ghost rule."""
    try:
        if card:
            return faces.face_find_one(
                image, ghost_ok=True, min_size=faces.card_min_size_px()
            ).encoding
        return faces.face_find_one(image).encoding
    except KycError as exc:
        return exc.code


def stats(values: list[float]) -> str:
    if not values:
        return "n=0"
    v = sorted(values)
    pct = lambda q: v[min(int(q * (len(v) - 1) + 0.5), len(v) - 1)]  # noqa: E731
    return (
        f"n={len(v):4d} min={v[0]:.3f} p5={pct(0.05):.3f} p50={pct(0.5):.3f} "
        f"p95={pct(0.95):.3f} max={v[-1]:.3f}"
    )


def timing(photo: np.ndarray, repeats: int) -> dict[str, float]:
    engine = faces.face_engine()
    frame = testing.live_frame(photo, seed=1, face_width=190)
    found = faces.face_find_one(frame)
    runs: dict[str, list[float]] = {"detect_up0": [], "detect_up1": [], "landmarks": []}
    runs |= {"encode": [], "face_find_one": []}
    for _ in range(repeats):
        for name, call in (
            ("detect_up0", lambda: engine.detect(frame, upsample=0)),
            ("detect_up1", lambda: engine.detect(frame, upsample=1)),
            ("landmarks", lambda: engine.describe(frame, found.box, encode=False)),
            ("encode", lambda: engine.describe(frame, found.box, encode=True)),
            ("face_find_one", lambda: faces.face_find_one(frame)),
        ):
            started = time.perf_counter()
            call()
            runs[name].append(1000 * (time.perf_counter() - started))
    return {name: statistics.median(values) for name, values in runs.items()}


def size_limits(photo: np.ndarray) -> list[str]:
    """Which faces HOG finds in a 640x480 live-like frame at upsample 0 and 1, and the box
    widths it reports (upsample 0 reports nothing under ~72 px)."""
    engine = faces.face_engine()
    rows = []
    for width in (40, 50, 60, 70, 80, 90, 100, 120, 150):
        found: dict[int, list[int]] = {0: [], 1: []}
        for seed in range(4):
            frame = testing.live_frame(photo, seed=seed, face_width=width)
            for up in (0, 1):
                found[up] += [box.width for box in engine.detect(frame, upsample=up)]
        cells = [
            f"upsample {up}: {len(found[up])}/4 found, box {min(found[up], default=0)}-"
            f"{max(found[up], default=0)} px"
            for up in (0, 1)
        ]
        rows.append(f"  face {width:3d} px wide: " + "; ".join(cells))
    return rows


def liveness_timing(photo: np.ndarray) -> dict:
    """One liveness verification of a synthetic 2-move clip sampled at 3.75 fps."""
    from kyc.liveness import challenge_for, liveness_verify

    kinds = ["turn_left", "look_up"]
    sampled = testing.sampled(testing.liveness_clip_frames(photo, kinds, seconds_per_step=1.5))
    result = liveness_verify(challenge=challenge_for(kinds), frames=sampled)
    return {
        "frames": len(sampled),
        "seconds": result.seconds,
        "reason": result.reason_code,
        "max_distance": result.max_distance or 0.0,
    }


def face_recognition_check(photo: np.ndarray) -> float:
    """Largest difference between our encoding and face_recognition's (model="small") for the
    same face box. Imported last: it loads all its models and changes a Pillow global."""
    import face_recognition

    found = faces.face_find_one(photo)
    box = found.box
    theirs = face_recognition.face_encodings(
        photo, known_face_locations=[(box.top, box.right, box.bottom, box.left)], model="small"
    )[0]
    return float(np.max(np.abs(theirs - found.encoding)))


def decisions(same_sets, diff_sets, thresholds, ceiling, sessions, rng):
    """FAR/FRR of face_match's rule over random 3-frame sessions."""
    rows = []
    for t in thresholds:
        rates = []
        for sets in (same_sets, diff_sets):
            accepted = total = 0
            for distances in sets:
                for _ in range(sessions):
                    pick = rng.choice(distances, size=3, replace=False)
                    accepted += bool(np.median(pick) <= t and pick.max() <= max(ceiling, t))
                    total += 1
            rates.append(accepted / total if total else 0.0)
        rows.append((t, 1 - rates[0], rates[1]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=12, help="live frames per source photo")
    parser.add_argument("--sessions", type=int, default=30, help="3-frame draws per pair")
    parser.add_argument("--no-extra", action="store_true", help="only the public-domain photos")
    parser.add_argument("--timing-repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(7)

    started = time.perf_counter()
    photos = sources(not args.no_extra)
    people = sorted({person for person, _, _ in photos})
    print(f"{len(photos)} source photos, {len(people)} people: {', '.join(people)}")

    cards: dict[tuple[str, str], list[tuple[str, np.ndarray]]] = {}
    frames: dict[tuple[str, str], list[np.ndarray]] = {}
    problems: dict[str, int] = {}
    for n, (person, name, photo) in enumerate(photos):
        key = (person, name)
        cards[key] = []
        for kind, seed in (("scan", 1), ("scan", 2), ("chip", 3)):
            enc = encode(testing.card_portrait(photo, kind=kind, seed=100 * n + seed), card=True)
            if isinstance(enc, str):
                problems[f"card {kind} {enc}"] = problems.get(f"card {kind} {enc}", 0) + 1
            else:
                cards[key].append((kind, enc))
        frames[key] = []
        for seed in range(args.frames):
            enc = encode(testing.live_frame(photo, seed=1000 * n + seed))
            if isinstance(enc, str):
                problems[f"frame {enc}"] = problems.get(f"frame {enc}", 0) + 1
            else:
                frames[key].append(enc)
    made = time.perf_counter() - started
    print(f"encoded {sum(map(len, cards.values()))} cards and {sum(map(len, frames.values()))}")
    print(f"frames in {made:.1f} s; not usable: {problems or 'none'}")

    same_other: dict[str, list[float]] = {"scan": [], "chip": []}
    same_photo: dict[str, list[float]] = {"scan": [], "chip": []}
    different: dict[str, list[float]] = {"scan": [], "chip": []}
    same_sets, diff_sets = [], []
    closest = (9.0, "")
    for (card_person, card_name), card_list in cards.items():
        for (frame_person, frame_name), frame_list in frames.items():
            for kind, card in card_list:
                ds = [faces.encoding_distance(card, f) for f in frame_list]
                if card_person != frame_person:
                    different[kind] += ds
                    diff_sets.append(np.array(ds))
                    if ds and min(ds) < closest[0]:
                        closest = (min(ds), f"{card_name} {kind} card vs {frame_name} frames")
                elif card_name != frame_name:
                    same_other[kind] += ds
                    same_sets.append(np.array(ds))
                else:
                    same_photo[kind] += ds

    print("\ndistance distributions (card portrait vs live-like frame)")
    for kind in ("scan", "chip"):
        print(f"  {kind} card, same person, other photo: {stats(same_other[kind])}")
        print(f"  {kind} card, same person, same photo:  {stats(same_photo[kind])}")
        print(f"  {kind} card, different people:         {stats(different[kind])}")
    print(f"  closest different pair: {closest[0]:.3f} ({closest[1]})")

    same_all = same_other["scan"] + same_other["chip"]
    diff_all = different["scan"] + different["chip"]
    same_max = max(same_all + same_photo["scan"] + same_photo["chip"])
    diff_min = min(diff_all)
    thresholds = [round(0.40 + 0.02 * i, 2) for i in range(14)]
    print("\nper frame: false reject (same person, other photo) / false accept (different)")
    for t in thresholds:
        frr = sum(d > t for d in same_all) / len(same_all)
        far = sum(d <= t for d in diff_all) / len(diff_all)
        print(f"  threshold {t:.2f}: FRR {frr:6.1%}  FAR {far:6.2%}")

    # The ceiling: a frame at the distance where different people begin is not the card holder.
    ceiling = faces.DEFAULT_MATCH_CEILING
    print(f"\nper decision (3 random frames, median <= threshold, none > ceiling {ceiling:.2f})")
    rows = decisions(same_sets, diff_sets, thresholds, ceiling, args.sessions, rng)
    for t, frr, far in rows:
        print(f"  threshold {t:.2f}: FRR {frr:6.1%}  FAR {far:6.2%}")

    # Choice: 0.4 of the way across the gap from the worst same-person frame to the best
    # different-person frame: nearer the same-person side, as a false accept costs more than
    # a retry. Without a gap: the lowest threshold whose per-frame
    # FAR is zero.
    if same_max < diff_min:
        chosen = round(same_max + 0.4 * (diff_min - same_max), 2)
    else:
        chosen = next((t for t in thresholds if sum(d <= t for d in diff_all) == 0), 0.40)
    frr = sum(d > chosen for d in same_all) / len(same_all)
    far = sum(d <= chosen for d in diff_all) / len(diff_all)
    t_frr, t_far = next(
        (
            (f, a)
            for t, f, a in decisions(same_sets, diff_sets, [chosen], ceiling, args.sessions, rng)
        ),
        (0, 0),
    )
    print(
        f"\nchosen threshold {chosen:.2f} (gap {same_max:.3f} .. {diff_min:.3f}); in code: "
        f"kyc.faces.DEFAULT_MATCH_THRESHOLD = {faces.DEFAULT_MATCH_THRESHOLD}"
    )

    # The liveness check compares live frames with live frames of the same session.
    same_live, diff_live = [], []
    keys = list(frames)
    for a, b in itertools.combinations_with_replacement(keys, 2):
        for i, fa in enumerate(frames[a]):
            for j, fb in enumerate(frames[b]):
                if a == b and j <= i:
                    continue
                d = faces.encoding_distance(fa, fb)
                if a[0] != b[0]:
                    diff_live.append(d)
                elif a == b:
                    same_live.append(d)
    print("\nframe vs frame (liveness identity check)")
    print(f"  same photo, other frame:  {stats(same_live)}")
    print(f"  different people:         {stats(diff_live)}")

    photo = photos[0][2]
    moves = liveness_timing(photo)
    print(
        f"\nliveness: synthetic clip {moves['frames']} sampled frames, verify "
        f"{moves['seconds']:.2f} s ({moves['reason']}); move frames vs neutral: "
        f"max distance {moves['max_distance']:.3f}"
    )
    print("\nHOG sizes (640x480 live-like frames of obama.jpg, 4 frames per face width)")
    print("\n".join(size_limits(photo)))
    times = timing(photo, args.timing_repeats)
    print("\nper 640x480 frame (median ms): " + ", ".join(f"{k} {v:.0f}" for k, v in times.items()))
    diff = face_recognition_check(photo)
    print(f"face_recognition.face_encodings(model='small') vs our engine: max |diff| {diff:.2e}")

    print(
        f"face_threshold={chosen:.2f} same_max={same_max:.3f} diff_min={diff_min:.3f} "
        f"far={far:.4f} frr={frr:.4f} decision_far={t_far:.4f} decision_frr={t_frr:.4f} "
        f"ceiling={ceiling:.2f} frame_ms={times['face_find_one']:.0f} people={len(people)} "
        f"same_pairs={len(same_all)} diff_pairs={len(diff_all)}"
    )


if __name__ == "__main__":
    main()
