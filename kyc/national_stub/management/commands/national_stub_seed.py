from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from kyc.errors import KycError
from kyc.images import image_array, image_load
from kyc.national.masking import id_number_mask
from kyc.national_stub.seed import CITIZENS, NOT_FOUND_NUMBERS, registry_seed
from kyc.national_stub.services import citizen_register


class Command(BaseCommand):
    help = (
        "Seed the national ID stub's registry with test citizens (pass, mismatch, revoked; "
        "not_found numbers are listed). --portrait NAME=PATH gives a person a reference "
        "portrait from a face photo; --citizen NAME:ID_NUMBER[:revoked] adds one more person."
    )

    def add_arguments(self, parser):
        parser.add_argument("--portrait", action="append", default=[], metavar="NAME=PATH")
        parser.add_argument(
            "--citizen", action="append", default=[], metavar="NAME:ID_NUMBER[:STATUS]"
        )

    def handle(self, *args, portrait: list[str], citizen: list[str], **options):
        extra = []
        for spec in citizen:
            parts = spec.split(":")
            if len(parts) not in (2, 3):
                raise CommandError(f"--citizen {spec!r}: expected NAME:ID_NUMBER[:STATUS]")
            extra.append((parts[0], parts[1], parts[2] if len(parts) == 3 else "active"))
        photos = {}
        for spec in portrait:
            name, sep, path = spec.partition("=")
            if not sep or not name or not path:
                raise CommandError(f"--portrait {spec!r}: expected NAME=PATH")
            try:
                photos[name] = image_array(image_load(Path(path).read_bytes()))
            except OSError as exc:
                raise CommandError(f"--portrait {name}: cannot read {path}: {exc}") from exc
            except KycError as exc:
                raise CommandError(f"--portrait {name}: {exc.detail}") from exc
        known = {c.name for c in CITIZENS} | {name for name, _, _ in extra}
        nobody = sorted(set(photos) - known)
        if nobody:
            raise CommandError(f"--portrait for nobody in the registry: {', '.join(nobody)}")
        try:
            for name, number, status in extra:
                citizen_register(
                    name=name, id_number=number, status=status, portrait=photos.pop(name, None)
                )
            registry_seed(portraits=photos)
        except (ValueError, KycError) as exc:
            raise CommandError(str(getattr(exc, "detail", exc))) from exc
        self.stdout.write(
            f"national ID stub registry: {len(CITIZENS) + len(extra)} citizens seeded, "
            f"{len(portrait)} with a portrait; numbers for not_found: "
            + ", ".join(id_number_mask(n) for n in NOT_FOUND_NUMBERS)
            + " (in clear in kyc/national_stub/seed.py)"
        )
