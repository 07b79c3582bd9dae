"""Channel-layer messages that follow a committed write.

Group names are the contract between services and the socket consumers:
``call-<id>`` holds the customer and the teller of one call, ``tellers`` every teller console,
``teller-<user id>`` one teller's consoles. A ``signal.forward`` carries a server message's type
and fields; the consumer makes it a frame of the protocol (``signaling.protocol.server_message``:
the version, and the check that the type is one the protocol documents) as it sends it.

Messages are collected in an outbox per transaction and sent once it commits, in one go: groups
concurrently, each group's messages in order. Queue-position broadcasts are coalesced to one per
transaction. The thread that ran the transaction waits for one round of sends, not one per
message — it is the server's only database thread.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection, transaction

from . import selectors

TELLERS_GROUP = "tellers"
SUPERVISORS_GROUP = "supervisors"

SEND_CONCURRENCY = 8
_local = threading.local()


def call_group(call_id: uuid.UUID | str) -> str:
    return f"call-{call_id}"


def teller_group(teller_id: int) -> str:
    return f"teller-{teller_id}"


def forward(type_: str, **fields: Any) -> dict[str, Any]:
    return {"type": "signal.forward", "message": {"type": type_, **fields}}


class _Outbox:
    def __init__(self) -> None:
        self.group_messages: list[tuple[str, dict]] = []
        self.channel_messages: list[tuple[str, dict]] = []
        self.queue_changed = False

    def flush(self) -> None:
        if getattr(_local, "outbox", None) is self:
            _local.owner = _local.outbox = None
        messages = _superseded_presence_dropped(self.group_messages)
        if self.queue_changed:
            if _broadcaster.deferred:
                _broadcaster.dirty = True
            else:
                messages += _broadcaster.changes()
        if messages or self.channel_messages:
            _deliver(messages, self.channel_messages)


def _superseded_presence_dropped(messages: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """A console needs only the last presence of a transaction: "available" then "offered" in
    one commit reaches it as "offered" alone (one send less in front of the ringing offer)."""
    last: dict[str, int] = {}
    for i, (group, message) in enumerate(messages):
        if _forwarded_type(message) == "presence":
            last[group] = i
    return [
        (group, message)
        for i, (group, message) in enumerate(messages)
        if _forwarded_type(message) != "presence" or last[group] == i
    ]


def _forwarded_type(message: dict) -> str | None:
    if message.get("type") != "signal.forward":
        return None
    return message["message"].get("type")


class _Broadcaster:
    """Queue positions and the waiting list, sent only where they changed.

    With a queue ticker in the process (``deferred``), a change only marks the queue dirty and
    the ticker sends at most one broadcast per tick: under load, a broadcast per change would send
    O(waiting) messages for every call placed, offered or ended.
    """

    def __init__(self) -> None:
        self.deferred = False
        self.dirty = False
        self.lock = threading.Lock()
        self.sent: dict[str, tuple[int, int, int]] = {}
        self.sent_snapshot: tuple | None = None

    def changes(self) -> list[tuple[str, dict]]:
        with self.lock:
            self.dirty = False
            messages = []
            current = {}
            for place in selectors.queue_places():
                key = str(place.call_id)
                figures = (place.position, place.waiting, place.estimated_wait_s)
                current[key] = figures
                if self.sent.get(key) != figures:
                    messages.append(
                        (
                            call_group(place.call_id),
                            forward(
                                "queue.position",
                                call_id=key,
                                position=place.position,
                                waiting=place.waiting,
                                estimated_wait_s=place.estimated_wait_s,
                            ),
                        )
                    )
            self.sent = current
            snapshot = selectors.queue_snapshot()  # bounded: the first N and counts
            shape = (
                [(c["call_id"], c["priority"], c["priority_claim"]) for c in snapshot["calls"]],
                [(b["business"], b["waiting"]) for b in snapshot["businesses"]],
            )
            if shape != self.sent_snapshot:
                self.sent_snapshot = shape
                messages.append((TELLERS_GROUP, forward("queue.snapshot", **snapshot)))
            return messages


_broadcaster = _Broadcaster()


def defer_queue_broadcasts() -> None:
    """This process runs a queue ticker: broadcasts wait for it (see ``_Broadcaster``)."""
    _broadcaster.deferred = True


def leave_queue_broadcasts_to_ticker() -> None:
    """The queue ticker is a process of its own and recomputes positions every tick: this
    process sends none (its dirty flag is never read)."""
    _broadcaster.deferred = True


def queue_broadcast_if_changed() -> None:
    """Called by an in-process ticker: send what changed in the queue since the last broadcast,
    if this process changed the queue."""
    if _broadcaster.dirty:
        queue_broadcast()


def queue_broadcast() -> None:
    """Send the positions and waiting list that differ from what this process last sent."""
    messages = _broadcaster.changes()
    if messages:
        _deliver(messages, [])


def _outbox() -> _Outbox:
    """The outbox of the current transaction, flushed once when it commits. (Services add
    messages outside their savepoints: a rolled-back savepoint has none to take back.)"""
    owner = connection.atomic_blocks[0]
    if getattr(_local, "owner", None) is not owner:  # another block (or the last transaction
        _local.owner = owner  # rolled back, dropping its on_commit along with its messages)
        _local.outbox = _Outbox()
        transaction.on_commit(_local.outbox.flush)
    return _local.outbox


def _add(*, group=None, channel=None, message=None, queue_changed: bool = False) -> None:
    in_transaction = connection.in_atomic_block
    box = _outbox() if in_transaction else _Outbox()
    if group is not None:
        box.group_messages.append((group, message))
    if channel is not None:
        box.channel_messages.append((channel, message))
    box.queue_changed |= queue_changed
    if not in_transaction:  # autocommit: the change is already committed
        box.flush()


_server_loop: asyncio.AbstractEventLoop | None = None


def remember_server_loop() -> None:
    """Called on the server's event loop (every ASGI call): sends go through it."""
    global _server_loop
    _server_loop = asyncio.get_running_loop()


