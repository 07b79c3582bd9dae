"""The media worker: the server end of every participant's WebRTC connection.

Each call has two legs (customer, teller), each an aiortc peer connection with this worker. Frames
received on one leg are forwarded to the other leg's outgoing tracks and handed to that side's
recorder. The worker listens on its own channel-layer channel; signaling consumers send it
``media.offer`` / ``media.hangup`` and it answers the consumer's channel with ``media.answer``,
``media.state`` or ``media.error``. See docs/adr/0001-media-path.md.

Async only: every ORM call goes through ``database_sync_to_async``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import DIRECTIONS, SessionDescription
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from queueing.models import OPEN_CALL_STATUSES, Call, CallStatus
from queueing.services import (
    call_event_record,
    media_worker_heartbeat,
    media_worker_register,
    media_worker_unregister,
)
from recordings.models import Recording
from recordings.services import (
    RecordingError,
    recording_data_key,
    recording_mark_started,
    recording_recorder,
)
from recordings.tasks import recording_finalise_task
from signaling import ice
from videobank import events, media_contract

from .relay import RelayTrack

if TYPE_CHECKING:
    from av import VideoFrame

log = logging.getLogger(__name__)

LEGS = media_contract.LEGS
VIDEO_QUEUE_FRAMES = 4
GRAB_GRACE_S = 3.0  # how long a grab waits past its last moment for a frame
AUDIO_QUEUE_FRAMES = 12  # 240 ms of 20 ms frames
SETUP_FAILED_EN = "The media server could not set up media."
SETUP_FAILED_ZH = "媒体服务器无法建立音视频。"


class BadOffer(Exception):
    """The client's SDP offer cannot be used (unreadable, or missing what WebRTC needs): the
    client's fault, answered in words; nothing of the call changes."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def words(self) -> str:
        return (
            f"The SDP offer cannot be used ({self.reason}): send the offer the browser made. / "
            "无法使用该 SDP 媒体协商信息，请发送浏览器生成的协商信息。"
        )


def offer_read(sdp: str) -> None:
    """Read the offer before anything changes (a session, the recording's clock): aiortc's
    parser fails on bad text with whatever it meets (AssertionError, ValueError, IndexError...)
    and takes text without SDP lines for an empty session."""
    try:
        description = SessionDescription.parse(sdp)
    except Exception as exc:  # the client's text, whatever the parser tripped on
        raise BadOffer(_reason(exc, "it is not SDP")) from None
    if not description.media:  # any text without SDP lines parses as an empty session
        raise BadOffer("it offers no audio or video")
    # What aiortc's setRemoteDescription would refuse, checked before a session starts for it.
    for media in description.media:
        if media.kind not in ("audio", "video"):  # our pages send no data channel
            raise BadOffer(f"a media section is neither audio nor video ({media.kind[:20]!r})")
        if media.ice is None or not media.ice.usernameFragment or not media.ice.password:
            raise BadOffer("ICE username fragment or password is missing")
        if media.dtls is None or not media.dtls.fingerprints:  # aiortc fails on it (None.role)
            raise BadOffer("DTLS fingerprint or setup is missing")
        if not media.rtcp_mux:
            raise BadOffer("RTCP mux is not enabled")
        # aiortc fails on these with None.index / None.transport (found by the fuzz test)
        if media.direction not in DIRECTIONS:
            raise BadOffer("a media direction is missing")
    mids = [media.rtp.muxId for media in description.media]
    if not all(mids) or len(set(mids)) != len(mids):
        raise BadOffer("each media section needs a mid of its own")
    for group in description.group:
        if group.semantic == "BUNDLE" and not set(group.items) <= set(mids):
            raise BadOffer("the BUNDLE group names a media section the offer lacks")


def _reason(exc: Exception, default: str) -> str:
    text = str(exc).strip()
    return text[:80] if text else default


def ice_configuration() -> RTCConfiguration:
    # Always explicit (a list, maybe empty): without it aiortc reaches for a public STUN server.
    # STUN only, from settings: the worker is the server end and needs no relay of its own.
    return RTCConfiguration(
        iceServers=[RTCIceServer(**server) for server in ice.ice_servers_media_worker()]
    )


