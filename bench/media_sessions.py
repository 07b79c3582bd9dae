"""CPU the server spends on media, per concurrent call, and the frame rate the tellers get.

    .venv/bin/python bench/media_sessions.py --sessions 4 [--seconds 20] [--production]

Starts its own server stack (embedded profile: a fresh SQLite file and one daphne process that
carries the media; ``--production``: the DATABASE_URL / REDIS_URL of the environment, one daphne,
one media worker and one Celery worker), places N calls with the headless client (N customers and
N tellers, all in this process), lets media flow for S seconds once every call has media, and
measures over that window:

- the CPU time of the process that carries media (daphne embedded, the media worker in
  production), as a percentage of one core per session: relay both ways plus recording both sides;
- video and audio frames per second received at the tellers, averaged over the sessions.

The clients encode and decode video too, on the same machine: their CPU is printed alongside, and
when the machine is saturated they, not the server, may be what limits the frame rate.
The last line is machine-readable:
``media_cpu_per_session_pct=<x> sessions=<N> fps_at_teller=<y>``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from signaling.client import CustomerClient, TellerClient  # noqa: E402
from tests.calls import answered_call, hang_up  # noqa: E402

SOURCE_FPS = 15  # what each client's test pattern sends


def configure_django(*, production: bool, workdir: Path) -> None:
    """Point this process (and, through the environment, the stack it starts) at a profile."""
    env = os.environ
    if production:
        missing = [name for name in ("DATABASE_URL", "REDIS_URL") if not env.get(name)]
        if missing:
            sys.exit(f"--production needs {' and '.join(missing)} in the environment")
        env["VIDEOBANK_PROFILE"] = "production"
    else:
        env["VIDEOBANK_PROFILE"] = "embedded"
        env["SQLITE_PATH"] = str(workdir / "bench.sqlite3")
    env["RECORDING_DIR"] = str(workdir / "recordings")
    env["VIDEOBANK_VAR_DIR"] = str(workdir / "var")
    env["DJANGO_SETTINGS_MODULE"] = "videobank.settings"
    # Throwaway bench data: random keys of this run for it and the stack it starts (production
    # refuses published ones).
    from tests.keys import session_keys_export

    session_keys_export(env)

    import django

    django.setup()


@contextlib.contextmanager
def stack_running(stack, workdir: Path, *, keep: bool = False):
    """Start a bench's server stack and stop it afterwards; its work dir (databases, logs) goes
    when all went well, and is kept, with a line saying where, when not (or with ``keep``)."""
    ok = False
    try:
        yield stack.start()
        ok = True
    finally:
        stack.stop()
        if ok and not keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"work dir kept (server logs): {workdir}")


def prepare_database(sessions: int) -> list[str]:
    """Migrate, create one teller per session; return their session cookies."""
    from django.core.management import call_command
    from django.db import connections

    from queueing.models import OPEN_CALL_STATUSES, Call
    from queueing.services import call_end
    from tests.calls import teller_cookie
    from tests.factories import staff_user

    call_command("migrate", verbosity=0)
    tellers = [staff_user(f"bench-teller-{i}", "teller") for i in range(sessions)]
    # A bench run that crashed may have left one of these tellers in a call.
    for call in Call.objects.filter(teller__in=tellers, status__in=OPEN_CALL_STATUSES):
        call_end(call_id=call.pk, actor="bench", reason="bench_cleanup")
    cookies = [teller_cookie(teller) for teller in tellers]
    connections.close_all()
    return cookies


def media_channels(call_ids: list[str]) -> set[str]:
    from django.db import connections

    from queueing.models import Call

    try:
        return set(Call.objects.filter(pk__in=call_ids).values_list("media_channel", flat=True))
    finally:
        connections.close_all()


@dataclass
class Sample:
    wall: float
    media_cpu: float
    client_cpu: float
    signaling_cpu: float
    machine_busy: float
    machine_total: float
    teller: list[dict[str, int]]
    customer: list[dict[str, int]]


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def sample(media, signaling, customers, tellers) -> Sample:
    machine = psutil.cpu_times()
    idle = machine.idle + getattr(machine, "iowait", 0.0)
    total = sum(machine)
    return Sample(
        wall=time.monotonic(),
        media_cpu=_cpu(media),
        client_cpu=_cpu(psutil.Process()),
        signaling_cpu=_cpu(signaling) if signaling is not None else 0.0,
        machine_busy=total - idle,
        machine_total=total,
        teller=[dict(t.received) for t in tellers],
        customer=[dict(c.received) for c in customers],
    )


async def measure(
    url: str,
    cookies: list[str],
    seconds: float,
    media_pid: int,
    signaling_pid: int | None,
    media_channel: str | None,
) -> dict:
    sessions = len(cookies)
    media = psutil.Process(media_pid)
    signaling = psutil.Process(signaling_pid) if signaling_pid else None
    async with contextlib.AsyncExitStack() as stack:
        customers = [await stack.enter_async_context(CustomerClient(url)) for _ in cookies]
        tellers = [
            await stack.enter_async_context(TellerClient(url, cookies=cookie)) for cookie in cookies
        ]
        started = time.monotonic()
        call_ids = [await answered_call(c, t) for c, t in zip(customers, tellers, strict=True)]
        if media_channel is not None:
            used = await asyncio.to_thread(media_channels, call_ids)
            if used != {media_channel}:
                raise RuntimeError(
                    f"calls went to media workers {used}, not this bench's {media_channel}: "
                    "another stack is registered on the same database"
                )
        await asyncio.gather(
            *(client.wait_media(video=30, audio=50, timeout=60) for client in customers + tellers)
        )
        setup_s = time.monotonic() - started
        print(f"{sessions} call(s) answered, media flowing after {setup_s:.1f} s")
        before = sample(media, signaling, customers, tellers)
        await asyncio.sleep(seconds)  # the measurement window itself, not a wait for an event
        after = sample(media, signaling, customers, tellers)
        await asyncio.gather(
            *(
                hang_up(c, t, call_id)
                for c, t, call_id in zip(customers, tellers, call_ids, strict=True)
            )
        )
    return report(before, after, sessions)


def report(before: Sample, after: Sample, sessions: int) -> dict:
    wall = after.wall - before.wall

    def rates(kind: str, side: str) -> list[float]:
        pairs = zip(getattr(before, side), getattr(after, side), strict=True)
        return [(a[kind] - b[kind]) / wall for b, a in pairs]

    teller_video, teller_audio = rates("video", "teller"), rates("audio", "teller")
    customer_video = rates("video", "customer")
    cores = psutil.cpu_count() or 1
    return {
        "sessions": sessions,
        "window_s": wall,
        "media_cpu_pct": (after.media_cpu - before.media_cpu) / wall * 100,
        "client_cpu_pct": (after.client_cpu - before.client_cpu) / wall * 100,
        "signaling_cpu_pct": (after.signaling_cpu - before.signaling_cpu) / wall * 100,
        "machine_busy_pct": (after.machine_busy - before.machine_busy)
        / (after.machine_total - before.machine_total)
        * 100,
        "cores": cores,
        "teller_video": teller_video,
        "teller_audio": teller_audio,
        "customer_video": customer_video,
    }


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1, help="concurrent calls")
    parser.add_argument("--seconds", type=float, default=20.0, help="measurement window")
    parser.add_argument(
        "--production",
        action="store_true",
        help="production profile: DATABASE_URL + REDIS_URL of the environment, separate "
        "media worker (its CPU is measured)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, files)")
    args = parser.parse_args()

    # Other jobs on the machine skew every figure below: say how busy it was to begin with.
    background = psutil.cpu_percent(interval=2.0)
    workdir = Path(tempfile.mkdtemp(prefix="videobank-bench-"))
    configure_django(production=args.production, workdir=workdir)
    from tests.livestack import LiveStack

    cookies = prepare_database(args.sessions)
    stack = LiveStack(log_dir=workdir / "logs", servers=1)
    with stack_running(stack, workdir, keep=args.keep):
        server = stack.process("daphne-0")
        if args.production:
            worker = stack.process("media-0")
            channel = re.search(r"media worker listening on (\S+)", worker.log()).group(1)
            media_pid, signaling_pid, carrier = worker.popen.pid, server.popen.pid, "media worker"
        else:
            media_pid, signaling_pid, channel, carrier = server.popen.pid, None, None, "daphne"
        result = asyncio.run(
            measure(stack.url, cookies, args.seconds, media_pid, signaling_pid, channel)
        )

    n = result["sessions"]
    per_session = result["media_cpu_pct"] / n
    fps = mean(result["teller_video"])
    profile = "production" if args.production else "embedded"
    print(
        f"profile {profile}, {n} session(s), {result['window_s']:.1f} s window; machine "
        f"{background:.0f}% busy before the bench started"
    )
    print(
        f"media CPU ({carrier}): {result['media_cpu_pct']:.0f}% of one core in all, "
        f"{per_session:.0f}% per session (relay both ways + recording both sides)"
    )
    if args.production:
        print(f"signaling CPU (daphne): {result['signaling_cpu_pct']:.1f}% of one core")
    print(
        f"client CPU (this process, {2 * n} peers encoding + decoding): "
        f"{result['client_cpu_pct']:.0f}% of one core; machine busy "
        f"{result['machine_busy_pct']:.0f}% of {result['cores']} cores"
    )
    print(
        f"at the tellers: video {fps:.1f} fps (min {min(result['teller_video']):.1f}), "
        f"audio {mean(result['teller_audio']):.1f} frames/s; at the customers: video "
        f"{mean(result['customer_video']):.1f} fps"
    )
    if fps < 0.9 * SOURCE_FPS:
        print(
            f"note: below {SOURCE_FPS} fps the machine is saturated (server, clients or other "
            "jobs): the CPU per session then understates what a full-rate call costs"
        )
    print(f"media_cpu_per_session_pct={per_session:.1f} sessions={n} fps_at_teller={fps:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
