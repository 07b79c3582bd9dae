from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from signaling.protocol import render_markdown


class Command(BaseCommand):
    help = "Regenerate docs/protocol.md from signaling/protocol.py."

    def handle(self, *args, **options):
        path = Path(settings.BASE_DIR) / "docs" / "protocol.md"
        path.write_text(render_markdown(), encoding="utf-8")
        self.stdout.write(f"wrote {path}")
