"""A headless Python client of the signaling protocol, with aiortc media.

For app integrators (the app speaks the same protocol as the web page), and for our own tests
and benchmarks, which place and answer calls without a browser::

    async with CustomerClient("http://127.0.0.1:8000") as customer:
        call_id = await customer.call("card_loss")
        await customer.wait_for("call.answered")
        await customer.start_media()
        ...
        await customer.hangup()

Who the customer is comes from proof, not from what the client says: an app passes the claim its
bank's backend signed for this call (``call(..., claim=...)``: channel ``app``, VIP if the bank
says so); a kiosk app presents its credential (``CustomerClient(url, kiosk_credential=...)``: the
``vtm_kiosk`` cookie on the handshake, channel ``vtm``, and the only socket whose
``peripheral(...)`` reports count). Without either the call is a web call.
"""

from __future__ import annotations

import asyncio
import fractions
import http.cookiejar
import json
import math
import time
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any

import numpy as np
import websockets
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import AUDIO_PTIME, MediaStreamError, MediaStreamTrack
from av import AudioFrame, VideoFrame
from websockets.typing import Origin

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

PROTOCOL_VERSION = 1
KIOSK_COOKIE = "vtm_kiosk"  # the kiosk credential's cookie (signaling.access.KIOSK_COOKIE)


class ServerError(Exception):
    def __init__(self, message: dict):
        super().__init__(f"{message.get('code')}: {message.get('detail')}")
        self.code = message.get("code")
        self.detail = message.get("detail")


