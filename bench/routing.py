"""How long the router takes to decide, and how long a free teller waits for its offer.

    .venv/bin/python bench/routing.py [--samples 3000] [--production]

1. Routing decision (always; pure in-memory, ``queueing.routing``): realistic states of 10
   businesses with requirements and relaxation steps, 200 tellers with random skills, levels,
   languages, channels and groups, and 1,000 or 10,000 waiting calls with random priorities,
   waits, head-of-queue flags, preferred tellers and recent refusals. Timed, per sample, from
   building the ``Router`` (as ``queue_route`` does for every snapshot) to its answer:

   - *teller frees*: ``Router(...).assign(waiting, [that_teller])`` picks the freed teller's call;
   - *call arrives*: ``Router(...).assign([new_call], free_tellers)`` picks its teller (all 200
     free: the widest search).

2. Offer latency (with ``--production`` or when REDIS_URL is set): a real stack (two daphne
   processes on the DATABASE_URL / REDIS_URL of the environment) with customers waiting and one
   teller connected but on break. One sample is "the teller becomes free → the offer reaches its
   WebSocket client": t0 just before the teller client sends ``presence.set available``, t1 when
   ``call.offer`` arrives on that client. The offered customer then hangs up (the offer is
   withdrawn), the teller goes back on break and the customer calls again, so every sample starts
   from the same state. Other customers keep waiting all along in a language the teller does not
   speak: the router weighs them on every decision but never offers them to this teller.

The last line is machine-readable:
``routing_decision_p99_ms=<x> waiting=1000 tellers=200`` (x: the worse p99 of the two decisions).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from queueing import routing  # noqa: E402  (pure: needs no Django settings)

SKILLS = ["general", "cards", "deposits", "corporate", "loans", "wealth", "forex", "insurance"]
LANGUAGES = {"zh": 0.80, "yue": 0.08, "en": 0.10, "sgn": 0.02}  # of calls
CHANNELS = ["web", "app", "vtm"]
TELLERS = 200
BUSINESSES = 10
NOW = 1_800_000_000.0  # the routing clock, in seconds


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# --- routing decision --------------------------------------------------------------------------


def make_policies(rng: random.Random) -> dict[str, routing.Policy]:
    """Every skill is some business's main skill; two businesses need a second one; minimum
    levels 1-3; most relax over minutes as banks do."""
    policies = {}
    for b in range(BUSINESSES):
        skills = [SKILLS[b % len(SKILLS)]]
        if b >= len(SKILLS):
            skills.append(rng.choice([s for s in SKILLS if s != skills[0]]))
        requirements = tuple(routing.Requirement(s, rng.randint(1, 3)) for s in skills)
        steps = []
        if rng.random() < 0.7:
            steps.append(routing.Step(30, routing.STEP_LOWER, 1))
        if rng.random() < 0.6:
            steps.append(routing.Step(90, routing.STEP_ANY))
        if rng.random() < 0.8:
            steps.append(routing.Step(180, routing.STEP_GROUP, "generalist"))
        policies[f"business_{b}"] = routing.Policy(requirements, tuple(steps))
    return policies


def make_tellers(rng: random.Random) -> list[routing.TellerState]:
    tellers = []
    for i in range(TELLERS):
        languages = {"zh"} if rng.random() < 0.9 else set()
        languages |= {
            lang for lang, p in (("en", 0.4), ("yue", 0.2), ("sgn", 0.05)) if rng.random() < p
        }
        channels = {c for c in CHANNELS if rng.random() < 0.7} or {rng.choice(CHANNELS)}
        tellers.append(
            routing.TellerState(
                id=i + 1,
                skills={s: rng.randint(1, 5) for s in SKILLS if rng.random() < 0.45}
                or {rng.choice(SKILLS): rng.randint(1, 5)},
                languages=frozenset(languages or {"zh"}),
                channels=frozenset(channels),
                groups=frozenset({"generalist"}) if rng.random() < 0.1 else frozenset(),
                idle_since=NOW - rng.uniform(0, 600),
            )
        )
    return tellers


def make_call(rng: random.Random, n: int, businesses: list[str], waited_max_s: float):
    preferred = rng.randint(1, TELLERS) if rng.random() < 0.02 else None
    return routing.CallState(
        id=f"call-{n}",
        business=rng.choice(businesses),
        enqueued_at=NOW - rng.uniform(0, waited_max_s),
        language=rng.choices(list(LANGUAGES), weights=list(LANGUAGES.values()))[0],
        channel=rng.choice(CHANNELS),
        priority=rng.choices([0, 1, 2], weights=[85, 10, 5])[0],
        head=rng.random() < 0.02,
        preferred_teller=preferred,
        preferred_until=NOW + 60 if preferred else 0.0,
        excluded=(
            frozenset(rng.sample(range(1, TELLERS + 1), rng.randint(1, 3)))
            if rng.random() < 0.05
            else frozenset()
        ),
    )


def time_decisions(waiting_n: int, samples: int, seed: int) -> dict[str, list[float]]:
    """Milliseconds per decision, over several random states."""
    out: dict[str, list[float]] = {"teller_frees": [], "call_arrives": []}
    states = 5
    for s in range(states):
        rng = random.Random(seed * 1000 + s)
        policies = make_policies(rng)
        businesses = list(policies)
        tellers = make_tellers(rng)
        waiting = routing.service_order(
            make_call(rng, n, businesses, waited_max_s=300) for n in range(waiting_n)
        )
        new_calls = [make_call(rng, waiting_n + n, businesses, 0) for n in range(samples)]
        freed = [rng.choice(tellers) for _ in range(samples)]
        gc.collect()
        clock = time.perf_counter_ns
        for i in range(samples // states):
            t = clock()
            routing.Router(policies, tellers, NOW).assign(waiting, [freed[i]])
            out["teller_frees"].append((clock() - t) / 1e6)
            t = clock()
            routing.Router(policies, tellers, NOW).assign([new_calls[i]], tellers)
            out["call_arrives"].append((clock() - t) / 1e6)
    return out


def time_no_match(waiting_n: int, samples: int) -> list[float]:
    """The worst case of *teller frees*: nothing waiting is for this teller, so the router looks
    at every waiting call before it gives up."""
    rng = random.Random(waiting_n)
    policies = make_policies(rng)
    tellers = make_tellers(rng)
    waiting = routing.service_order(
        make_call(rng, n, list(policies), waited_max_s=300) for n in range(waiting_n)
    )
    stranger = routing.TellerState(
        id=TELLERS + 1,
        skills={"general": 5},
        languages=frozenset({"fr"}),
        channels=frozenset(CHANNELS),
    )
    out = []
    for _ in range(samples):
        t = time.perf_counter_ns()
        routing.Router(policies, tellers, NOW).assign(waiting, [stranger])
        out.append((time.perf_counter_ns() - t) / 1e6)
    return out


def report_decisions(waiting_n: int, samples: int) -> float:
    no_match = time_no_match(waiting_n, max(50, samples // 20))
    print(
        f"routing decision, {waiting_n} waiting, worst case (the freed teller can take none of "
        f"them, every call is looked at): p50 {percentile(no_match, 50):.3f} ms, "
        f"p99 {percentile(no_match, 99):.3f} ms (not in the p99 below)"
    )
    times = time_decisions(waiting_n, samples, seed=waiting_n)
    worst = 0.0
    for name, label in (
        ("teller_frees", "teller frees → its call"),
        ("call_arrives", "call arrives → its teller"),
    ):
        values = times[name]
        p99 = percentile(values, 99)
        worst = max(worst, p99)
        print(
            f"routing decision, {waiting_n} waiting, {TELLERS} tellers, {label}: "
            f"p50 {percentile(values, 50):.3f} ms, p99 {p99:.3f} ms, max {max(values):.3f} ms "
            f"({len(values)} samples)"
        )
    return worst


# --- offer latency -----------------------------------------------------------------------------


BUSINESS = "card_loss"
OFF_LANGUAGE = "sgn"  # the background customers' language; the bench teller does not speak it


def prepare_database() -> str:
    """Migrate; a teller speaking zh/en only; nobody else available and no call left open by an
    earlier run (this must be a database of the bench's own). Returns the teller's cookie."""
    from django.core.management import call_command
    from django.db import connections

    from queueing.models import OPEN_CALL_STATUSES, Call, PresenceStatus, TellerPresence
    from queueing.services import call_end
    from tests.calls import teller_cookie
    from tests.factories import staff_user

    call_command("migrate", verbosity=0)
    for call in Call.objects.filter(status__in=OPEN_CALL_STATUSES):
        call_end(call_id=call.pk, actor="bench", reason="bench_cleanup")
    TellerPresence.objects.update(status=PresenceStatus.OFFLINE, current_call=None)
    teller = staff_user("bench-router-teller", "teller", languages=("zh", "en"))
    cookie = teller_cookie(teller)
    connections.close_all()
    return cookie


async def measure_offers(urls: list[str], cookie: str, samples: int, waiting: int) -> list[float]:
    from signaling.client import CustomerClient, TellerClient

    teller_url, customer_url = urls[0], urls[-1]  # the offer crosses processes through Redis
    latencies: list[float] = []
    background = [CustomerClient(customer_url) for _ in range(waiting)]
    customer = CustomerClient(customer_url)
    teller = TellerClient(teller_url, cookies=cookie)
    try:
        await teller.connect()
        await teller.send("presence.set", status="break")
        await teller.wait_for("presence")
        for client in background:
            await client.connect()
            await client.call(BUSINESS, language=OFF_LANGUAGE)
        await customer.connect()
        for _ in range(samples):
            call_id = await customer.call(BUSINESS, language="zh")
            for kind in ("queue.snapshot", "presence", "offer.withdrawn", "call.offer"):
                teller.drain(kind)
            for client in [customer, *background]:
                client.drain("queue.position")
            t0 = time.perf_counter()
            await teller.send("presence.set", status="available")
            await teller.next_offer(call_id, timeout=10)
            latencies.append((time.perf_counter() - t0) * 1000)
            await customer.hangup()  # withdraws the offer; the teller is free with nothing to take
            await customer.wait_for("call.ended")
            await teller.wait_for("offer.withdrawn")
            await teller.send("presence.set", status="break")
            while (await teller.wait_for("presence"))["status"] != "break":
                pass
    finally:
        for client in [teller, customer, *background]:
            await client.close()
    return latencies


def run_offer_latency(args) -> float | None:
    """The offer-latency figures; None (with a line saying why) when not on production."""
    if not (args.production or os.environ.get("REDIS_URL")):
        print(
            "offer latency: skipped: it needs the production profile (DATABASE_URL + REDIS_URL "
            "of a database and Redis db of the bench's own; run with --production)"
        )
        return None
    from media_sessions import configure_django, stack_running  # bench/ is this script's folder

    workdir = Path(tempfile.mkdtemp(prefix="videobank-bench-routing-"))
    configure_django(production=True, workdir=workdir)
    from tests.livestack import LiveStack

    cookie = prepare_database()
    stack = LiveStack(log_dir=workdir / "logs", servers=2, media_workers=0, celery=False)
    with stack_running(stack, workdir):
        latencies = asyncio.run(measure_offers(stack.urls, cookie, args.offers, args.waiting))
    p99 = percentile(latencies, 99)
    print(
        f"offer latency (teller presence.set available → call.offer at its client; 2 servers, "
        f"{args.waiting} other calls waiting): p50 {percentile(latencies, 50):.1f} ms, "
        f"p99 {p99:.1f} ms, max {max(latencies):.1f} ms ({len(latencies)} samples)"
    )
    return p99


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=3000, help="decisions timed per case")
    parser.add_argument(
        "--production",
        action="store_true",
        help="also measure offer latency on a real stack (DATABASE_URL + REDIS_URL)",
    )
    parser.add_argument("--offers", type=int, default=200, help="offer-latency samples")
    parser.add_argument(
        "--waiting", type=int, default=20, help="other customers waiting during the offer samples"
    )
    args = parser.parse_args()

    import psutil

    background = psutil.cpu_percent(interval=1.0)
    print(f"machine {background:.0f}% busy before the bench started ({psutil.cpu_count()} cores)")
    worst_10k = report_decisions(10_000, max(250, args.samples // 10))
    print(f"routing_decision_p99_ms={worst_10k:.3f} waiting=10000 tellers={TELLERS}")
    offer_p99 = run_offer_latency(args)
    worst = report_decisions(1000, args.samples)
    if offer_p99 is not None:
        print(f"offer_latency_p99_ms={offer_p99:.1f}")
    print(f"routing_decision_p99_ms={worst:.3f} waiting=1000 tellers={TELLERS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
