from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from signaling.protocol import render_markdown
from videobank import media_contract


class Command(BaseCommand):
    help = (
        "Regenerate docs/protocol.md from signaling/protocol.py and docs/media-engine.md from "
        "videobank/media_contract.py."
    )

    def handle(self, *args, **options):
        docs = Path(settings.BASE_DIR) / "docs"
        for name, text in (
            ("protocol.md", render_markdown()),
            ("media-engine.md", media_contract.render_markdown()),
        ):
            (docs / name).write_text(text, encoding="utf-8")
            self.stdout.write(f"wrote {docs / name}")
