"""Routing under load: 200 customers, 20 tellers, two servers (production profile).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/videobank_bench \\
    REDIS_URL=redis://127.0.0.1:6379/5 .venv/bin/python bench/routing_load.py \\
      [--customers 200 --tellers 20 --arrivals 25]

The scenario of ``tests/routing_load.py`` at full size, on a stack of two daphne processes and one
media worker (registered for ``offer_accept``; no call starts media) on the database and Redis of
the environment (use ones of the bench's own: it ends calls left open and takes every teller
offline first). Tellers sign in over 6 s, customers arrive at random over 25 s through either
server, a fifth of them impatient; tellers accept, reject or let offers ring out (2 s). Every
assertion of the suite's smaller run (``tests/test_routing_load.py``) is checked here too: the
bench stops with the failed check if one fails.

Prints the run's figures, then a machine-readable last line:
``routing_load_customers=200 tellers=20 answered=… abandoned=… offer_delivery_p99_ms=…
accept_to_connected_p99_ms=… wait_p50_s=… drained_s=…``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def prepare_database() -> None:
    """Migrate; no call left open and no teller available from an earlier run."""
    from django.core.management import call_command
    from django.db import connections

    from queueing.models import OPEN_CALL_STATUSES, Call, PresenceStatus, TellerPresence
    from queueing.services import call_end

    call_command("migrate", verbosity=0)
    for call in Call.objects.filter(status__in=OPEN_CALL_STATUSES):
        call_end(call_id=call.pk, actor="bench", reason="bench_cleanup")
    TellerPresence.objects.update(status=PresenceStatus.OFFLINE, current_call=None)
    connections.close_all()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--tellers", type=int, default=20)
    parser.add_argument("--arrivals", type=float, default=25.0, help="customers arrive over (s)")
    args = parser.parse_args()
    if not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
        sys.exit("needs the production profile: DATABASE_URL and REDIS_URL of the bench's own")

    from media_sessions import configure_django, stack_running  # bench/ is this script's folder

    workdir = Path(tempfile.mkdtemp(prefix="videobank-bench-routing-load-"))
    configure_django(production=True, workdir=workdir)
    from tests import routing_load
    from tests.livestack import LiveStack

    load = routing_load.Load(
        customers=args.customers, tellers=args.tellers, arrivals_s=args.arrivals
    )
    prepare_database()
    os.environ["QUEUE_OFFER_TIMEOUT_S"] = str(routing_load.OFFER_TIMEOUT_S)
    os.environ["QUEUE_WRAP_UP_S"] = "0.5"  # tellers come back through the ticker
    stack = LiveStack(log_dir=workdir / "logs", servers=2, media_workers=1, celery=False)
    with stack_running(stack, workdir):
        outcome = asyncio.run(routing_load.run(load, stack.urls))
        routing_load.check(outcome)
    figures = routing_load.figures(outcome)
    print(figures.summary(outcome))
    print("every check of tests/test_routing_load.py held")
    print(
        f"routing_load_customers={load.customers} tellers={load.tellers} "
        f"answered={figures.answered} abandoned={figures.abandoned} "
        f"offer_delivery_p99_ms={figures.delivery_p99_s * 1000:.0f} "
        f"accept_to_connected_p99_ms={figures.answer_p99_s * 1000:.0f} "
        f"wait_p50_s={figures.wait_p50_s:.1f} drained_s={outcome.drained_s:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
