"""Read a resident ID card picture from the command line: what the in-call check would see.

    python manage.py kyc_ocr card.jpg             # front, as a table
    python manage.py kyc_ocr card.jpg --json      # front, as JSON
    python manage.py kyc_ocr back.jpg --side back [--birth 19900101]

JSON of the front: ``name, sex, ethnicity, birth (YYYYMMDD), address, id_number``, ``checks``
(list of ``{rule, passed, detail, detail_zh}``), ``needs_review`` (field → bool: name and address
always, having no checksum) and ``problems``. A picture that cannot be read exits with status 2
and the reason, in English and Chinese, on stderr.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from kyc.errors import KycError
from kyc.idcard.validation import birth_parse
from kyc.images import image_load
from kyc.ocr import FIELD_WORDS, id_card_read_back, id_card_read_front

BAD_IMAGE_EXIT = 2


def _pad(text: str, width: int) -> str:
    """Left-justify for a terminal, where a Chinese character takes two columns."""
    used = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(1, width - used)


class Command(BaseCommand):
    help = "Read the fields of a resident ID card picture (front by default) and check them."

    def add_arguments(self, parser):
        parser.add_argument("image", help="JPEG, PNG, WebP or BMP file")
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
        parser.add_argument("--side", choices=["front", "back"], default="front")
        parser.add_argument(
            "--birth",
            default="",
            help="holder's birth date YYYYMMDD (back only): checks the validity period's length",
        )

    def handle(self, *args, **options):
        path = Path(options["image"])
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror or exc}") from exc
        birth = None
        if options["birth"]:
            birth = birth_parse(options["birth"])
            if birth is None:
                raise CommandError("--birth must be a date written YYYYMMDD, e.g. 19900101.")
        try:
            image = image_load(data)
            if options["side"] == "front":
                result = id_card_read_front(image)
            else:
                result = id_card_read_back(image, birth=birth)
        except KycError as exc:
            raise CommandError(
                f"{exc.code}: {exc.detail} / {exc.detail_zh}", returncode=BAD_IMAGE_EXIT
            ) from exc

        if options["json"]:
            out = {
                **result["fields"],
                "checks": result["checks"],
                "needs_review": result["needs_review"],
                "problems": result["problems"],
            }
            self.stdout.write(json.dumps(out, ensure_ascii=False, indent=2))
            return
        self.stdout.write(self._table(result))

    @staticmethod
    def _table(result: dict) -> str:
        lines = [_pad("field", 26) + _pad("value", 50) + "confidence  review"]
        for name, value in result["fields"].items():
            label = f"{FIELD_WORDS[name][1]} {FIELD_WORDS[name][0]}"
            review = "yes" if result["needs_review"][name] else ""
            confidence = result["confidence"][name]
            lines.append(
                _pad(label, 26) + _pad(value or "-", 50) + f"{confidence:>10.2f}  {review}"
            )
        lines.append("")
        lines.append("checks:")
        for check in result["checks"]:
            mark = "ok  " if check["passed"] else "FAIL"
            lines.append(f"  {mark} {check['rule']:<24} {check['detail']} / {check['detail_zh']}")
        if result["problems"]:
            lines.append("")
            lines.append("problems:")
            for problem in result["problems"]:
                lines.append(f"  {problem['code']}: {problem['detail']} / {problem['detail_zh']}")
        lines.append("")
        verdict = "all checks passed" if result["ok"] else "NOT all checks passed"
        lines.append(f"{verdict}; read in {result['seconds']:.2f} s by {result['engine']}")
        return "\n".join(lines)
