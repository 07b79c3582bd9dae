"""The signaling sockets accept a page's socket only from this very site: scheme, host and port.

A page on another port of the same host (another service, a plain-HTTP listener) or served over
the other scheme cannot open a socket, so it cannot ride on a teller's session cookie. Through
the real ASGI router in process (any Host and Origin), and through a real daphne server (the
Host and port a browser would send).
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
import websockets
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from queueing.models import PresenceStatus, TellerPresence
from tests.factories import catalogue_seed
from tests.sockets import session_cookie
from videobank.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True)]

SITE = "127.0.0.1:8000"


@pytest.fixture(autouse=True)
def _quiet(settings):
    settings.MEDIA_WORKER_EMBEDDED = False
    settings.QUEUE_TICKER = "off"


async def opened(path: str, *, origin: str | None, host: str = SITE, cookie=None, extra=()):
    """Try to open a socket; returns (connected, the first frame or None)."""
    headers = [(b"host", host.encode())] if host else []
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if cookie:
        headers.append((b"cookie", cookie))
    headers += list(extra)
    comm = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await comm.connect()
    first = json.loads(await comm.receive_from()) if connected else None
    await comm.disconnect()
    return connected, first


async def test_same_origin_is_accepted():
    connected, hello = await opened("/ws/customer/", origin=f"http://{SITE}")
    assert connected
    assert hello["type"] == "hello"


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:9000",  # another port of this host
        "http://127.0.0.1",  # the same host on the default port
        "https://127.0.0.1:8000",  # another scheme
        "http://localhost:8000",  # another (allowed) host name
        "http://evil.example:8000",
        "null",  # a sandboxed frame or a file: page
        "",
    ],
)
async def test_another_origin_is_refused_before_hello(origin, caplog):
    caplog.set_level(logging.WARNING, logger="videobank.origin")
    connected, first = await opened("/ws/customer/", origin=origin)
    assert (connected, first) == (False, None)  # closed at the handshake: no hello
    assert f"Origin {origin!r} is not this site" in caplog.text


async def test_a_socket_without_origin_is_refused():
    # Browsers always send one; our Python client too. See videobank/origin.py for why.
    assert await opened("/ws/customer/", origin=None) == (False, None)


async def test_a_host_outside_allowed_hosts_is_refused_even_with_a_matching_origin():
    # DNS rebinding: the attacker's name resolves to the bank's server.
    connected, _ = await opened(
        "/ws/customer/", origin="http://rebind.example:8000", host="rebind.example:8000"
    )
    assert not connected


async def test_a_teller_session_on_another_port_opens_nothing():
    """The teller is available on the bank's console; a page on another port of the same host
    tries a socket with the teller's cookie: refused, and the teller stays available (an
    accepted socket closing would have put the teller offline)."""
    await database_sync_to_async(catalogue_seed)()
    cookie = await database_sync_to_async(session_cookie)("teller-origin", "teller")
    await database_sync_to_async(TellerPresence.objects.update_or_create)(
        teller__username="teller-origin",
        defaults={"status": PresenceStatus.AVAILABLE},
        create_defaults={
            "status": PresenceStatus.AVAILABLE,
            "teller": await database_sync_to_async(_user)("teller-origin"),
        },
    )
    connected, first = await opened("/ws/teller/", origin="http://127.0.0.1:9000", cookie=cookie)
    assert (connected, first) == (False, None)
    presence = await database_sync_to_async(TellerPresence.objects.get)(
        teller__username="teller-origin"
    )
    assert presence.status == PresenceStatus.AVAILABLE
    # The same session from the bank's own page works.
    connected, hello = await opened("/ws/teller/", origin=f"http://{SITE}", cookie=cookie)
    assert connected
    assert hello["presence"] == PresenceStatus.AVAILABLE


def _user(username: str):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username=username)


async def test_behind_a_tls_proxy_the_origin_is_https_when_the_proxy_says_so(settings):
    bank = "bank.example"
    settings.ALLOWED_HOSTS = [bank]
    proto = [(b"x-forwarded-proto", b"https")]
    # Without SECURE_PROXY_SSL_HEADER the header is anyone's to send: not believed.
    assert not (await opened("/ws/customer/", origin=f"https://{bank}", host=bank, extra=proto))[0]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert (await opened("/ws/customer/", origin=f"https://{bank}", host=bank, extra=proto))[0]
    assert (await opened("/ws/customer/", origin=f"https://{bank}:443", host=bank, extra=proto))[0]
    # The proxy says HTTPS: a plain-HTTP page of the same host is another origin.
    assert not (await opened("/ws/customer/", origin=f"http://{bank}", host=bank, extra=proto))[0]
    assert not (await opened("/ws/customer/", origin=f"https://{bank}:8443", host=bank))[0]


async def test_behind_a_proxy_that_rewrites_the_host_the_forwarded_host_counts(settings):
    settings.ALLOWED_HOSTS = ["bank.example"]
    forwarded = [(b"x-forwarded-host", b"bank.example")]
    internal = "videobank-7.internal:8001"  # what the proxy connects to
    # Not believed unless the deployment says its proxy sets it.
    assert not (
        await opened("/ws/customer/", origin="http://bank.example", host=internal, extra=forwarded)
    )[0]
    settings.USE_X_FORWARDED_HOST = True
    assert (
        await opened("/ws/customer/", origin="http://bank.example", host=internal, extra=forwarded)
    )[0]
    assert not (
        await opened("/ws/customer/", origin=f"http://{internal}", host=internal, extra=forwarded)
    )[0]


async def test_csrf_trusted_origins_are_matched_by_scheme_host_and_port(settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.bank.example", "https://*.branch.example"]
    for origin, accepted in [
        ("https://app.bank.example", True),
        ("https://app.bank.example:443", True),
        ("https://app.bank.example:8443", False),
        ("http://app.bank.example", False),
        ("https://kiosk-7.branch.example", True),
        ("https://branch.example.evil.example", False),
    ]:
        connected, _ = await opened("/ws/customer/", origin=origin)
        assert connected is accepted, origin


async def test_a_real_server_refuses_a_page_of_another_port(live_stack):
    url = live_stack.url  # http://127.0.0.1:<port>
    socket_url = "ws" + url.removeprefix("http") + "/ws/customer/"
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(socket_url, origin=Origin(f"http://127.0.0.1:{port + 1}"))
    assert refused.value.response.status_code == 403
    async with websockets.connect(socket_url, origin=Origin(url)) as sock:
        hello = json.loads(await asyncio.wait_for(sock.recv(), 10))
    assert hello["type"] == "hello"