@dataclass
class Leg:
    name: str
    pc: RTCPeerConnection
    reply_to: str
    pumps: list[asyncio.Task] = field(default_factory=list)
    frames_in: dict[str, int] = field(default_factory=lambda: {"audio": 0, "video": 0})


class CallSession:
    def __init__(
        self,
        worker: MediaWorker,
        call_id: str,
        recording,
        *,
        t0: float | None = None,
        started_at=None,
    ) -> None:
        self.worker = worker
        self.call_id = call_id
        # The recording's clock: monotonic for frame times, wall time for the timeline. A session
        # resuming a recording begun elsewhere is given the recording's origin (see _open).
        self.t0 = time.monotonic() if t0 is None else t0
        self.started_at = timezone.now() if started_at is None else started_at
        self.legs: dict[str, Leg] = {}
        self.outgoing = {
            leg: {
                "audio": RelayTrack("audio", max_frames=AUDIO_QUEUE_FRAMES),
                "video": RelayTrack("video", max_frames=VIDEO_QUEUE_FRAMES),
            }
            for leg in LEGS
        }
        self.recording = recording
        self.recorders = {}
        if recording is not None:
            self.recorders = {
                leg: recording_recorder(
                    recording_id=recording.id,
                    side=leg,
                    data_key=worker.data_keys[recording.id],
                    t0=self.t0,
                )
                for leg in LEGS
            }
        self.closed = False
        self.samplers: list[FrameSampler] = []  # identity-check grabs of the customer's video

    @staticmethod
    def other(leg: str) -> str:
        return "teller" if leg == "customer" else "customer"

    async def drop_leg(self, leg_name: str) -> None:
        leg = self.legs.pop(leg_name, None)
        if leg is not None:
            await self._close_leg(leg)
        for track in self.outgoing[leg_name].values():
            track.stop()
        self.outgoing[leg_name] = {
            "audio": RelayTrack("audio", max_frames=AUDIO_QUEUE_FRAMES),
            "video": RelayTrack("video", max_frames=VIDEO_QUEUE_FRAMES),
        }

    async def negotiate(self, leg_name: str, sdp: str, reply_to: str) -> str:
        if leg_name in self.legs:  # the participant reconnected (or a new teller took over)
            await self.drop_leg(leg_name)
        pc = RTCPeerConnection(configuration=ice_configuration())
        leg = Leg(name=leg_name, pc=pc, reply_to=reply_to)
        self.legs[leg_name] = leg

        @pc.on("track")
        def on_track(track):
            leg.pumps.append(asyncio.ensure_future(self._pump(leg, track)))

        @pc.on("connectionstatechange")
        async def on_state():
            state = pc.connectionState
            await self.worker.tell(
                leg.reply_to, media_contract.state(call_id=self.call_id, state=state)
            )
            if state in ("connected", "failed"):
                await self.worker.record_event(
                    self.call_id,
                    "media_connected" if state == "connected" else "media_failed",
                    actor=leg_name,
                    data={"offset_ms": self.offset_ms()},
                )
            if state == "failed" and self.legs.get(leg_name) is leg:
                self.legs.pop(leg_name, None)
                await self._close_leg(leg)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except ValueError as exc:  # read, but without what WebRTC needs (ICE, DTLS, media)
            if self.legs.get(leg_name) is leg:
                self.legs.pop(leg_name)
            await pc.close()
            raise BadOffer(_reason(exc, "it lacks what WebRTC needs")) from None
        for kind in ("audio", "video"):
            if any(t.kind == kind for t in pc.getTransceivers()):
                pc.addTrack(self.outgoing[leg_name][kind])
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp

    def offset_ms(self) -> int:
        return int((time.monotonic() - self.t0) * 1000)

    async def _pump(self, leg: Leg, track) -> None:
        kind = track.kind
        other = self.other(leg.name)
        recorder = self.recorders.get(leg.name)
        push = None
        if recorder is not None:
            push = recorder.push_video if kind == "video" else recorder.push_audio
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            leg.frames_in[kind] += 1
            # Looked up per frame: the other side's tracks are replaced when it reconnects.
            self.outgoing[other][kind].put(frame)
            if self.samplers and kind == "video" and leg.name == "customer":
                now = time.monotonic()
                for sampler in list(self.samplers):
                    sampler.offer(frame, now)
            if push is not None:
                push(frame, time.monotonic())

    async def sample(
        self, at_ms: list[int], *, timeout_s: float
    ) -> list[tuple[int, int, VideoFrame]]:
        """Customer video frames at these moments (ms from now): ``(offset_ms on the
        recording's clock, ms since the grab began, av.VideoFrame)``. Frames that never came
        (camera off) are missing from the result."""
        sampler = FrameSampler(time.monotonic(), at_ms)
        self.samplers.append(sampler)
        try:
            await asyncio.wait_for(asyncio.shield(sampler.done), timeout_s)
        except TimeoutError:
            pass
        finally:
            self.samplers.remove(sampler)
        return [
            (int((t - self.t0) * 1000), int((t - sampler.t0) * 1000), frame)
            for t, frame in sampler.frames
        ]

    async def _close_leg(self, leg: Leg) -> None:
        with contextlib.suppress(Exception):
            await leg.pc.close()
        for task in leg.pumps:
            task.cancel()

    async def close(self, *, finalise: bool = True) -> None:
        if self.closed:
            return
        self.closed = True
        for leg in list(self.legs.values()):
            await self._close_leg(leg)
            await self.worker.tell(
                leg.reply_to, media_contract.state(call_id=self.call_id, state="closed")
            )
        self.legs.clear()
        for tracks in self.outgoing.values():
            for track in tracks.values():
                track.stop()
        for recorder in self.recorders.values():
            await asyncio.to_thread(recorder.close)
        if self.recording is not None and finalise:
            await database_sync_to_async(_finalise_later)(self.recording.id)


