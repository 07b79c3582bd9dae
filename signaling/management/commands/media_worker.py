import asyncio
import signal

from django.core.management.base import BaseCommand

from signaling.media.worker import MediaWorker


class Command(BaseCommand):
    help = (
        "Run a media worker (production profile): terminates every participant's WebRTC "
        "connection, forwards media between the two sides of each call and records both."
    )

    def handle(self, *args, **options):
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        worker = MediaWorker()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stop)
        self.stdout.write(f"media worker {worker.channel_name} starting", ending="\n")
        self.stdout.flush()
        await worker.run()
