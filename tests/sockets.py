"""Protocol-speaking WebSocket test clients over the real ASGI router (no server process)."""

from __future__ import annotations

import itertools
import json

from channels.testing import WebsocketCommunicator
from django.test import Client

from tests.factories import staff_user
from videobank.asgi import application

# The page's origin and the host the socket is opened to: the same site (videobank/origin.py).
ORIGIN = (b"origin", b"http://127.0.0.1")
HOST = (b"host", b"127.0.0.1")
_addresses = itertools.count(1)


def next_address() -> str:
    """A client address of its own: every test socket is a customer on a network of its own
    unless a test says otherwise (the queue limits call requests per address)."""
    n = next(_addresses)
    return f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


def session_cookie(username: str, *groups: str) -> bytes:
    user = staff_user(username, *groups)
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def kiosk_registered(name: str = "test kiosk", branch: str = "test branch") -> tuple[int, str]:
    """A kiosk as the admin registers one: its id and its credential (shown once)."""
    from signaling.services import kiosk_create

    kiosk, credential = kiosk_create(name=name, branch=branch, actor="tests")
    return kiosk.pk, credential


def kiosk_cookie(credential: str) -> bytes:
    """The cookie an enrolled kiosk's browser (or kiosk app) carries on the handshake."""
    return f"vtm_kiosk={credential}".encode()


class Socket:
    """A communicator that speaks protocol v1."""

    def __init__(
        self, path: str, cookie: bytes | None = None, *, client: str | None = None
    ) -> None:
        headers = [ORIGIN, HOST] + ([(b"cookie", cookie)] if cookie else [])
        self.comm = WebsocketCommunicator(application, path, headers=headers)
        # The peer address daphne would put in the scope (the application reads the scope
        # once the connection starts, after this).
        self.comm.scope["client"] = [client or next_address(), 50000]

    async def open(self) -> dict:
        connected, _ = await self.comm.connect()
        assert connected
        hello = await self.recv()
        assert hello["type"] == "hello"
        return hello

    async def send(self, type_: str, **fields) -> None:
        await self.comm.send_to(text_data=json.dumps({"type": type_, "v": 1, **fields}))

    async def send_raw(self, text: str | None = None, binary: bytes | None = None) -> None:
        await self.comm.send_to(text_data=text, bytes_data=binary)

    async def recv(self, timeout: float = 5) -> dict:
        return json.loads(await self.comm.receive_from(timeout=timeout))

    async def expect(self, type_: str, timeout: float = 5, where=lambda m: True) -> dict:
        """The next frame of ``type_`` that ``where`` accepts; others are skipped, errors fail
        (unless an error is what is expected)."""
        while True:
            message = await self.recv(timeout)
            assert message["type"] != "error" or type_ == "error", message
            if message["type"] == type_ and where(message):
                return message

    async def pending(self) -> list[dict]:
        """Every frame already delivered and not yet read."""
        frames = []
        while not await self.comm.receive_nothing(timeout=0.2):
            frames.append(await self.recv())
        return frames

    async def alive(self) -> None:
        """The socket still answers after whatever came before."""
        await self.send("ping")
        assert (await self.expect("pong"))["type"] == "pong"

    async def close(self) -> None:
        await self.comm.disconnect()