class FrameSampler:
    """Takes the first frame at or after each requested moment. The moments are the server's
    (random for a face match, a steady rate during a liveness challenge): the client cannot
    choose which frames are looked at."""

    def __init__(self, t0: float, at_ms: list[int]) -> None:
        self.t0 = t0
        self.due = sorted(t0 + ms / 1000 for ms in at_ms)
        self.frames: list[tuple[float, VideoFrame]] = []
        self.done: asyncio.Future = asyncio.get_running_loop().create_future()
        if not self.due:
            self.done.set_result(None)

    def offer(self, frame: VideoFrame, now: float) -> None:
        taken = False
        while self.due and now >= self.due[0]:
            self.due.pop(0)
            if not taken:
                self.frames.append((now, frame))
                taken = True
        if not self.due and not self.done.done():
            self.done.set_result(None)


def _jpegs(frames: list[tuple[int, int, VideoFrame]]) -> list[tuple[int, int, bytes]]:
    """Encode grabbed frames (in a thread: a few ms each)."""
    out = []
    for offset_ms, t_ms, frame in frames:
        buffer = io.BytesIO()
        frame.to_image().save(buffer, format="JPEG", quality=92)
        out.append((offset_ms, t_ms, buffer.getvalue()))
    return out


def _finalise_later(recording_id: uuid.UUID) -> None:
    recording_finalise_task.delay(str(recording_id))


