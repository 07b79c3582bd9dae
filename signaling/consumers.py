"""WebSocket consumers: thin transports that validate, call one service, and reply.

One consumer per role. Nothing a client sends can raise out of ``receive``: protocol errors,
domain refusals (``videobank.errors.AppError``, whichever app raised it) and unexpected failures
all come back as an ``error`` frame, built in one place (``send_error``), and the socket stays
open.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import uuid
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.sessions.backends.base import UpdateError

from kyc import services as kyc
from queueing import limits, notify, selectors, services
from queueing.access import TokenError, access_customer_call, customer_token_issue
from queueing.errors import QueueFull
from queueing.models import (
    OPEN_CALL_STATUSES,
    CallStatus,
    Priority,
)
from queueing.stats import wallboard
from videobank import errors, media_contract
from videobank.access import access_supervisor, access_teller
from videobank.errors import Conflict, Forbidden
from workflows import selectors as workflow_selectors
from workflows import services as workflows

from . import access, ice
from .protocol import error_message, parse, server_message

log = logging.getLogger(__name__)


# A staff member working on their socket is not idle: their session's expiry moves on, at most
# this often (see ``SignalingConsumer.session_touch``).
SESSION_TOUCH_EVERY_S = 60.0


class SignalingConsumer(AsyncWebsocketConsumer):
    role = ""
    staff = False  # signed-in staff: their messages keep the session from idling out
    _session_touched = -math.inf

    async def receive(self, text_data=None, bytes_data=None):
        message: dict[str, Any] | None = None
        try:
            message = parse(self.role, text_data, binary=bytes_data is not None)
            if self.staff and message["type"] != "ping":
                await self.session_touch()
            handler = getattr(self, "on_" + message["type"].replace(".", "_"))
            await handler(message)
        except Exception as exc:  # a refusal in words, or a fault (`internal`)
            await self.send_error(exc, message)

    async def send_json(self, message: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(message, separators=(",", ":")))

    async def send_error(self, exc: Exception, message: dict | None = None) -> None:
        """The one answer to a message that went wrong: a refusal's code, words ("en / zh") and
        fields; anything else is logged with its traceback and answered ``internal``, never
        with its text (``videobank.errors``). ``ref`` is the message's ``id``."""
        error = errors.as_answer(exc, where=f"{self.role} socket, {_kind(message)}")
        ref = message.get("id") if isinstance(message, dict) else getattr(exc, "ref", None)
        await self.send_json(error_message(ref=ref, **errors.socket_fields(error)))

    async def hello(self, **extra: Any) -> None:
        # STUN only: TURN credentials go to a call being connected (signaling/ice.py).
        await self.send_json(
            server_message(
                "hello", protocol=1, role=self.role, ice_servers=ice.ice_servers_public(), **extra
            )
        )

    async def on_ping(self, message: dict) -> None:
        await self.send_json(server_message("pong"))

    async def session_touch(self) -> None:
        """Staff sessions end after ``STAFF_SESSION_IDLE_S`` without activity (checked when a
        staff socket connects). Pages make few requests while a teller works on the socket, so
        what the teller sends here (not the automatic pings) counts as activity too."""
        now = time.monotonic()
        if now - self._session_touched < SESSION_TOUCH_EVERY_S:
            return
        self._session_touched = now
        session = self.scope.get("session")
        if session is not None:
            await database_sync_to_async(_session_save)(session)

    async def send_to_media(self, *, call, leg: str, sdp: str) -> None:
        if call.status != CallStatus.CONNECTED or not call.media_channel:
            raise Conflict(
                "The call is not connected; media can start once it is answered.",
                "通话尚未接通，接听后才能开始视频。",
            )
        await self.channel_layer.send(
            call.media_channel,
            media_contract.offer(call_id=call.id, leg=leg, sdp=sdp, reply_to=self.channel_name),
        )

    # Channel-layer handlers (the media worker and the services talk to this socket).
    async def signal_forward(self, event: dict) -> None:
        # The services' outbox (queueing/notify.py) names a server message and its fields; the
        # protocol's frame is made here, at the edge.
        fields = dict(event["message"])
        await self.send_json(server_message(fields.pop("type"), **fields))
        if event["message"]["type"] == "call.ended":
            await self.call_left(event["message"]["call_id"])

    async def media_answer(self, event: dict) -> None:
        await self.send_json(
            server_message("webrtc.answer", call_id=event["call_id"], sdp=event["sdp"])
        )

    async def media_state(self, event: dict) -> None:
        await self.send_json(
            server_message("media.state", call_id=event["call_id"], state=event["state"])
        )

    async def media_error(self, event: dict) -> None:
        # `invalid`: the offer this socket sent could not be used; otherwise the media failed.
        code = event.get("code", "media_unavailable")
        await self.send_json(error_message(code, event["detail"]))

    async def call_left(self, call_id: str) -> None:
        """The call ended; stop listening to its group."""
        await self.channel_layer.group_discard(notify.call_group(call_id), self.channel_name)


