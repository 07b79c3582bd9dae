import asyncio
import signal

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils.module_loading import import_string


class Command(BaseCommand):
    help = (
        "Run a media worker (production profile): terminates every participant's WebRTC "
        "connection, forwards media between the two sides of each call and records both."
    )

    def handle(self, *args, **options):
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        # The engine MEDIA_ENGINE names (docs/media-engine.md is what it must speak).
        worker = import_string(settings.MEDIA_ENGINE)()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stop)
        self.stdout.write(f"media worker {worker.channel_name} starting", ending="\n")
        self.stdout.flush()
        await worker.run()
