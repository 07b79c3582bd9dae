"""Tracks that carry one participant's decoded frames to the other participant."""

from __future__ import annotations

import asyncio

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack


class RelayTrack(MediaStreamTrack):
    """An outgoing track fed by :meth:`put`; keeps only the newest frames when the sender lags.

    A bounded queue is the point: ``MediaRelay(buffered=True)`` queues without limit and
    ``buffered=False`` drops under load (lab notes). Here a slow receiver loses the oldest
    frames, and latency stays bounded.
    """

    def __init__(self, kind: str, *, max_frames: int) -> None:
        super().__init__()
        self.kind = kind
        self._queue: asyncio.Queue = asyncio.Queue(maxsize=max_frames)
        self.forwarded = 0
        self.dropped = 0

    def put(self, frame) -> None:
        if self.readyState != "live":
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(frame)

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._queue.get()
        if frame is None:
            raise MediaStreamError
        self.forwarded += 1
        return frame

    def stop(self) -> None:
        if self.readyState == "live":
            super().stop()
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(None)