def _session_save(session) -> None:
    """Save the session: its expiry date becomes now + the idle time. A session that ended
    meanwhile (signed out, expired) stays ended: the next connect is refused."""
    if not session.session_key or not session.exists(session.session_key):
        return
    try:
        session.modified = True
        session.save()
    except UpdateError:  # deleted between the check and the save
        pass


def _kind(message: dict | None) -> str:
    return str(message.get("type")) if isinstance(message, dict) else "frame"


class CustomerConsumer(SignalingConsumer):
    """``/ws/customer/``: anonymous; bound to one call by a signed token."""

    role = "customer"
    call_id: uuid.UUID | None = None
    _held: list[dict] | None = None  # call messages that arrived before `call.queued` went out
    # Who this socket is, from what it proved (kiosk credential at the handshake; an app claim
    # with its call.request) — the one place channel, kiosk and app device are read from.
    caller: access.Caller = access.Caller()
    socket_caller: access.Caller = access.Caller()  # as proven at the handshake (kiosk or web)
    _callback_offer: dict | None = None  # what a callback booked now would be (queue was full)

    async def connect(self):
        client = self.scope.get("client") or (None, None)
        credential = (self.scope.get("cookies") or {}).get(access.KIOSK_COOKIE)
        self.socket_caller = await database_sync_to_async(access.access_kiosk)(
            credential, ip=client[0]
        )
        self.caller = self.socket_caller
        await self.accept()
        await self.hello(channel=self.caller.channel)

    async def disconnect(self, code):
        if self.call_id is not None:
            await self.channel_layer.group_discard(
                notify.call_group(self.call_id), self.channel_name
            )
            await database_sync_to_async(services.call_leave)(
                call_id=self.call_id, actor="customer", reason="customer_left"
            )

    def _bound(self, message: dict) -> uuid.UUID:
        if self.call_id is None or uuid.UUID(message["call_id"]) != self.call_id:
            raise Forbidden("This socket is not bound to that call.", "本连接未绑定该通话。")
        return self.call_id

    async def _bind(self, call_id: uuid.UUID) -> None:
        self.call_id = call_id
        await self.channel_layer.group_add(notify.call_group(call_id), self.channel_name)

    def device_key(self) -> str | None:
        """The device asking, for the per-device limits: what it proved (``kiosk:<id>``,
        ``app:<device id>``), else the random id the customer page keeps in a first-party cookie
        (set by the page's view, carried by this socket's handshake); None when there is none."""
        if self.caller.device:
            return self.caller.device
        value = (self.scope.get("cookies") or {}).get(access.DEVICE_COOKIE)
        return value if access.device_id_valid(value) else None

    async def on_call_request(self, message: dict) -> None:
        if self.call_id is not None:
            call = await database_sync_to_async(selectors.call_get)(call_id=self.call_id)
            if call is not None and call.status in OPEN_CALL_STATUSES:
                raise Conflict(
                    "This socket already has a call in progress.", "本连接已有正在进行的通话。"
                )
        # The channel (and VIP) come from proof: the kiosk credential or a signed app claim.
        caller = access.caller_for_call(
            socket=self.socket_caller, claim=message.get("claim"), channel=message.get("channel")
        )
        self.caller = caller
        client = self.scope.get("client") or (None, None)
        # The rate limits first, off the database thread: a refused flood never reaches it.
        admission = await limits.call_request_admit_async(
            ip=client[0],
            device_id=self.device_key(),
            claims_priority=message.get("priority") == "elderly",
            ip_limited=not caller.device,
        )
        preferred = None
        if message.get("previous_token"):
            preferred = await database_sync_to_async(_previous_teller)(message["previous_token"])
        # Listen to the call's group before the call exists, since the router may answer it at
        # once; what arrives before `call.queued` is held back and sent right after it.
        call_id = uuid.uuid4()
        self._held = []
        await self._bind(call_id)
        try:
            call = await database_sync_to_async(services.call_enqueue)(
                call_id=call_id,
                business_key=message["business"],
                channel=caller.channel,
                language=message.get("language", "zh"),
                priority=Priority.VIP if caller.vip else admission.priority,
                priority_claim=admission.priority_claim,
                preferred_teller_id=preferred,
                customer_ip=client[0],
                customer_device=admission.device,
                admit=True,
                ip_limited=not caller.device,
            )
            place = call.place  # counted as it was admitted
            self._callback_offer = None
            await self.send_json(
                server_message(
                    "call.queued",
                    call_id=str(call.id),
                    token=customer_token_issue(call_id=call.id),
                    position=place.position if place else 1,
                    waiting=place.waiting if place else 1,
                    estimated_wait_s=place.estimated_wait_s if place else 0,
                    priority="elderly" if call.priority == Priority.ELDERLY else "normal",
                    priority_claim=call.priority_claim,
                )
            )
        except QueueFull as full:
            # Not queued: told so in words, and offered a callback instead (one per refusal).
            self._held = None
            await self.call_left(str(call_id))
            self._callback_offer = {
                "business_key": message["business"],
                "channel": message.get("channel", "web"),
                "language": message.get("language", "zh"),
                "customer_ip": client[0],
                "customer_device": admission.device,
            }
            await self.send_error(full, message)
            await self.send_json(
                server_message(
                    "queue.callback_offer",
                    reason="queue_full",
                    business=message["business"],
                    text=full.words(),
                )
            )
            return
        except BaseException:
            self._held = None
            await self.call_left(str(call_id))
            raise
        held, self._held = self._held, None
        for event in held:
            await self.signal_forward(event)

    async def signal_forward(self, event: dict) -> None:
        if self._held is not None:
            self._held.append(event)
            return
        message = event["message"]
        if (
            self.call_id is not None
            and message["type"] == "call.answered"
            and message["call_id"] == str(self.call_id)
        ):
            # The call is being connected: this socket's side gets its TURN credential, minted
            # here (never on the channel layer).
            message = {**message, "ice_servers": ice.ice_servers_for_call(call_id=self.call_id)}
            event = {**event, "message": message}
        await super().signal_forward(event)

    async def on_call_resume(self, message: dict) -> None:
        call_id = await database_sync_to_async(access_customer_call)(message["token"])
        if self.call_id is not None and self.call_id != call_id:
            raise Forbidden("This socket is bound to another call.", "本连接已绑定另一个通话。")
        call = await database_sync_to_async(selectors.call_get)(call_id=call_id)
        if call is None or call.status not in OPEN_CALL_STATUSES:
            await self.send_json(
                server_message("call.ended", call_id=str(call_id), reason="already_ended")
            )
            return
        await self._bind(call_id)
        if call.status == CallStatus.CONNECTED:
            await self.send_json(
                server_message(
                    "call.answered",
                    call_id=str(call_id),
                    ice_servers=ice.ice_servers_for_call(call_id=call_id),
                )
            )
            # Whatever a business waits for from this customer is asked again on this page.
            await database_sync_to_async(workflows.case_customer_prompt)(call_id=call_id)
        else:
            place = await database_sync_to_async(selectors.queue_place)(call_id=call_id)
            await self.send_json(
                server_message(
                    "queue.position",
                    call_id=str(call_id),
                    position=place.position if place else 1,
                    waiting=place.waiting if place else 1,
                    estimated_wait_s=place.estimated_wait_s if place else 0,
                )
            )

    async def on_webrtc_offer(self, message: dict) -> None:
        call_id = self._bound(message)
        call = await database_sync_to_async(selectors.call_get)(call_id=call_id)
        await self.send_to_media(call=call, leg="customer", sdp=message["sdp"])

    async def on_call_hangup(self, message: dict) -> None:
        call_id = self._bound(message)
        await database_sync_to_async(services.call_end)(
            call_id=call_id, actor="customer", reason="hangup_customer"
        )

    async def on_callback_request(self, message: dict) -> None:
        if "call_id" not in message:  # the callback offered when the queue was full
            offer, self._callback_offer = self._callback_offer, None
            if offer is None:
                raise Conflict("No callback was offered here.", "此处没有可预约的回电。")
            call = await database_sync_to_async(services.callback_book)(**offer)
            await self.send_json(
                server_message("call.ended", call_id=str(call.id), reason="callback")
            )
            return
        call_id = self._bound(message)
        await database_sync_to_async(services.call_request_callback)(call_id=call_id)

    async def on_kyc_consent(self, message: dict) -> None:
        call_id = self._bound(message)
        client = self.scope.get("client") or [None]
        await database_sync_to_async(kyc.identity_consent)(
            call_id=call_id,
            accepted=message["accepted"],
            geolocation=message.get("geolocation"),
            ip=client[0],
        )

    # The businesses of the call: the customer's answers (each checked against the bound call).
    async def on_case_agreement_read(self, message: dict) -> None:
        await database_sync_to_async(workflows.case_agreement_read)(
            call_id=self._bound(message),
            case_id=uuid.UUID(message["case_id"]),
            reached_end=message["reached_end"],
        )

    async def on_case_confirm(self, message: dict) -> None:
        await database_sync_to_async(workflows.case_confirm, thread_sensitive=False)(
            call_id=self._bound(message),
            case_id=uuid.UUID(message["case_id"]),
            accepted=message["accepted"],
        )

    async def on_case_authorise(self, message: dict) -> None:
        await database_sync_to_async(workflows.case_authorise, thread_sensitive=False)(
            call_id=self._bound(message),
            case_id=uuid.UUID(message["case_id"]),
            challenge_id=message["challenge_id"],
            ciphertext_b64=message["ciphertext_b64"],
        )

    async def on_peripheral_event(self, message: dict) -> None:
        # Peripherals are evidence (the card reader's chip feeds the identity check): only an
        # enrolled kiosk, still under its current credential, in a call it placed, reports them.
        if self.caller.channel != access.VTM:
            raise access.Refused(*access.NOT_A_KIOSK)
        call_id = self._bound(message)
        await database_sync_to_async(access.access_kiosk_call)(caller=self.caller, call_id=call_id)
        await database_sync_to_async(kyc.peripheral_report)(
            call_id=call_id,
            device=message["device"],
            event=message["event"],
            data=message.get("data") or {},
            actor=self.caller.actor,
        )

    async def call_left(self, call_id: str) -> None:
        await super().call_left(call_id)
        if self.call_id is not None and str(self.call_id) == call_id:
            self.call_id = None


