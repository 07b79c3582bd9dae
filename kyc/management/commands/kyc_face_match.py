"""Compare the faces of two pictures, as the in-call identity check does.

    python manage.py kyc_face_match a.jpg b.jpg             # one line in words
    python manage.py kyc_face_match a.jpg b.jpg --json      # {"distance", "match", "threshold"}
    python manage.py kyc_face_match card.jpg live.jpg --card --threshold 0.5

The same rules and distance as ``kyc.faces.face_distance``: each picture must hold exactly one
face of sufficient size (with ``--card`` the first is an ID card or its portrait: its largest
face counts, a small ghost copy is ignored). A picture that cannot be used exits with status 2
and the reason, in English and Chinese, on stderr.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from kyc.errors import KycError
from kyc.faces import (
    card_min_size_px,
    encoding_distance,
    face_encoding,
    face_find_one,
    match_threshold,
)
from kyc.images import image_array, image_load

BAD_IMAGE_EXIT = 2


class Command(BaseCommand):
    help = "Face distance between two pictures, and whether it counts as the same person."

    def add_arguments(self, parser):
        parser.add_argument("image_a", help="JPEG, PNG, WebP or BMP file")
        parser.add_argument("image_b", help="JPEG, PNG, WebP or BMP file")
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.add_argument("--card", action="store_true", help="IMAGE_A is an ID card")
        parser.add_argument(
            "--threshold",
            type=float,
            default=None,
            help="largest distance that counts as a match (default KYC_FACE_MATCH_THRESHOLD)",
        )

    def handle(self, *args, **options):
        threshold = match_threshold() if options["threshold"] is None else options["threshold"]
        if not 0 < threshold < 2:
            raise CommandError("--threshold must be between 0 and 2 (distances lie in that range).")
        encodings = []
        for name in ("image_a", "image_b"):
            path = Path(options[name])
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise CommandError(f"Cannot read {path}: {exc.strerror or exc}") from exc
            as_card = options["card"] and name == "image_a"
            try:
                picture = image_array(image_load(data))
                if as_card:
                    face = face_find_one(picture, ghost_ok=True, min_size=card_min_size_px())
                else:
                    face = face_find_one(picture)
            except KycError as exc:
                raise CommandError(
                    f"{path}: {exc.code}: {exc.detail} / {exc.detail_zh}",
                    returncode=BAD_IMAGE_EXIT,
                ) from exc
            encodings.append(face_encoding(picture, face))
        distance = encoding_distance(*encodings)

        match = distance <= threshold
        if options["json"]:
            out = {"distance": round(distance, 4), "match": match, "threshold": threshold}
            self.stdout.write(json.dumps(out))
            return
        verdict = "same person" if match else "NOT the same person"
        sign = "<=" if match else ">"
        self.stdout.write(f"distance {distance:.4f} {sign} {threshold:.2f}: {verdict}")