class MediaWorker:
    def __init__(self, channel_layer=None, channel_name: str | None = None) -> None:
        self.layer = channel_layer or get_channel_layer()
        self.channel_name = channel_name or f"media.{uuid.uuid4().hex}"
        self.sessions: dict[str, CallSession] = {}
        self.data_keys: dict[uuid.UUID, bytes] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._grabs: set[asyncio.Task] = set()
        self._stopping = asyncio.Event()

    async def register(self) -> None:
        await database_sync_to_async(media_worker_register)(channel_name=self.channel_name)

    async def run(self) -> None:
        """Serve until :meth:`stop`; registration has been done by the caller or is done here."""
        await self.register()
        heartbeat = asyncio.ensure_future(self._heartbeat())
        log.info("media worker listening on %s", self.channel_name)
        try:
            while not self._stopping.is_set():
                receive = asyncio.ensure_future(self.layer.receive(self.channel_name))
                stop = asyncio.ensure_future(self._stopping.wait())
                done, _ = await asyncio.wait({receive, stop}, return_when=asyncio.FIRST_COMPLETED)
                if receive not in done:
                    receive.cancel()
                    break
                stop.cancel()
                message = receive.result()
                asyncio.ensure_future(self._handle_safely(message))
        finally:
            heartbeat.cancel()
            await self.shutdown()

    def stop(self) -> None:
        self._stopping.set()

    async def shutdown(self) -> None:
        for session in list(self.sessions.values()):
            await session.close()
        self.sessions.clear()
        with contextlib.suppress(Exception):
            await database_sync_to_async(media_worker_unregister)(channel_name=self.channel_name)

    async def _heartbeat(self) -> None:
        while True:
            try:
                await database_sync_to_async(media_worker_heartbeat)(
                    channel_name=self.channel_name, active_sessions=len(self.sessions)
                )
                await self._sweep()
            except Exception:
                log.exception("media worker heartbeat failed")
            await asyncio.sleep(settings.MEDIA_WORKER_HEARTBEAT_S)

    async def _sweep(self) -> None:
        """Close sessions whose call ended without us hearing the hang-up (a call waiting for a
        new teller after a drop is still open and keeps its session)."""
        checked = list(self.sessions)  # sessions opened while we ask are not judged this round
        if not checked:
            return
        open_ids = await database_sync_to_async(_connected_call_ids)(checked)
        for call_id in checked:
            if call_id not in open_ids:
                await self._hangup(call_id)

    async def tell(self, channel: str, message: dict) -> None:
        with contextlib.suppress(Exception):
            await self.layer.send(channel, message)

    async def record_event(self, call_id: str, kind: str, *, actor: str, data: dict) -> None:
        with contextlib.suppress(Exception):
            await database_sync_to_async(call_event_record)(
                call_id=uuid.UUID(call_id), kind=kind, actor=actor, data=data
            )

    async def _handle_safely(self, message: dict) -> None:
        try:
            message = media_contract.parse(message, expect="engine")
        except media_contract.ContractError as exc:
            # Not from our control plane as the contract says: refused in words, nothing changes.
            log.warning("media worker: message refused: %s", exc.en)
            reply_to = message.get("reply_to") if isinstance(message, dict) else None
            if media_contract.is_channel(reply_to):
                await self.tell(
                    reply_to, media_contract.error(detail=f"{exc.en} / {exc.zh}", code=exc.code)
                )
            return
        try:
            kind = message["type"]
            if kind == "media.offer":
                await self._offer(message)
            elif kind == "media.hangup":
                await self._hangup(message["call_id"])
            elif kind == "media.leg_drop":
                await self._drop_leg(message["call_id"], message["leg"])
            elif kind == "media.grab":
                # Sampling takes seconds: it must not hold up the worker's other messages.
                task = asyncio.ensure_future(self._grab(message))
                self._grabs.add(task)
                task.add_done_callback(self._grabs.discard)
        except BadOffer as exc:
            log.info(
                "media worker: %s offer for %s refused: %s",
                message.get("leg"),
                message.get("call_id"),
                exc.reason,
            )
            await self.tell(
                message["reply_to"], media_contract.error(detail=exc.words(), code="invalid")
            )
        except Exception:
            log.exception("media worker failed on %s", message.get("type"))
            if message.get("reply_to"):
                await self.tell(
                    message["reply_to"],
                    media_contract.error(detail=f"{SETUP_FAILED_EN} / {SETUP_FAILED_ZH}"),
                )

    async def _offer(self, message: dict) -> None:
        call_id, leg = message["call_id"], message["leg"]
        offer_read(message["sdp"])  # before a session (and its recording) starts for it
        lock = self._locks.setdefault(call_id, asyncio.Lock())
        async with lock:
            session = self.sessions.get(call_id)
            if session is None:
                session = await self._open(call_id, message["reply_to"])
                if session is None:
                    return
                self.sessions[call_id] = session
            sdp = await session.negotiate(leg, message["sdp"], message["reply_to"])
        await self.tell(message["reply_to"], media_contract.answer(call_id=call_id, sdp=sdp))

    async def _open(self, call_id: str, reply_to: str) -> CallSession | None:
        """A session for a connected call, recording on the recording's one clock: the first
        session fixes its origin; a session resuming it (the call moved here after its media
        worker died, or came back after a teller's drop) continues from that origin, so its
        segments follow the earlier ones instead of starting again at 0."""
        recording = await database_sync_to_async(_connected_call_recording)(
            uuid.UUID(call_id), self.data_keys
        )
        if recording is False:
            await self.tell(
                reply_to,
                media_contract.error(detail="The call is not connected. / 通话未接通。"),
            )
            return None
        started_at, t0 = timezone.now(), time.monotonic()
        if recording is not None:
            try:
                recording = await database_sync_to_async(recording_mark_started)(
                    recording_id=recording.id, started_at=started_at
                )
            except RecordingError as exc:
                # Sealed already (the sweep closed it while the call had no media worker): the
                # call goes on with media, unrecorded; the recording's timeline says why.
                log.warning("call %s continues unrecorded: %s", call_id, exc)
                self.data_keys.pop(recording.id, None)
                recording = None
            else:
                t0 -= (started_at - recording.started_at).total_seconds()
                started_at = recording.started_at
        return CallSession(self, call_id, recording, t0=t0, started_at=started_at)

    async def _drop_leg(self, call_id: str, leg_name: str) -> None:
        """One participant left (e.g. the teller's connection dropped) but the call goes on: the
        customer stays connected and recorded until another teller takes the call."""
        session = self.sessions.get(call_id)
        if session is not None:
            await session.drop_leg(leg_name)

    async def _grab(self, message: dict) -> None:
        """Frames of the customer's live video for the identity check, stored as evidence."""
        check_id, purpose = uuid.UUID(message["check_id"]), message["purpose"]
        session = self.sessions.get(message["call_id"])
        try:
            if session is None or "customer" not in session.legs:
                raise LookupError("no customer video on this worker")
            at_ms = media_contract.grab_moments(message)
            frames = await session.sample(at_ms, timeout_s=max(at_ms) / 1000 + GRAB_GRACE_S)
            jpegs = await asyncio.to_thread(_jpegs, frames)
            await database_sync_to_async(events.emit)(
                events.FramesGrabbed(
                    check_id=check_id, purpose=purpose, frames=jpegs, source="media_worker"
                )
            )
        except Exception as exc:
            log.warning("grab for %s failed: %s", check_id, exc)
            await database_sync_to_async(events.emit)(
                events.GrabFailed(
                    check_id=check_id,
                    purpose=purpose,
                    detail="The customer's video is not reaching the server; retry in a moment.",
                    detail_zh="客户视频未送达服务器，请稍后重试。",
                )
            )

    async def _hangup(self, call_id: str) -> None:
        session = self.sessions.pop(call_id, None)
        self._locks.pop(call_id, None)
        if session is not None:
            await session.close()
            if session.recording is not None:
                self.data_keys.pop(session.recording.id, None)