class TellerConsumer(SignalingConsumer):
    """``/ws/teller/``: signed-in users of the teller (or supervisor) group."""

    role = "teller"
    staff = True

    async def connect(self):
        user = self.scope.get("user")
        if not await database_sync_to_async(access_teller)(user):
            await self.close(code=4403)
            return
        self.user = user
        self.call_ids: set[str] = set()
        await self.accept()
        await self.channel_layer.group_add(notify.TELLERS_GROUP, self.channel_name)
        await self.channel_layer.group_add(notify.teller_group(user.pk), self.channel_name)
        presence, reason, snapshot, held = await database_sync_to_async(
            selectors.teller_console_state
        )(teller=user)
        await self.hello(presence=presence, reason=reason, user={"username": user.get_username()})
        for call_id in held:
            await self._join(call_id)
        await self.send_json(server_message("queue.snapshot", **snapshot))

    async def disconnect(self, code):
        user = getattr(self, "user", None)
        if user is None:
            return
        await self.channel_layer.group_discard(notify.TELLERS_GROUP, self.channel_name)
        await self.channel_layer.group_discard(notify.teller_group(user.pk), self.channel_name)
        for call_id in list(self.call_ids):
            await self.channel_layer.group_discard(notify.call_group(call_id), self.channel_name)
        await database_sync_to_async(services.teller_disconnected)(teller=user)

    async def _join(self, call_id: str) -> None:
        self.call_ids.add(call_id)
        await self.channel_layer.group_add(notify.call_group(call_id), self.channel_name)

    async def on_presence_set(self, message: dict) -> None:
        await database_sync_to_async(services.teller_presence_set)(
            teller=self.user, status=message["status"], reason=message.get("reason", "")
        )

    async def on_call_reject(self, message: dict) -> None:
        await database_sync_to_async(services.offer_reject)(
            call_id=uuid.UUID(message["call_id"]), teller=self.user
        )

    async def on_call_accept(self, message: dict) -> None:
        call = await database_sync_to_async(services.offer_accept)(
            call_id=uuid.UUID(message["call_id"]), teller=self.user
        )
        await self._join(str(call.id))
        await self.send_json(
            server_message(
                "call.connected",
                call_id=str(call.id),
                business=call.business.key,
                business_name={"zh": call.business.name_zh, "en": call.business.name_en},
                channel=call.channel,
                language=call.language,
                ice_servers=ice.ice_servers_for_call(call_id=call.id),
                priority=call.priority,
                priority_claim=call.priority_claim,
            )
        )

    async def on_webrtc_offer(self, message: dict) -> None:
        call = await database_sync_to_async(services.access_call_for_teller)(
            call_id=uuid.UUID(message["call_id"]), teller=self.user
        )
        await self.send_to_media(call=call, leg="teller", sdp=message["sdp"])

    async def on_call_hangup(self, message: dict) -> None:
        call = await database_sync_to_async(services.access_call_for_teller)(
            call_id=uuid.UUID(message["call_id"]), teller=self.user
        )
        await database_sync_to_async(services.call_end)(
            call_id=call.id, actor=f"teller:{self.user.pk}", reason="hangup_teller"
        )

    async def call_left(self, call_id: str) -> None:
        await super().call_left(call_id)
        self.call_ids.discard(call_id)

    # The businesses of the call (workflows/): each message is one service.
    async def on_case_start(self, message: dict) -> None:
        await database_sync_to_async(workflows.case_start, thread_sensitive=False)(
            call_id=uuid.UUID(message["call_id"]), teller=self.user, business=message["business"]
        )

    async def on_case_fill(self, message: dict) -> None:
        await database_sync_to_async(workflows.case_fill, thread_sensitive=False)(
            call_id=uuid.UUID(message["call_id"]),
            case_id=uuid.UUID(message["case_id"]),
            teller=self.user,
            params=message["params"],
        )

    async def on_case_agreement_send(self, message: dict) -> None:
        await database_sync_to_async(workflows.case_agreement_send)(
            call_id=uuid.UUID(message["call_id"]),
            case_id=uuid.UUID(message["case_id"]),
            teller=self.user,
        )

    async def on_case_pin_resend(self, message: dict) -> None:
        await database_sync_to_async(workflows.case_pin_resend, thread_sensitive=False)(
            call_id=uuid.UUID(message["call_id"]),
            case_id=uuid.UUID(message["case_id"]),
            teller=self.user,
        )

    async def on_case_submission_retry(self, message: dict) -> None:
        await database_sync_to_async(workflows.case_submission_retry, thread_sensitive=False)(
            call_id=uuid.UUID(message["call_id"]),
            case_id=uuid.UUID(message["case_id"]),
            teller=self.user,
        )

    async def on_case_cancel(self, message: dict) -> None:
        await database_sync_to_async(workflows.case_cancel)(
            call_id=uuid.UUID(message["call_id"]),
            case_id=uuid.UUID(message["case_id"]),
            teller=self.user,
        )

    async def signal_forward(self, event: dict) -> None:
        await super().signal_forward(event)
        if event["message"]["type"] == "call.ended":
            # What was done in the call, for the teller's wrap-up.
            call_id = uuid.UUID(event["message"]["call_id"])
            cases = await database_sync_to_async(workflow_selectors.call_summary)(call_id=call_id)
            await self.send_json(server_message("call.summary", call_id=str(call_id), cases=cases))

    # The identity check (KYC panel): each message is one service of kyc.services.
    async def on_kyc_start(self, message: dict) -> None:
        await database_sync_to_async(kyc.identity_check_start)(
            call_id=uuid.UUID(message["call_id"]), teller=self.user
        )

    async def on_kyc_capture(self, message: dict) -> None:
        await database_sync_to_async(kyc.identity_capture_request)(
            call_id=uuid.UUID(message["call_id"]), teller=self.user, side=message["side"]
        )

    async def on_kyc_fields_confirm(self, message: dict) -> None:
        await database_sync_to_async(kyc.identity_fields_confirm)(
            call_id=uuid.UUID(message["call_id"]), teller=self.user, fields=message["fields"]
        )

    async def on_kyc_face_match(self, message: dict) -> None:
        await database_sync_to_async(kyc.identity_face_match_request)(
            call_id=uuid.UUID(message["call_id"]), teller=self.user
        )

    async def on_kyc_liveness(self, message: dict) -> None:
        await database_sync_to_async(kyc.identity_liveness_request)(
            call_id=uuid.UUID(message["call_id"]), teller=self.user
        )

    async def on_kyc_national(self, message: dict) -> None:
        await database_sync_to_async(kyc.identity_national_request)(
            call_id=uuid.UUID(message["call_id"]), teller=self.user
        )


