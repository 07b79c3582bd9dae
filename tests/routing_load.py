"""Routing under load on the production profile: many customers, few tellers, two servers.

The scenario is shared by the suite (``tests/test_routing_load.py``: a smaller crowd, every
assertion) and the bench (``bench/routing_load.py``: 200 customers, 20 tellers, the figures).

Two server processes share one Postgres and one Redis (plus the media worker that ``offer_accept``
needs registered; no call ever starts media: signaling only). Tellers sign in at random times,
customers arrive at random through either server, a fifth of them with little patience. Tellers
accept most offers, hold the call a moment and hang up; some reject an offer or let it ring out
(the offer timeout is 2 s here), and a teller put on break for missed offers comes back. Once every
call has left the queue, the database must show what a customer and a teller would notice
(:func:`check`):

- no call was ever offered to two tellers at once, and no teller rang for two calls at once;
- no teller held two calls at once, nor was offered a call while holding one;
- every call ended answered or abandoned (none lost, none still open), and what each customer saw
  agrees: it got ``call.answered`` or it left the queue itself.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connections

from queueing import routing
from queueing.models import (
    OPEN_CALL_STATUSES,
    Call,
    CallEvent,
    CallEventKind,
    CallStatus,
    Offer,
    OfferStatus,
    PresenceStatus,
    TellerPresence,
)
from queueing.selectors import routing_policies
from signaling.client import CustomerClient, TellerClient
from tests.calls import orm, teller_cookie, until
from tests.factories import catalogue_seed, staff_user

OFFER_TIMEOUT_S = 2  # an unanswered offer rings this long before it goes elsewhere
HOLD_S = (0.2, 1.5)  # how long a teller keeps a call
IMPATIENT = 0.2  # share of customers who give up after PATIENCE_S
PATIENCE_S = (1.0, 8.0)
REJECT, IGNORE = 0.08, 0.05  # chance a teller declines an offer, lets it ring out
LANGUAGES = {"zh": 0.85, "en": 0.15}
WAIT_ANSWER_S = 60.0  # a patient customer not answered by then is a lost call
DRAIN_S = 30.0  # after the last customer is done, the queue must empty within this
SEED = 20240611


@dataclass(frozen=True)
class Load:
    """How big the crowd is: the bench runs the full one, the suite a smaller one."""

    customers: int = 200
    tellers: int = 20
    arrivals_s: float = 25.0  # customers arrive over this long
    tellers_arrive_s: float = 6.0  # tellers sign in over this long
    generalists: int = 3  # tellers in the generalist group

    def describe(self) -> str:
        return f"{self.customers} customers, {self.tellers} tellers, 2 servers"


FULL = Load()
NOISE = ("queue.position", "queue.snapshot")  # pushed on every queue change; not needed here


# --- the plan ----------------------------------------------------------------------------------


@dataclass
class TellerPlan:
    username: str
    skills: dict[str, int]
    languages: tuple[str, ...]
    groups: tuple[str, ...]
    arrive_at: float


@dataclass
class CustomerPlan:
    n: int
    business: str
    language: str
    elderly: bool
    arrive_at: float
    patience_s: float


def teller_plans(
    rng: random.Random, policies: dict[str, routing.Policy], load: Load
) -> list[TellerPlan]:
    """Random skills and languages, redrawn until every business and language has at least three
    tellers qualified at the business's base level (so no call has to wait for a relaxation step,
    which would take minutes)."""
    skills = sorted({r.skill for p in policies.values() for r in p.requirements})
    while True:
        plans = [
            TellerPlan(
                username=f"load-teller-{i:02d}",
                skills={s: rng.randint(1, 5) for s in skills if rng.random() < 0.6},
                languages=("zh", "en") if rng.random() < 0.5 else ("zh",),
                groups=("generalist",) if i < load.generalists else (),
                arrive_at=rng.uniform(0, load.tellers_arrive_s),
            )
            for i in range(load.tellers)
        ]
        router = routing.Router(policies, [], now=0.0)
        states = [
            routing.TellerState(
                id=i, skills=p.skills, languages=frozenset(p.languages), channels=frozenset(["app"])
            )
            for i, p in enumerate(plans)
        ]
        if all(
            sum(
                router.score(routing.CallState("c", business, 0.0, language, "app"), t, -1)
                is not None
                for t in states
            )
            >= 3
            for business in policies
            for language in LANGUAGES
        ):
            return plans


def customer_plans(rng: random.Random, businesses: list[str], load: Load) -> list[CustomerPlan]:
    return [
        CustomerPlan(
            n=n,
            business=rng.choice(businesses),
            language=rng.choices(list(LANGUAGES), weights=list(LANGUAGES.values()))[0],
            elderly=rng.random() < 0.1,
            arrive_at=rng.uniform(0, load.arrivals_s),
            patience_s=rng.uniform(*PATIENCE_S) if rng.random() < IMPATIENT else WAIT_ANSWER_S,
        )
        for n in range(load.customers)
    ]


# --- the people --------------------------------------------------------------------------------


@dataclass
class CustomerSaw:
    call_id: str = ""
    answered: bool = False  # got call.answered
    left: bool = False  # gave up waiting and closed its socket
    ended: bool = False  # got call.ended after being answered
    waited_s: float = 0.0


@dataclass
class TellerSaw:
    offers: int = 0
    accepted: int = 0
    rejected: int = 0
    ignored: int = 0
    connected: list[str] = field(default_factory=list)
    offered_at: dict[str, float] = field(default_factory=dict)  # call id → wall clock received
    answer_s: list[float] = field(default_factory=list)  # call.accept → call.connected
    errors: Counter = field(default_factory=Counter)
    auto_breaks: int = 0


async def next_message(client, *types: str, timeout: float, stop: asyncio.Event | None = None):
    """The next message of ``types``, dropping the queue broadcasts meanwhile so that they do not
    pile up in the client's buffer; None on timeout or once ``stop`` is set."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not (stop and stop.is_set()):
        for noise in NOISE:
            client.drain(noise)
        try:
            return await client.wait_for(*types, timeout=min(0.5, deadline - time.monotonic()))
        except TimeoutError:
            continue
    return None


