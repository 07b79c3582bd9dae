"""Channel-layer messages that follow a committed write.

Group names are the contract between services and the socket consumers:
``call-<id>`` holds the customer and the teller of one call, ``tellers`` every teller console,
``teller-<user id>`` one teller's consoles. Consumers turn ``signal.forward`` into a frame.
"""

from __future__ import annotations

import uuid
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from signaling.protocol import server_message

from . import selectors

TELLERS_GROUP = "tellers"
SUPERVISORS_GROUP = "supervisors"


def call_group(call_id: uuid.UUID | str) -> str:
    return f"call-{call_id}"


def teller_group(teller_id: int) -> str:
    return f"teller-{teller_id}"


def _send_now(group: str, message: dict[str, Any]) -> None:
    async_to_sync(get_channel_layer().group_send)(group, message)


def send_on_commit(group: str, message: dict[str, Any]) -> None:
    transaction.on_commit(lambda: _send_now(group, message))


def forward_on_commit(group: str, type_: str, **fields: Any) -> None:
    """Deliver a protocol message to every socket in ``group`` once the transaction commits."""
    send_on_commit(group, {"type": "signal.forward", "message": server_message(type_, **fields)})


def queue_changed_on_commit() -> None:
    """Push fresh positions to waiting customers and the waiting list to tellers."""

    def push() -> None:
        layer = get_channel_layer()
        send = async_to_sync(layer.group_send)
        for place in selectors.queue_places():
            send(
                call_group(place.call_id),
                {
                    "type": "signal.forward",
                    "message": server_message(
                        "queue.position",
                        call_id=str(place.call_id),
                        position=place.position,
                        waiting=place.waiting,
                        estimated_wait_s=place.estimated_wait_s,
                    ),
                },
            )
        send(
            TELLERS_GROUP,
            {
                "type": "signal.forward",
                "message": server_message("queue.snapshot", calls=selectors.queue_snapshot()),
            },
        )

    transaction.on_commit(push)


def channel_send_now(channel_name: str, message: dict[str, Any]) -> None:
    async_to_sync(get_channel_layer().send)(channel_name, message)


def channel_send_on_commit(channel_name: str, message: dict[str, Any]) -> None:
    transaction.on_commit(lambda: channel_send_now(channel_name, message))


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