def _previous_teller(token: str) -> int | None:
    """The teller of the customer's previous call, for "continue with the same teller"."""
    try:
        call_id = access_customer_call(token)
    except TokenError as exc:
        raise TokenError(
            f"The previous call's token: {exc.en}", f"上一次通话的凭证：{exc.zh}", exc.code
        ) from None
    call = selectors.call_get(call_id=call_id)
    return call.teller_id if call is not None else None


class SupervisorConsumer(SignalingConsumer):
    """``/ws/supervisor/``: the wallboard's live feed and supervisor actions."""

    role = "supervisor"
    staff = True
    push_every_s = 2.0

    async def connect(self):
        user = self.scope.get("user")
        if not await database_sync_to_async(access_supervisor)(user):
            await self.close(code=4403)
            return
        self.user = user
        await self.accept()
        await self.channel_layer.group_add(notify.SUPERVISORS_GROUP, self.channel_name)
        await self.hello(user={"username": user.get_username()})
        self.pusher = asyncio.ensure_future(self._push_wallboard())

    async def disconnect(self, code):
        if getattr(self, "user", None) is None:
            return
        self.pusher.cancel()
        await self.channel_layer.group_discard(notify.SUPERVISORS_GROUP, self.channel_name)

    async def _push_wallboard(self) -> None:
        while True:
            try:
                figures = await database_sync_to_async(wallboard)()
                await self.send_json(server_message("wallboard", **figures))
            except Exception:
                log.exception("wallboard push failed")
            await asyncio.sleep(self.push_every_s)  # a refresh period

    async def on_presence_set_for(self, message: dict) -> None:
        await database_sync_to_async(services.teller_presence_set_by_name)(
            username=message["teller"],
            status=message["status"],
            reason=message.get("reason", ""),
            by=self.user,
        )

    async def on_call_move(self, message: dict) -> None:
        await database_sync_to_async(services.call_move_by_name)(
            call_id=uuid.UUID(message["call_id"]), username=message["teller"], by=self.user
        )
