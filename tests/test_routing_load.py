"""Routing under load on the production profile, every assertion of the scenario in
``tests/routing_load.py`` on a crowd small enough for the suite (the 200-customer run is
``bench/routing_load.py``): 60 customers and 8 tellers over 8 s, through two servers."""

from __future__ import annotations

import pytest
from django.conf import settings

from tests import routing_load
from tests.livestack import LiveStack

pytestmark = [
    pytest.mark.production,
    pytest.mark.skipif(
        settings.PROFILE != "production",
        reason="needs the production profile (DATABASE_URL + REDIS_URL); CI runs it",
    ),
    pytest.mark.django_db(transaction=True),
]

# Busy enough that calls wait, offers ring out and tellers get auto-breaks; small enough for CI.
SUITE_LOAD = routing_load.Load(
    customers=60, tellers=8, arrivals_s=8.0, tellers_arrive_s=2.0, generalists=2
)


@pytest.fixture
def stack(transactional_db, no_shared_stack, tmp_path, monkeypatch):
    monkeypatch.setenv("QUEUE_OFFER_TIMEOUT_S", str(routing_load.OFFER_TIMEOUT_S))
    monkeypatch.setenv("QUEUE_WRAP_UP_S", "0.5")  # tellers come back through the ticker
    # Signaling only: the media worker must be registered for offer_accept, but no call starts
    # media, so there is nothing for a Celery worker to finalise.
    live = LiveStack(tmp_path / "stack-logs", servers=2, media_workers=1, celery=False)
    try:
        yield live.start()
    finally:
        print(live.logs())  # pytest shows it only when the test failed
        live.stop()


async def test_customers_and_tellers_through_two_servers(stack, capsys):
    outcome = await routing_load.run(SUITE_LOAD, stack.urls)
    routing_load.check(outcome)
    figures = routing_load.figures(outcome)
    # The crowd exercises what the checks are about: calls answered, offers that rang out or
    # were turned down (13 % of ~70 offers: none at all would be a 1-in-5,000 draw).
    assert figures.answered > SUITE_LOAD.customers // 2, figures
    assert (
        figures.offers[routing_load.OfferStatus.EXPIRED]
        + figures.offers[routing_load.OfferStatus.REJECTED]
        > 0
    ), figures
    with capsys.disabled():
        print("\n" + figures.summary(outcome))