def _deliver(group_messages, channel_messages) -> None:
    """Send, from whatever thread committed: through the server's event loop when this process
    has one (a background thread — KYC analysis, a core-bank submission — must not use a loop of
    its own: the in-memory channel layer's queues belong to the server loop, and its waiting
    consumers would not wake); otherwise (Celery worker, ticker process, media worker thread of
    sync_to_async) as before."""
    loop = _server_loop
    if loop is not None and loop.is_running() and not _on_loop_thread(loop):
        asyncio.run_coroutine_threadsafe(_send_all(group_messages, channel_messages), loop).result(
            timeout=30
        )
        return
    async_to_sync(_send_all)(group_messages, channel_messages)


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


async def _send_all(group_messages: list[tuple[str, dict]], channel_messages) -> None:
    # One round of sends, in the order the transaction made them within each group. (Sending
    # the ringing offer ahead of the rest was tried: it can overtake the "offer withdrawn" of
    # the same commit to the previous teller, so one call would ring on two consoles.)
    layer = get_channel_layer()
    by_group: dict[str, list[dict]] = {}
    for group, message in group_messages:
        by_group.setdefault(group, []).append(message)

    # A few at a time: each send holds a connection of the channel layer's (bounded) pool.
    slots = asyncio.Semaphore(SEND_CONCURRENCY)

    async def in_order(group: str, messages: list[dict]) -> None:
        async with slots:
            for message in messages:
                await layer.group_send(group, message)

    async def one(channel: str, message: dict) -> None:
        async with slots:
            await layer.send(channel, message)

    await asyncio.gather(
        *(in_order(group, messages) for group, messages in by_group.items()),
        *(one(channel, message) for channel, message in channel_messages),
    )


def send_on_commit(group: str, message: dict[str, Any]) -> None:
    _add(group=group, message=message)


def forward_on_commit(group: str, type_: str, **fields: Any) -> None:
    """Deliver a protocol message to every socket in ``group`` once the transaction commits."""
    send_on_commit(group, forward(type_, **fields))


def channel_send_on_commit(channel_name: str, message: dict[str, Any]) -> None:
    _add(channel=channel_name, message=message)


def queue_changed_on_commit() -> None:
    """Push fresh positions to waiting customers and the waiting list to tellers (once per
    transaction, however many changes it made)."""
    _add(queue_changed=True)


def presence_on_commit(presence, *, by=None) -> None:
    """Tell the teller's consoles (and supervisors) that its presence changed."""
    fields = {"status": presence.status, "reason": presence.break_reason}
    if by is not None and by.pk != presence.teller_id:
        fields["by"] = by.get_username()
    forward_on_commit(teller_group(presence.teller_id), "presence", **fields)
    forward_on_commit(
        SUPERVISORS_GROUP,
        "teller.presence",
        teller=presence.teller.get_username(),
        **fields,
    )