async def customer_run(plan: CustomerPlan, url: str, t0: float, saw: CustomerSaw) -> None:
    await asyncio.sleep(max(0.0, t0 + plan.arrive_at - time.monotonic()))  # its arrival time
    async with CustomerClient(url) as customer:
        fields = {"priority": "elderly"} if plan.elderly else {}
        # The channel is not the customer's to say (an enrolled kiosk or a signed app claim
        # proves it): these anonymous customers are web calls.
        await customer.send(
            "call.request", business=plan.business, language=plan.language, **fields
        )
        queued = await customer.wait_for("call.queued", timeout=30)
        saw.call_id = customer.call_id = queued["call_id"]
        started = time.monotonic()
        message = await next_message(
            customer, "call.answered", "call.ended", timeout=plan.patience_s
        )
        saw.waited_s = time.monotonic() - started
        if message is None:
            saw.left = True  # leaving the socket is how a customer gives up
            return
        assert message["type"] == "call.answered", message
        saw.answered = True
        ended = await next_message(customer, "call.ended", timeout=30)
        assert ended is not None, f"customer {plan.n}: answered but never ended"
        saw.ended = True


async def teller_run(
    plan: TellerPlan,
    url: str,
    cookie: str,
    t0: float,
    rng: random.Random,
    stop: asyncio.Event,
    saw: TellerSaw,
) -> None:
    await asyncio.sleep(max(0.0, t0 + plan.arrive_at - time.monotonic()))  # its sign-in time
    async with TellerClient(url, cookies=cookie) as teller:
        await teller.send("presence.set", status="available")
        accepting = 0.0
        while not stop.is_set():
            message = await next_message(
                teller,
                "call.offer",
                "call.connected",
                "presence",
                "error",
                timeout=3600,
                stop=stop,
            )
            if message is None:
                break
            kind = message["type"]
            if kind == "error":
                # An answer that lost a race (the offer rang out or the customer left): the
                # server refuses it and the teller carries on.
                saw.errors[message.get("code")] += 1
            elif kind == "presence":
                if message["status"] == PresenceStatus.BREAK:
                    saw.auto_breaks += 1  # missed offers in a row: back to work
                    await teller.send("presence.set", status="available")
            elif kind == "call.offer":
                saw.offers += 1
                saw.offered_at[message["call_id"]] = time.time()
                roll = rng.random()
                if roll < REJECT:
                    saw.rejected += 1
                    await teller.send("call.reject", call_id=message["call_id"])
                elif roll < REJECT + IGNORE:
                    saw.ignored += 1  # let it ring out
                else:
                    saw.accepted += 1
                    accepting = time.monotonic()
                    await teller.send("call.accept", call_id=message["call_id"])
            elif kind == "call.connected":
                call_id = message["call_id"]
                saw.connected.append(call_id)
                saw.answer_s.append(time.monotonic() - accepting)
                await asyncio.sleep(rng.uniform(*HOLD_S))  # the conversation
                await teller.send("call.hangup", call_id=call_id)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] if ordered else 0.0


