"""Placing and answering calls with the headless clients, shared by tests and benchmarks.

Both place calls the same way a customer app and a teller console do: over the real sockets of
running server processes, with the headless client in ``signaling/client.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from django.db import connections

from signaling.client import CustomerClient, TellerClient

BUSINESS = "card_loss"


def own_connection(fn, /, *args, **kwargs):
    """Run ``fn`` (ORM work, on a thread of its own) and close that thread's connections after,
    so that the test database can be dropped at the end of the session."""
    try:
        return fn(*args, **kwargs)
    finally:
        connections.close_all()


async def orm(fn, /, *args, **kwargs):
    """Run ``fn`` (ORM work) from async code: in a worker thread (``own_connection``)."""
    return await asyncio.to_thread(own_connection, fn, *args, **kwargs)


async def until(
    condition: Callable[[], Awaitable[object]], *, timeout: float, what: str, every: float = 0.2
):
    """Poll ``condition`` (for state nothing pushes to us) until it is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        await asyncio.sleep(every)  # polling: between checks of a condition, not an event


def teller_cookie(user) -> str:
    """A session cookie for ``user``, made directly in the database (no login page needed)."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


async def answered_call(
    customer: CustomerClient, teller: TellerClient, business: str = BUSINESS
) -> str:
    """The (connected) teller goes available, the customer calls, the router rings the teller,
    who answers; both start media. Other tellers must be busy or offline meanwhile."""
    await teller.go_available()
    call_id = await customer.call(business)
    await teller.next_offer(call_id)
    await teller.accept(call_id)
    await customer.wait_for("call.answered")
    await asyncio.gather(customer.start_media(call_id), teller.start_media(call_id))
    return call_id


async def hang_up(customer: CustomerClient, teller: TellerClient, call_id: str) -> list[dict]:
    """The teller hangs up; returns the ``call.ended`` each side received."""
    await teller.hangup(call_id)
    return list(
        await asyncio.gather(customer.wait_for("call.ended"), teller.wait_for("call.ended"))
    )
