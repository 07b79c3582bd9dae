"""Queue transitions: what tellers and customers would notice if they went wrong."""

from __future__ import annotations

import threading

import pytest
from django.db import close_old_connections
from django.utils import timezone

from queueing import selectors, services
from queueing.errors import Conflict, Forbidden, MediaUnavailable
from queueing.models import Call, CallEvent, CallStatus, PresenceStatus, TellerPresence
from recordings.models import Recording
from signaling.models import MediaWorker
from tests.factories import staff_user


@pytest.fixture
def media_worker(db):
    return MediaWorker.objects.create(
        channel_name="media.unit-test", host="test", pid=1, heartbeat_at=timezone.now()
    )


def available(username: str):
    teller = staff_user(username, "teller")
    services.teller_presence_set(teller=teller, status=PresenceStatus.AVAILABLE)
    return teller


@pytest.mark.django_db
def test_positions_are_first_come_first_served_per_business(catalogue):
    a = services.call_enqueue(business_key="card_loss")
    b = services.call_enqueue(business_key="password_reset")
    c = services.call_enqueue(business_key="card_loss")
    places = {p.call_id: (p.position, p.waiting) for p in selectors.queue_places()}
    assert places == {a.id: (1, 2), b.id: (1, 1), c.id: (2, 2)}
    services.call_end(call_id=a.id, actor="customer", reason="customer_left")
    assert selectors.queue_place(call_id=c.id).position == 1


@pytest.mark.django_db
def test_claim_connects_records_and_makes_the_teller_busy(catalogue, media_worker):
    teller = available("teller1")
    call = services.call_enqueue(business_key="card_loss")
    connected = services.call_claim(call_id=call.id, teller=teller)
    assert connected.status == CallStatus.CONNECTED
    assert connected.media_channel == media_worker.channel_name
    assert Recording.objects.filter(call=call).exists()
    presence = TellerPresence.objects.get(teller=teller)
    assert (presence.status, presence.current_call_id) == (PresenceStatus.BUSY, call.id)
    kinds = list(CallEvent.objects.filter(call=call).values_list("kind", flat=True))
    assert kinds[:3] == ["enqueued", "offered", "answered"]


@pytest.mark.django_db
def test_a_teller_must_be_available_to_take_a_call(catalogue, media_worker):
    teller = staff_user("teller1", "teller")
    call = services.call_enqueue(business_key="card_loss")
    with pytest.raises(Conflict):
        services.call_claim(call_id=call.id, teller=teller)
    assert Call.objects.get(pk=call.id).status == CallStatus.WAITING


@pytest.mark.django_db
def test_an_offer_can_only_be_accepted_by_its_teller(catalogue, media_worker):
    teller1, teller2 = available("teller1"), available("teller2")
    call = services.call_enqueue(business_key="card_loss")
    offer = services.call_offer(call_id=call.id, teller=teller1)
    with pytest.raises(Forbidden):
        services.offer_accept(offer_id=offer.pk, teller=teller2)
    assert services.offer_accept(offer_id=offer.pk, teller=teller1).teller == teller1


@pytest.mark.django_db
def test_no_media_worker_keeps_the_call_waiting(catalogue):
    teller = available("teller1")
    call = services.call_enqueue(business_key="card_loss")
    with pytest.raises(MediaUnavailable):
        services.call_claim(call_id=call.id, teller=teller)
    assert Call.objects.get(pk=call.id).status == CallStatus.WAITING
    assert TellerPresence.objects.get(teller=teller).status == PresenceStatus.AVAILABLE


@pytest.mark.django_db
def test_hangup_frees_the_teller_and_is_idempotent(catalogue, media_worker):
    teller = available("teller1")
    call = services.call_enqueue(business_key="card_loss")
    services.call_claim(call_id=call.id, teller=teller)
    ended = services.call_end(call_id=call.id, actor="customer", reason="hangup_customer")
    assert (ended.status, ended.end_reason) == (CallStatus.ENDED, "hangup_customer")
    again = services.call_end(call_id=call.id, actor="teller", reason="hangup_teller")
    assert again.end_reason == "hangup_customer"
    assert TellerPresence.objects.get(teller=teller).status == PresenceStatus.AVAILABLE
    assert CallEvent.objects.filter(call=call, kind="hung_up").count() == 1


@pytest.mark.django_db
def test_abandoning_while_offered_frees_the_offered_teller(catalogue):
    teller = available("teller1")
    call = services.call_enqueue(business_key="card_loss")
    services.call_offer(call_id=call.id, teller=teller)
    ended = services.call_end(call_id=call.id, actor="customer", reason="customer_left")
    assert ended.status == CallStatus.ABANDONED
    assert TellerPresence.objects.get(teller=teller).status == PresenceStatus.AVAILABLE


@pytest.mark.django_db(transaction=True)
def test_two_tellers_racing_for_one_call_only_one_wins(catalogue, media_worker):
    tellers = [available(f"teller{i}") for i in range(4)]
    call = services.call_enqueue(business_key="card_loss")
    barrier = threading.Barrier(len(tellers))
    results: list[str] = []

    def claim(teller):
        barrier.wait()
        try:
            services.call_claim(call_id=call.id, teller=teller)
            results.append("won")
        except Conflict:
            results.append("lost")
        finally:
            close_old_connections()

    threads = [threading.Thread(target=claim, args=(t,)) for t in tellers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["lost", "lost", "lost", "won"]
    busy = TellerPresence.objects.filter(status=PresenceStatus.BUSY).count()
    assert busy == 1
    assert TellerPresence.objects.filter(status=PresenceStatus.OFFERED).count() == 0
