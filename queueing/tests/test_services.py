"""Queue and routing rules, on a clock the tests move by hand."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from django.db import close_old_connections
from django.utils import timezone

from queueing import clock, selectors, services
from queueing.errors import Conflict, Forbidden, MediaUnavailable
from queueing.models import (
    Call,
    CallEvent,
    CallStatus,
    MediaWorker,
    Offer,
    OfferStatus,
    PresenceStatus,
    Priority,
    TellerPresence,
)
from recordings.models import Recording
from tests.factories import staff_user


@pytest.fixture
def at(db, settings):
    """A frozen clock: ``at(seconds)`` moves it to T0 + seconds and returns that moment."""
    settings.QUEUE_WRAP_UP_S = 10
    base = timezone.now().replace(microsecond=0)

    def move(seconds: float) -> datetime:
        moment = base + timedelta(seconds=seconds)
        clock.set_now(moment)
        # The media worker's heartbeat is judged by the same clock.
        MediaWorker.objects.update(heartbeat_at=moment)
        return moment

    move(0)
    yield move
    clock.set_now(None)


@pytest.fixture
def media_worker(db):
    return MediaWorker.objects.create(
        channel_name="media.unit-test", host="test", pid=1, heartbeat_at=timezone.now()
    )


def teller(username: str, *, available_at: float | None = None, at=None, **profile):
    user = staff_user(username, "teller", **profile)
    if available_at is not None:
        at(available_at)
        services.teller_presence_set(teller=user, status=PresenceStatus.AVAILABLE)
    return user


def on_break(username: str, skills: dict, at):
    user = teller(username, skills=skills, at=at)
    services.teller_presence_set(teller=user, status=PresenceStatus.BREAK, reason="meeting")
    return user


def offered_to(call: Call):
    offer = Offer.objects.filter(call=call, status=OfferStatus.PENDING).first()
    return offer.teller.username if offer else None


def presence(user) -> str:
    return TellerPresence.objects.get(teller=user).status


# --- who gets the call ---------------------------------------------------------------------------


def test_only_tellers_with_the_skill_at_the_level_are_offered(at, catalogue):
    expert = teller("expert", skills={"corporate": 4}, at=at)
    services.teller_presence_set(teller=expert, status=PresenceStatus.BREAK, reason="lunch")
    teller("novice", skills={"corporate": 2}, available_at=0, at=at)
    at(1)
    call = services.call_enqueue(business_key="corporate_account")  # needs corporate >= 3
    assert offered_to(call) is None  # the expert is logged in (on a break): no relaxing yet
    at(2)
    services.teller_presence_set(teller=expert, status=PresenceStatus.AVAILABLE)
    assert offered_to(call) == "expert"


def test_language_and_channel_must_match(at, catalogue):
    teller("mandarin", languages=("zh",), channels=("web",), available_at=0, at=at)
    call = services.call_enqueue(business_key="card_loss", language="en", channel="web")
    assert offered_to(call) is None
    vtm = services.call_enqueue(business_key="card_loss", language="zh", channel="vtm")
    assert offered_to(vtm) is None
    web = services.call_enqueue(business_key="card_loss", language="zh", channel="web")
    assert offered_to(web) == "mandarin"


def test_closest_skill_match_then_longest_idle(at, catalogue):
    teller("overqualified", skills={"cards": 5}, available_at=0, at=at)
    teller("exact_late", skills={"cards": 2}, available_at=20, at=at)
    teller("exact_early", skills={"cards": 2}, available_at=10, at=at)
    at(30)
    first = services.call_enqueue(business_key="card_loss")  # needs cards >= 2
    assert offered_to(first) == "exact_early"  # exact match beats the longer-idle expert
    second = services.call_enqueue(business_key="card_loss")
    assert offered_to(second) == "exact_late"
    third = services.call_enqueue(business_key="card_loss")
    assert offered_to(third) == "overqualified"


def test_priority_classes_go_first(at, catalogue):
    at(0)
    normal = services.call_enqueue(business_key="card_loss")
    at(1)
    elderly = services.call_enqueue(business_key="card_loss", priority=Priority.ELDERLY)
    at(2)
    vip = services.call_enqueue(business_key="card_loss", priority=Priority.VIP)
    places = {p.call_id: p.position for p in selectors.queue_places()}
    assert [places[c.id] for c in (vip, elderly, normal)] == [1, 2, 3]
    teller("t1", available_at=3, at=at)
    assert offered_to(vip) == "t1"


def test_a_preferred_teller_is_waited_for_until_the_preference_expires(at, catalogue, settings):
    settings.QUEUE_PREFER_SAME_TELLER_S = 60
    favourite = teller("favourite", at=at)
    teller("other", available_at=0, at=at)
    at(1)
    call = services.call_enqueue(business_key="card_loss", preferred_teller_id=favourite.pk)
    assert offered_to(call) is None  # "other" is free, but the customer asked for favourite
    at(30)
    services.teller_presence_set(teller=favourite, status=PresenceStatus.AVAILABLE)
    assert offered_to(call) == "favourite"


def test_preference_expires_and_anyone_qualified_takes_the_call(at, catalogue, settings):
    settings.QUEUE_PREFER_SAME_TELLER_S = 60
    favourite = teller("favourite", at=at)
    teller("other", available_at=0, at=at)
    call = services.call_enqueue(business_key="card_loss", preferred_teller_id=favourite.pk)
    services.queue_tick(now=at(59))
    assert offered_to(call) is None
    services.queue_tick(now=at(61))
    assert offered_to(call) == "other"


# --- relaxation ----------------------------------------------------------------------------------


def test_each_relaxation_step_fires_at_its_time(at, catalogue):
    # card_loss needs cards >= 2; after 30 s one level lower, after 90 s any level,
    # after 180 s the generalist group (see migration 0004).
    on_break("expert", {"cards": 3}, at)  # logged in: the base step can be met
    teller("one_level_low", skills={"cards": 1, "general": 1}, available_at=0, at=at)
    call = services.call_enqueue(business_key="card_loss")
    services.queue_tick(now=at(29))
    assert offered_to(call) is None
    services.queue_tick(now=at(30))
    assert offered_to(call) == "one_level_low"


def test_any_level_then_generalist_steps(at, catalogue, settings):
    settings.QUEUE_REOFFER_AFTER_S = 300  # a teller who declined is not asked again meanwhile
    on_break("expert", {"corporate": 4}, at)  # logged in: no step is impossible
    teller(
        "generalist", skills={"general": 1}, teller_groups=("generalist",), available_at=0, at=at
    )
    call = services.call_enqueue(business_key="corporate_account")  # corporate >= 3
    services.queue_tick(now=at(100))
    assert offered_to(call) is None  # 'any level' still needs the corporate skill
    teller("corp_level_1", skills={"corporate": 1}, available_at=101, at=at)
    assert offered_to(call) == "corp_level_1"  # the 90 s 'any level' step is in force
    pending = Offer.objects.get(call=call, status=OfferStatus.PENDING)
    services.offer_reject(call_id=call.id, teller=pending.teller)
    services.queue_tick(now=at(179))
    assert offered_to(call) is None  # corp_level_1 declined; the generalist waits for 180 s
    services.queue_tick(now=at(180))
    assert offered_to(call) == "generalist"


def test_a_step_nobody_logged_in_can_meet_is_skipped_at_once(at, catalogue):
    # Nobody logged in has the corporate skill: the 30 s and 90 s steps cannot help, the call
    # goes straight to the generalist group's step instead of waiting 180 s.
    teller(
        "generalist", skills={"general": 1}, teller_groups=("generalist",), available_at=0, at=at
    )
    at(1)
    call = services.call_enqueue(business_key="corporate_account")
    assert offered_to(call) == "generalist"


def test_a_step_is_not_skipped_when_a_qualified_teller_is_merely_busy(at, catalogue, media_worker):
    expert = teller("expert", skills={"corporate": 4}, available_at=0, at=at)
    first = services.call_enqueue(business_key="corporate_account")
    services.offer_accept(call_id=first.id, teller=expert)  # the expert is busy now
    teller(
        "generalist", skills={"general": 1}, teller_groups=("generalist",), available_at=1, at=at
    )
    second = services.call_enqueue(business_key="corporate_account")
    services.queue_tick(now=at(60))
    assert offered_to(second) is None  # the expert is logged in: no skipping to generalists
    services.queue_tick(now=at(181))
    assert offered_to(second) == "generalist"


# --- offers --------------------------------------------------------------------------------------


def test_offer_timeout_reoffers_to_the_next_teller(at, catalogue, settings):
    settings.QUEUE_OFFER_TIMEOUT_S = 15
    teller("first", available_at=0, at=at)
    teller("second", available_at=1, at=at)
    at(2)
    call = services.call_enqueue(business_key="card_loss")
    assert offered_to(call) == "first"
    services.queue_tick(now=at(16))
    assert offered_to(call) == "first"
    services.queue_tick(now=at(17))
    assert offered_to(call) == "second"
    assert Offer.objects.get(call=call, teller__username="first").status == OfferStatus.EXPIRED


def test_reject_reoffers_to_the_next_teller(at, catalogue):
    first = teller("first", available_at=0, at=at)
    teller("second", available_at=1, at=at)
    at(2)
    call = services.call_enqueue(business_key="card_loss")
    services.offer_reject(call_id=call.id, teller=first)
    assert offered_to(call) == "second"
    assert presence(first) == PresenceStatus.AVAILABLE


def test_two_missed_offers_in_a_row_put_the_teller_on_break(at, catalogue, settings):
    settings.QUEUE_OFFER_TIMEOUT_S = 15
    sleepy = teller("sleepy", available_at=0, at=at)
    call1 = services.call_enqueue(business_key="card_loss")
    services.queue_tick(now=at(16))
    assert presence(sleepy) == PresenceStatus.AVAILABLE  # one miss
    services.call_end(call_id=call1.id, actor="customer", reason="customer_left")
    call2 = services.call_enqueue(business_key="card_loss")
    assert offered_to(call2) == "sleepy"
    services.queue_tick(now=at(40))
    state = TellerPresence.objects.get(teller=sleepy)
    assert (state.status, state.break_reason) == (PresenceStatus.BREAK, "missed_offers")
    assert offered_to(call2) is None


def test_accepting_resets_the_miss_count(at, catalogue, media_worker, settings):
    settings.QUEUE_OFFER_TIMEOUT_S = 15
    t = teller("t", available_at=0, at=at)
    services.call_enqueue(business_key="card_loss")
    services.queue_tick(now=at(16))  # one miss
    assert TellerPresence.objects.get(teller=t).missed_offers == 1
    call2 = services.call_enqueue(business_key="card_loss")
    services.offer_accept(call_id=call2.id, teller=t)
    assert TellerPresence.objects.get(teller=t).missed_offers == 0


def test_only_the_offered_teller_can_accept(at, catalogue, media_worker):
    teller("first", available_at=0, at=at)
    second = teller("second", at=at)
    call = services.call_enqueue(business_key="card_loss")
    with pytest.raises(Forbidden):
        services.offer_accept(call_id=call.id, teller=second)


def test_no_media_worker_keeps_the_offer_ringing(at, catalogue):
    first = teller("first", available_at=0, at=at)
    call = services.call_enqueue(business_key="card_loss")
    with pytest.raises(MediaUnavailable):
        services.offer_accept(call_id=call.id, teller=first)
    assert Call.objects.get(pk=call.id).status == CallStatus.OFFERED


# --- after the call -----------------------------------------------------------------------------


def test_wrap_up_then_available_and_offered_the_next_call(at, catalogue, media_worker, settings):
    settings.QUEUE_WRAP_UP_S = 10
    t = teller("t", available_at=0, at=at)
    call1 = services.call_enqueue(business_key="card_loss")
    services.offer_accept(call_id=call1.id, teller=t)
    at(5)
    call2 = services.call_enqueue(business_key="card_loss")
    services.call_end(call_id=call1.id, actor="customer", reason="hangup_customer")
    assert presence(t) == PresenceStatus.WRAP_UP
    services.queue_tick(now=at(14))
    assert offered_to(call2) is None
    services.queue_tick(now=at(15))
    assert offered_to(call2) == "t"


def test_hangup_is_idempotent(at, catalogue, media_worker):
    t = teller("t", available_at=0, at=at)
    call = services.call_enqueue(business_key="card_loss")
    services.offer_accept(call_id=call.id, teller=t)
    assert Recording.objects.filter(call=call).exists()
    ended = services.call_end(call_id=call.id, actor="customer", reason="hangup_customer")
    again = services.call_end(call_id=call.id, actor="teller", reason="hangup_teller")
    assert (ended.status, again.end_reason) == (CallStatus.ENDED, "hangup_customer")
    assert CallEvent.objects.filter(call=call, kind="hung_up").count() == 1


def test_abandonment_is_counted_and_frees_the_ringing_teller(at, catalogue):
    t = teller("t", available_at=0, at=at)
    call = services.call_enqueue(business_key="card_loss")
    assert offered_to(call) == "t"
    services.call_end(call_id=call.id, actor="customer", reason="customer_left")
    assert Call.objects.get(pk=call.id).status == CallStatus.ABANDONED
    assert presence(t) == PresenceStatus.AVAILABLE
    from queueing.stats import wallboard

    assert wallboard()["overall"]["abandoned"] == 1


def test_callback_is_offered_after_the_maximum_wait(at, catalogue, settings):
    settings.QUEUE_MAX_WAIT_S = 120
    call = services.call_enqueue(business_key="card_loss")
    services.queue_tick(now=at(119))
    assert Call.objects.get(pk=call.id).callback_offered_at is None
    services.queue_tick(now=at(120))
    assert Call.objects.get(pk=call.id).callback_offered_at is not None
    services.call_request_callback(call_id=call.id)
    after = Call.objects.get(pk=call.id)
    assert (after.status, after.end_reason) == (CallStatus.CALLBACK, "callback_requested")


def test_teller_drop_requeues_the_customer_at_the_head(at, catalogue, media_worker):
    dropped = teller("dropped", available_at=0, at=at)
    call = services.call_enqueue(business_key="card_loss")
    services.offer_accept(call_id=call.id, teller=dropped)
    recording = Recording.objects.get(call=call)
    at(10)
    later = services.call_enqueue(business_key="card_loss")  # waiting, nobody free
    services.call_requeue_after_teller_drop(call_id=call.id, teller=dropped)
    assert presence(dropped) == PresenceStatus.OFFLINE
    places = {p.call_id: p.position for p in selectors.queue_places()}
    assert (places[call.id], places[later.id]) == (1, 2)  # back in front of the later call
    rescuer = teller("rescuer", available_at=11, at=at)
    assert offered_to(call) == "rescuer"
    services.offer_accept(call_id=call.id, teller=rescuer)
    assert Recording.objects.get(call=call) == recording  # one recording for the whole call
    assert Call.objects.get(pk=call.id).media_channel == media_worker.channel_name


# --- concurrency ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_racing_routers_never_double_offer(catalogue):
    tellers = [staff_user(f"teller{i}", "teller") for i in range(6)]
    calls = [services.call_enqueue(business_key="card_loss") for _ in range(4)]
    barrier = threading.Barrier(len(tellers))

    def go_available(user):
        barrier.wait()
        try:
            services.teller_presence_set(teller=user, status=PresenceStatus.AVAILABLE)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=go_available, args=(t,)) for t in tellers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pending = list(Offer.objects.filter(status=OfferStatus.PENDING))
    assert len(pending) == len(calls)
    assert len({o.call_id for o in pending}) == len(calls)
    assert len({o.teller_id for o in pending}) == len(calls)
    assert TellerPresence.objects.filter(status=PresenceStatus.OFFERED).count() == len(calls)


def test_presence_cannot_change_while_ringing(at, catalogue):
    t = teller("t", available_at=0, at=at)
    services.call_enqueue(business_key="card_loss")
    with pytest.raises(Conflict):
        services.teller_presence_set(teller=t, status=PresenceStatus.OFFLINE)