def _connected_call_ids(call_ids: list[str]) -> set[str]:
    return {
        str(pk)
        for pk in Call.objects.filter(pk__in=call_ids, status__in=OPEN_CALL_STATUSES).values_list(
            "pk", flat=True
        )
    }


def _connected_call_recording(call_id: uuid.UUID, data_keys: dict):
    """The call's recording (data key unwrapped into ``data_keys``); False if not connected."""
    if not Call.objects.filter(pk=call_id, status=CallStatus.CONNECTED).exists():
        return False
    recording = Recording.objects.filter(call_id=call_id).first()
    if recording is not None:
        data_keys[recording.id] = recording_data_key(recording=recording)
    return recording


# --- embedded profile -------------------------------------------------------------------------
_embedded: dict[int, tuple[MediaWorker, asyncio.Task]] = {}
_embedded_locks: dict[int, asyncio.Lock] = {}


async def ensure_embedded_worker() -> MediaWorker:
    """One worker per event loop inside the server process; registered before returning."""
    loop_id = id(asyncio.get_running_loop())
    existing = _embedded.get(loop_id)
    if existing is not None and not existing[1].done():
        return existing[0]
    async with _embedded_locks.setdefault(loop_id, asyncio.Lock()):
        existing = _embedded.get(loop_id)
        if existing is not None and not existing[1].done():
            return existing[0]
        worker = import_string(settings.MEDIA_ENGINE)()
        await worker.register()
        task = asyncio.ensure_future(worker.run())
        _embedded[loop_id] = (worker, task)
        return worker
