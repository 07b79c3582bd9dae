import asyncio
import signal

from django.conf import settings
from django.core.management.base import BaseCommand

from queueing import ticker


class Command(BaseCommand):
    help = (
        "Run the queue ticker (production profile): every QUEUE_TICK_S it applies the queue's "
        "time rules (offer timeouts, end of wrap-up, callback offers, relaxation steps) and sends "
        "waiting customers their new positions. Run one or two (standby) per deployment: only "
        "the holder of a lease in Redis ticks."
    )

    def handle(self, *args, **options):
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        task = loop.create_task(ticker.run(standalone=True))
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        self.stdout.write(f"queue ticker running every {settings.QUEUE_TICK_S} s", ending="\n")
        self.stdout.flush()
        try:
            await task
        except asyncio.CancelledError:
            pass
        ticker.lease_release()