# --- the check ---------------------------------------------------------------------------------


def _overlaps(intervals: list[tuple[datetime, datetime | None]]) -> list[tuple]:
    """Pairs of intervals that overlap (an open end counts as still running)."""
    spans = sorted(
        (start, end or datetime.max.replace(tzinfo=start.tzinfo)) for start, end in intervals
    )
    return [(a, b) for a, b in zip(spans, spans[1:], strict=False) if b[0] < a[1]]


def database_view(call_ids: list[str], usernames: list[str]) -> dict:
    try:
        calls = {str(c.pk): c for c in Call.objects.filter(pk__in=call_ids)}
        offers = list(Offer.objects.filter(call_id__in=call_ids))
        events = list(CallEvent.objects.filter(call_id__in=call_ids))
        presences = list(
            TellerPresence.objects.filter(teller__username__in=usernames).select_related("teller")
        )
        return {"calls": calls, "offers": offers, "events": events, "presences": presences}
    finally:
        connections.close_all()


def open_calls(call_ids: list[str]) -> int:
    try:
        return Call.objects.filter(pk__in=call_ids, status__in=OPEN_CALL_STATUSES).count()
    finally:
        connections.close_all()


def prepare(rng: random.Random, load: Load) -> tuple[list[TellerPlan], list[str], list[str]]:
    """The catalogue, and the tellers of the plan as staff users with a session cookie each."""
    catalogue_seed()  # an earlier transactional test may have flushed it
    policies = routing_policies(fresh=True)
    plans = teller_plans(rng, policies, load)
    cookies = []
    for plan in plans:
        user = staff_user(
            plan.username,
            "teller",
            skills=plan.skills,
            languages=plan.languages,
            teller_groups=plan.groups,
        )
        cookies.append(teller_cookie(user))
    return plans, cookies, sorted(policies)


@dataclass
class Outcome:
    """What the people saw, what the database holds once the queue is empty, and when."""

    load: Load
    customers: list[CustomerSaw]
    tellers: list[TellerSaw]
    teller_plans: list[TellerPlan]
    db: dict
    customers_done_s: float
    drained_s: float

    @property
    def call_ids(self) -> list[str]:
        return [saw.call_id for saw in self.customers]