class PatternVideoTrack(VideoStreamTrack):
    """A moving test pattern, paced at 15 fps like a browser camera on a bank call."""

    def __init__(self, width: int = 640, height: int = 480, fps: int = 15) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        y = np.arange(height, dtype=np.uint16)[:, None]
        x = np.arange(width, dtype=np.uint16)[None, :]
        self._base = ((x + y) % 256).astype(np.uint8)
        self._n = 0
        self._began: float | None = None  # not _start: VideoStreamTrack keeps its own there

    async def recv(self) -> VideoFrame:
        if self._began is None:
            self._began = time.monotonic()
        target = self._began + self._n / self.fps
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing a media source, not waiting on an event
        luma = np.roll(self._base, self._n * 4, axis=1)
        yuv = np.concatenate(
            [luma, np.full((self.height // 2, self.width), 128, dtype=np.uint8)], axis=0
        )
        frame = VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = int(self._n * 90000 / self.fps)
        frame.time_base = fractions.Fraction(1, 90000)
        self._n += 1
        return frame


class ToneAudioTrack(MediaStreamTrack):
    """A 440 Hz tone in 20 ms frames, paced in real time."""

    kind = "audio"

    def __init__(self, frequency: float = 440.0, rate: int = 48000) -> None:
        super().__init__()
        self.rate = rate
        self.samples = int(AUDIO_PTIME * rate)
        t = np.arange(self.samples * 50) / rate
        self._wave = (np.sin(2 * math.pi * frequency * t) * 8000).astype(np.int16)
        self._n = 0
        self._start: float | None = None

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        target = self._start + self._n * AUDIO_PTIME
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing a media source
        offset = (self._n % 50) * self.samples
        chunk = self._wave[offset : offset + self.samples]
        frame = AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.rate
        frame.pts = self._n * self.samples
        frame.time_base = fractions.Fraction(1, self.rate)
        self._n += 1
        return frame


class _Client:
    path = ""

    def __init__(self, base_url: str, *, cookies: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.cookies = cookies
        self.ws: ClientConnection | None = None
        self.pc: RTCPeerConnection | None = None
        self.ice_servers: list[dict] = []
        self.hello: dict | None = None
        self.received: dict[str, int] = {"audio": 0, "video": 0}
        self.first_frame_at: dict[str, float] = {}
        self.last_frame_at: dict[str, float] = {}
        self.media_state: str | None = None
        self._inbox: asyncio.Queue = asyncio.Queue()
        self._waiters: list[tuple[set[str], asyncio.Future]] = []
        self._backlog: list[dict] = []
        self._reader: asyncio.Task | None = None
        self._sinks: list[asyncio.Task] = []

    async def __aenter__(self):
        await self.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def connect(self) -> None:
        ws_url = "ws" + self.base_url[len("http") :] + self.path
        headers = {"Cookie": self.cookies} if self.cookies else None
        self.ws = await websockets.connect(
            ws_url, origin=Origin(self.base_url), additional_headers=headers, max_size=2**20
        )
        self._reader = asyncio.ensure_future(self._read())
        self.hello = await self.wait_for("hello")
        self.ice_servers = self.hello.get("ice_servers", [])  # STUN only, until a call connects

    async def _read(self) -> None:
        try:
            async for raw in self._socket():
                message = json.loads(raw)
                if message.get("type") == "media.state":
                    self.media_state = message.get("state")
                if message.get("type") in ("call.answered", "call.connected"):
                    # The ICE servers for this call (TURN with a short-lived credential).
                    self.ice_servers = message.get("ice_servers", self.ice_servers)
                for types, future in list(self._waiters):
                    if (
                        message["type"] in types or message["type"] == "error"
                    ) and not future.done():
                        future.set_result(message)
                        self._waiters.remove((types, future))
                        break
                else:
                    self._backlog.append(message)
        except Exception:  # noqa: S110 - the socket closed; waiters time out with a clear error
            pass

    def _socket(self) -> ClientConnection:
        if self.ws is None:
            raise RuntimeError(
                "Not connected: call connect() (or use the client with 'async with')."
            )
        return self.ws

    async def send(self, type_: str, **fields: Any) -> None:
        await self._socket().send(json.dumps({"type": type_, "v": PROTOCOL_VERSION, **fields}))

    async def send_raw(self, text: str) -> None:
        await self._socket().send(text)

    async def wait_for(self, *types: str, timeout: float = 20.0) -> dict:
        """The next message of one of ``types`` (earlier unread ones first); errors raise."""
        wanted = set(types)
        for i, message in enumerate(self._backlog):
            if message["type"] in wanted or message["type"] == "error":
                del self._backlog[i]
                return self._check(message, wanted)
        future = asyncio.get_running_loop().create_future()
        entry = (wanted, future)
        self._waiters.append(entry)
        try:
            # Shielded: a message handed over while the timeout fires must not be lost.
            message = await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            if entry in self._waiters:
                self._waiters.remove(entry)
            if not future.done():
                future.cancel()
                raise TimeoutError(f"no {sorted(wanted)} within {timeout} s") from None
            message = future.result()  # it arrived at the last moment
        return self._check(message, wanted)

    @staticmethod
    def _check(message: dict, wanted: set[str]) -> dict:
        if message["type"] == "error" and "error" not in wanted:
            raise ServerError(message)
        return message

    def drain(self, type_: str) -> list[dict]:
        """Remove and return buffered messages of one type (e.g. old position updates)."""
        out = [m for m in self._backlog if m["type"] == type_]
        self._backlog = [m for m in self._backlog if m["type"] != type_]
        return out

    async def start_media(
        self, call_id: str, *, video: MediaStreamTrack | None = None, audio=None
    ) -> None:
        config = RTCConfiguration(iceServers=[RTCIceServer(**s) for s in self.ice_servers])
        self.pc = RTCPeerConnection(configuration=config)
        self.pc.addTrack(audio or ToneAudioTrack())
        self.pc.addTrack(video or PatternVideoTrack())

        @self.pc.on("track")
        def on_track(track):
            self._sinks.append(asyncio.ensure_future(self._sink(track)))

        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self.send("webrtc.offer", call_id=call_id, sdp=self.pc.localDescription.sdp)
        answer = await self.wait_for("webrtc.answer")
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))

    async def _sink(self, track) -> None:
        while True:
            try:
                await track.recv()
            except MediaStreamError:
                return
            now = time.monotonic()
            self.received[track.kind] += 1
            self.first_frame_at.setdefault(track.kind, now)
            self.last_frame_at[track.kind] = now

    async def wait_media(self, *, video: int = 10, audio: int = 10, timeout: float = 20.0) -> None:
        """Until this client has received at least that many video and audio frames."""
        deadline = time.monotonic() + timeout
        while self.received["video"] < video or self.received["audio"] < audio:
            if time.monotonic() > deadline:
                raise TimeoutError(f"media not flowing: received {self.received}")
            await asyncio.sleep(0.05)  # polled counter; the frames arrive on other tasks

    async def close(self) -> None:
        for task in self._sinks:
            task.cancel()
        if self.pc is not None:
            await self.pc.close()
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()


class CustomerClient(_Client):
    path = "/ws/customer/"
    call_id: str | None = None
    token: str | None = None

    def __init__(self, base_url: str, *, kiosk_credential: str | None = None, **kwargs) -> None:
        if kiosk_credential:
            kwargs["cookies"] = f"{KIOSK_COOKIE}={kiosk_credential}"
        super().__init__(base_url, **kwargs)

    @property
    def channel(self) -> str | None:
        """The channel the server recognised at the handshake (``vtm`` or ``web``)."""
        return (self.hello or {}).get("channel")

    async def call(
        self,
        business: str,
        *,
        language: str = "zh",
        claim: str | None = None,
        expect_channel: str | None = None,
    ) -> str:
        """Place a call. ``claim``: the app claim the bank's backend signed (makes it an app
        call); ``expect_channel``: refuse (``ServerError`` forbidden) rather than place a call
        on another channel, e.g. a kiosk app whose credential was rotated."""
        fields: dict[str, Any] = {"business": business, "language": language}
        if claim is not None:
            fields["claim"] = claim
        if expect_channel is not None:
            fields["channel"] = expect_channel
        await self.send("call.request", **fields)
        queued = await self.wait_for("call.queued")
        self.call_id, self.token = queued["call_id"], queued["token"]
        return self.call_id

    async def peripheral(self, device: str, event: str, data: dict | None = None) -> None:
        """A kiosk peripheral's report (refused unless this is an enrolled kiosk's call)."""
        fields: dict[str, Any] = {"call_id": self.call_id, "device": device, "event": event}
        if data:
            fields["data"] = data
        await self.send("peripheral.event", **fields)

    async def start_media(self, call_id: str | None = None, **kwargs: Any) -> None:
        call_id = call_id or self.call_id
        if call_id is None:
            raise RuntimeError("No call yet: request one with call() first.")
        await super().start_media(call_id, **kwargs)

    async def hangup(self) -> None:
        await self.send("call.hangup", call_id=self.call_id)


class TellerClient(_Client):
    path = "/ws/teller/"

    @classmethod
    async def signed_in(cls, base_url: str, username: str, password: str) -> TellerClient:
        cookies = await asyncio.to_thread(login, base_url, username, password)
        client = cls(base_url, cookies=cookies)
        await client.connect()
        return client

    async def go_available(self) -> None:
        await self.send("presence.set", status="available")
        await self.wait_for("presence")

    async def next_offer(self, call_id: str | None = None, timeout: float = 20.0) -> dict:
        """Wait until the router rings this teller (for ``call_id`` if given); the offer."""
        deadline = time.monotonic() + timeout
        while True:
            left = max(0.1, deadline - time.monotonic())
            offer = await self.wait_for("call.offer", timeout=left)
            if call_id is None or offer["call_id"] == call_id:
                return offer

    async def reject(self, call_id: str) -> None:
        await self.send("call.reject", call_id=call_id)

    async def accept(self, call_id: str) -> dict:
        await self.send("call.accept", call_id=call_id)
        return await self.wait_for("call.connected")

    async def hangup(self, call_id: str) -> None:
        await self.send("call.hangup", call_id=call_id)


def login(base_url: str, username: str, password: str) -> str:
    """Sign in through the console's login form; return the Cookie header for the socket."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    login_url = base_url.rstrip("/") + "/console/login/"
    opener.open(login_url, timeout=10).read()  # noqa: S310
    csrf = next(c.value for c in jar if c.name == "csrftoken")
    data = urllib.parse.urlencode(
        {"username": username, "password": password, "csrfmiddlewaretoken": csrf}
    ).encode()
    request = urllib.request.Request(login_url, data=data, headers={"Referer": login_url})  # noqa: S310
    opener.open(request, timeout=10).read()  # noqa: S310
    cookies = {c.name: c.value for c in jar}
    if "sessionid" not in cookies:
        raise PermissionError(f"login as {username} failed")
    return "; ".join(f"{k}={v}" for k, v in cookies.items())