async def run(load: Load, urls: list[str]) -> Outcome:
    """Play the scenario against the servers at ``urls`` (two of them), wait until the queue is
    empty and read the database. The stack must run with ``QUEUE_OFFER_TIMEOUT_S`` =
    :data:`OFFER_TIMEOUT_S` and a short ``QUEUE_WRAP_UP_S``."""
    rng = random.Random(SEED)
    teller_list, cookies, businesses = await orm(prepare, rng, load)
    customer_list = customer_plans(rng, businesses, load)
    stop = asyncio.Event()
    customers = [CustomerSaw() for _ in customer_list]
    tellers = [TellerSaw() for _ in teller_list]

    t0 = time.monotonic()
    teller_tasks = [
        asyncio.create_task(
            teller_run(plan, urls[i % 2], cookie, t0, random.Random(SEED + i), stop, saw)
        )
        for i, (plan, cookie, saw) in enumerate(zip(teller_list, cookies, tellers, strict=True))
    ]
    try:
        async with asyncio.TaskGroup() as group:  # one customer failing stops the others
            for plan, saw in zip(customer_list, customers, strict=True):
                group.create_task(customer_run(plan, urls[plan.n % 2], t0, saw))
        customers_done_s = time.monotonic() - t0
        call_ids = [saw.call_id for saw in customers]

        async def queue_empty() -> bool:
            return await orm(open_calls, call_ids) == 0

        await until(queue_empty, timeout=DRAIN_S, what="every call closed after the last customer")
        drained_s = time.monotonic() - t0
    finally:
        stop.set()
        await asyncio.gather(*teller_tasks)
    db = await orm(database_view, call_ids, [p.username for p in teller_list])
    return Outcome(load, customers, tellers, teller_list, db, customers_done_s, drained_s)


def check(outcome: Outcome) -> None:
    """What customers and tellers would notice, asserted on the database and on what they saw."""
    customers, tellers, call_ids = outcome.customers, outcome.tellers, outcome.call_ids
    db = outcome.db
    calls, offers, events = db["calls"], db["offers"], db["events"]

    # Every customer got a call, and every call of theirs is in the database and closed.
    assert len(set(call_ids)) == outcome.load.customers
    assert set(calls) == set(call_ids)
    statuses = Counter(call.status for call in calls.values())
    assert set(statuses) <= {CallStatus.ENDED, CallStatus.ABANDONED, CallStatus.CALLBACK}, statuses

    # What the customers saw agrees with the database.
    for saw in customers:
        call = calls[saw.call_id]
        if saw.answered:
            assert saw.ended, saw
            assert call.status == CallStatus.ENDED, (saw, call)
            assert call.answered_at is not None, (saw, call)
            assert call.end_reason == "hangup_teller", (saw, call.end_reason)
        else:
            assert saw.left, saw
            # Leaving races with being answered: either way the customer's leaving ended it.
            assert call.status == CallStatus.ABANDONED or (
                call.status == CallStatus.ENDED and call.end_reason == "customer_left"
            ), (saw, call.status, call.end_reason)
    for call in calls.values():
        if call.status == CallStatus.ENDED:
            assert call.answered_at is not None, call
            assert call.teller_id is not None, call
        else:
            assert call.answered_at is None, call

    # A call is offered to one teller at a time; a teller rings for one call at a time.
    assert not [o for o in offers if o.status == OfferStatus.PENDING or o.responded_at is None]
    by_call: dict[str, list] = {}
    by_teller: dict[int, list] = {}
    for offer in offers:
        by_call.setdefault(str(offer.call_id), []).append((offer.created_at, offer.responded_at))
        by_teller.setdefault(offer.teller_id, []).append((offer.created_at, offer.responded_at))
    for call_id, intervals in by_call.items():
        assert not _overlaps(intervals), f"call {call_id} offered to two tellers at once"
    for teller_id, intervals in by_teller.items():
        assert not _overlaps(intervals), f"teller {teller_id} rang for two calls at once"

    # A teller holds one call at a time and is not offered another meanwhile.
    held: dict[int, list] = {}
    for call in calls.values():
        if call.answered_at is not None:
            held.setdefault(call.teller_id, []).append((call.answered_at, call.ended_at))
    for teller_id, intervals in held.items():
        assert not _overlaps(intervals), f"teller {teller_id} held two calls at once"
        for offer in offers:
            if offer.teller_id == teller_id:
                assert not any(start < offer.created_at < end for start, end in intervals), (
                    f"teller {teller_id} offered call {offer.call_id} while in another call"
                )

    # Each answered call was accepted exactly once, by its teller; the timeline agrees.
    accepted = [o for o in offers if o.status == OfferStatus.ACCEPTED]
    assert sorted(str(o.call_id) for o in accepted) == sorted(
        str(c.pk) for c in calls.values() if c.answered_at is not None
    )
    assert all(calls[str(o.call_id)].teller_id == o.teller_id for o in accepted)
    kinds = Counter((str(e.call_id), e.kind) for e in events)
    for call_id, call in calls.items():
        assert kinds[(call_id, CallEventKind.ENQUEUED)] == 1
        assert kinds[(call_id, CallEventKind.OFFERED)] == len(by_call.get(call_id, []))
        assert kinds[(call_id, CallEventKind.ANSWERED)] == (call.answered_at is not None)
        closing = (
            CallEventKind.HUNG_UP if call.status == CallStatus.ENDED else CallEventKind.ABANDONED
        )
        assert kinds[(call_id, closing)] == 1, (call_id, call.status)
    connected = sorted(c for saw in tellers for c in saw.connected)
    assert connected == sorted(str(o.call_id) for o in accepted), "tellers' view differs"

    # Nobody is left ringing or in a call.
    for presence in db["presences"]:
        assert presence.status not in (PresenceStatus.OFFERED, PresenceStatus.BUSY), presence
        assert presence.current_call_id is None, presence


@dataclass
class Figures:
    answered: int
    abandoned: int
    callback: int
    offers: Counter
    auto_breaks: int
    refused: Counter
    wait_p50_s: float
    wait_max_s: float
    delivery_p50_s: float
    delivery_p99_s: float
    answer_p50_s: float
    answer_p99_s: float

    def summary(self, outcome: Outcome) -> str:
        return (
            f"routing load: {outcome.load.describe()}; calls answered {self.answered}, "
            f"abandoned {self.abandoned}, callback {self.callback}; offers made "
            f"{sum(self.offers.values())}: accepted {self.offers[OfferStatus.ACCEPTED]}, "
            f"rejected {self.offers[OfferStatus.REJECTED]}, expired "
            f"{self.offers[OfferStatus.EXPIRED]}, withdrawn {self.offers[OfferStatus.WITHDRAWN]}; "
            f"auto-breaks {self.auto_breaks}, refused answers {dict(self.refused)}; wait to "
            f"answer p50 {self.wait_p50_s:.1f} s, max {self.wait_max_s:.1f} s; offer reaches the "
            f"teller p50 {self.delivery_p50_s:.3f} s, p99 {self.delivery_p99_s:.3f} s; accept → "
            f"connected p50 {self.answer_p50_s:.3f} s, p99 {self.answer_p99_s:.3f} s; customers "
            f"done at {outcome.customers_done_s:.1f} s, queue empty at {outcome.drained_s:.1f} s"
        )


def figures(outcome: Outcome) -> Figures:
    """The numbers of a run: outcomes, offers, waits and latencies."""
    db, tellers = outcome.db, outcome.tellers
    calls, offers = db["calls"], db["offers"]
    statuses = Counter(call.status for call in calls.values())
    waits = sorted(
        (c.answered_at - c.enqueued_at).total_seconds()
        for c in calls.values()
        if c.answered_at is not None
    )
    names = {p.teller_id: p.teller.username for p in db["presences"]}
    seen = {plan.username: saw for plan, saw in zip(outcome.teller_plans, tellers, strict=True)}
    delivery = [
        seen[names[o.teller_id]].offered_at[str(o.call_id)] - o.created_at.timestamp()
        for o in offers
        if str(o.call_id) in seen[names[o.teller_id]].offered_at
    ]
    answer = [s for saw in tellers for s in saw.answer_s]
    return Figures(
        answered=statuses[CallStatus.ENDED],
        abandoned=statuses[CallStatus.ABANDONED],
        callback=statuses[CallStatus.CALLBACK],
        offers=Counter(o.status for o in offers),
        auto_breaks=sum(t.auto_breaks for t in tellers),
        refused=sum((t.errors for t in tellers), Counter()),
        wait_p50_s=statistics.median(waits) if waits else 0.0,
        wait_max_s=waits[-1] if waits else 0.0,
        delivery_p50_s=percentile(delivery, 50),
        delivery_p99_s=percentile(delivery, 99),
        answer_p50_s=percentile(answer, 50),
        answer_p99_s=percentile(answer, 99),
    )
