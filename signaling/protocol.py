"""The signaling protocol, version 1: one JSON schema per message type and role.

``docs/protocol.md`` is generated from this module (``manage.py protocol_doc``) and a test keeps
the two in step. Every incoming frame goes through :func:`parse`; a bad one raises
:class:`ProtocolError` carrying the code and words the client gets back.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Sequence
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators

from videobank.errors import AppError

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024
# What a JSON text may hold before it is decoded at all: Python's decoder (and the schema
# validator after it) recurse once per level, and accept what JSON itself does not say
# (NaN, Infinity, 1e400 as infinity, integers of thousands of digits, a key twice, unpaired
# surrogates), each a way to make the server fail instead of refusing the frame.
MAX_DEPTH = 6  # the deepest message (peripheral.event data.fields) is 3 levels
MAX_INTEGER_DIGITS = 20
MAX_ID_LENGTH = 128  # the client's own message `id`, echoed as `ref`
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
# NUL cannot be stored in Postgres text; a lone surrogate cannot be encoded as UTF-8.
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")

# An id is a UUID in its canonical text form (8-4-4-4-12 hex digits), nothing else: no braces,
# no "urn:uuid:", no run of dashes, so every id a schema lets through is one the server can read.
_UUID = {
    "type": "string",
    "format": "uuid",
    "pattern": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
}
_SDP = {"type": "string", "minLength": 10, "maxLength": 60000}
_TEXT = {"type": "string", "maxLength": 200}
_DATE = {"type": "string", "pattern": "^[0-9]{8}$"}  # YYYYMMDD
_ID_NUMBER = {"type": "string", "pattern": "^[0-9]{17}[0-9Xx]$"}
_JPEG_B64 = {"type": "string", "maxLength": 48000, "pattern": "^[A-Za-z0-9+/=]+$"}
_ID_FIELDS = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 64},
        "sex": {"enum": ["男", "女"]},
        "ethnicity": {"type": "string", "minLength": 1, "maxLength": 16},
        "birth": _DATE,
        "address": {"type": "string", "minLength": 1, "maxLength": 200},
        "id_number": _ID_NUMBER,
        "authority": {"type": "string", "maxLength": 64},
        "validity": {
            "type": "string",
            "pattern": "^[0-9]{4}\\.[0-9]{2}\\.[0-9]{2}-([0-9]{4}\\.[0-9]{2}\\.[0-9]{2}|长期)$",
        },
    },
    "additionalProperties": False,
}


def _message(type_: str, properties: dict[str, Any] | None = None, required: Sequence[str] = ()):
    props = {
        "type": {"const": type_},
        "v": {"const": PROTOCOL_VERSION},
        "id": {"type": "string", "maxLength": MAX_ID_LENGTH},
    }
    props.update(properties or {})
    return {
        "type": "object",
        "properties": props,
        "required": ["type", "v", *required],
        "additionalProperties": False,
    }


# What each role may send to the server, with a one-line description for the docs.
CUSTOMER_MESSAGES: dict[str, tuple[str, dict]] = {
    "call.request": (
        "Place a call for a business; answered by `call.queued`. The call's channel comes from "
        "what the socket proves, never from what it says: `vtm` for an enrolled kiosk (its "
        "credential cookie on the handshake), `app` with a `claim` the bank's app backend signed "
        "(VIP only if the claim says so), else `web`. `channel` is optional and only states what "
        "the client expects: a different one is refused (`forbidden`, in words) and no call is "
        "placed, so a kiosk whose enrolment lapsed learns it before its customer queues. A "
        "forged, tampered or expired `claim` is refused likewise.",
        _message(
            "call.request",
            {
                "business": {"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"},
                "channel": {"enum": ["web", "app", "vtm"]},
                "claim": {
                    "type": "string",
                    "maxLength": 700,
                    "pattern": "^[A-Za-z0-9_-]{1,32}\\.[A-Za-z0-9_-]{16,600}\\.[A-Za-z0-9_-]{43}$",
                },
                "language": {"type": "string", "pattern": "^[a-zA-Z-]{2,16}$"},
                "priority": {"enum": ["normal", "elderly"]},
                "previous_token": {"type": "string", "maxLength": 1000},
            },
            ["business"],
        ),
    ),
    "call.resume": (
        "Re-attach a new socket to the call a token was issued for (e.g. after a reload).",
        _message("call.resume", {"token": {"type": "string", "maxLength": 1000}}, ["token"]),
    ),
    "webrtc.offer": (
        "The customer's SDP offer (non-trickle: ICE gathering complete).",
        _message("webrtc.offer", {"call_id": _UUID, "sdp": _SDP}, ["call_id", "sdp"]),
    ),
    "call.hangup": (
        "Leave the queue or end the call.",
        _message("call.hangup", {"call_id": _UUID}, ["call_id"]),
    ),
    "callback.request": (
        "Stop waiting and be called back instead (offered after the maximum wait); without "
        "`call_id`, take the callback offered when the queue was full.",
        _message("callback.request", {"call_id": _UUID}),
    ),
    "kyc.consent": (
        "Answer the identity check's consent request; `geolocation` only if the customer let "
        "the browser share it.",
        _message(
            "kyc.consent",
            {
                "call_id": _UUID,
                "accepted": {"type": "boolean"},
                "geolocation": {
                    "type": "object",
                    "properties": {
                        "lat": {"type": "number", "minimum": -90, "maximum": 90},
                        "lon": {"type": "number", "minimum": -180, "maximum": 180},
                        "accuracy_m": {"type": "number", "minimum": 0, "maximum": 1e6},
                    },
                    "required": ["lat", "lon"],
                    "additionalProperties": False,
                },
            },
            ["call_id", "accepted"],
        ),
    ),
    "peripheral.event": (
        "VTM kiosk: a peripheral reports (`device`, `event`, `data`); the ID-card reader sends "
        "`id_card_reader` / `card_read` with the chip's fields and photo. Only from an enrolled "
        "kiosk's socket, in the call it placed; from any other socket it is refused "
        "(`forbidden`, in words) and nothing changes.",
        _message(
            "peripheral.event",
            {
                "call_id": _UUID,
                "device": {
                    "enum": [
                        "id_card_reader",
                        "document_camera",
                        "receipt_printer",
                        "card_dispenser",
                    ]
                },
                "event": {"type": "string", "pattern": "^[a-z_]{1,32}$"},
                "data": {
                    "type": "object",
                    "properties": {
                        "fields": _ID_FIELDS,
                        "photo_jpeg_b64": _JPEG_B64,
                        "detail": _TEXT,
                    },
                    "additionalProperties": False,
                },
            },
            ["call_id", "device", "event"],
        ),
    ),
    "case.agreement.read": (
        "The customer reached the end of the agreement and agrees. The reading time is the "
        "server's (from when it sent the agreement); `reading_ms`, which older pages send, is "
        "accepted and ignored.",
        _message(
            "case.agreement.read",
            {
                "call_id": _UUID,
                "case_id": _UUID,
                "reached_end": {"type": "boolean"},
                "reading_ms": {"type": "integer", "minimum": 0, "maximum": 86400000},
            },
            ["call_id", "case_id", "reached_end"],
        ),
    ),
    "case.confirm": (
        "The customer confirms (or refuses) the business summary shown on their screen.",
        _message(
            "case.confirm",
            {"call_id": _UUID, "case_id": _UUID, "accepted": {"type": "boolean"}},
            ["call_id", "case_id", "accepted"],
        ),
    ),
    "case.authorise": (
        "The PIN or one-time code, encrypted in the browser for the core bank (RSA-OAEP): the "
        "server never sees it in clear.",
        _message(
            "case.authorise",
            {
                "call_id": _UUID,
                "case_id": _UUID,
                "challenge_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{8,64}$"},
                "ciphertext_b64": {
                    "type": "string",
                    "minLength": 16,
                    "maxLength": 1400,
                    "pattern": "^[A-Za-z0-9+/=]+$",
                },
            },
            ["call_id", "case_id", "challenge_id", "ciphertext_b64"],
        ),
    ),
    "ping": ("Keep-alive; answered by `pong`.", _message("ping")),
}

TELLER_MESSAGES: dict[str, tuple[str, dict]] = {
    "presence.set": (
        "Change the teller's own presence.",
        _message(
            "presence.set",
            {
                "status": {"enum": ["available", "offline", "break"]},
                "reason": {"type": "string", "maxLength": 64},
            },
            ["status"],
        ),
    ),
    "call.accept": (
        "Answer the call you are being offered (`call.offer`); answered by `call.connected`.",
        _message("call.accept", {"call_id": _UUID}, ["call_id"]),
    ),
    "call.reject": (
        "Decline the call you are being offered; it is offered to the next eligible teller.",
        _message("call.reject", {"call_id": _UUID}, ["call_id"]),
    ),
    "webrtc.offer": (
        "The teller's SDP offer for the call it holds.",
        _message("webrtc.offer", {"call_id": _UUID, "sdp": _SDP}, ["call_id", "sdp"]),
    ),
    "call.hangup": (
        "End the call the teller holds.",
        _message("call.hangup", {"call_id": _UUID}, ["call_id"]),
    ),
    "kyc.start": (
        "Start the call's identity check (or get the one already done); the customer is asked "
        "for consent. Answered by `kyc.state`.",
        _message("kyc.start", {"call_id": _UUID}, ["call_id"]),
    ),
    "kyc.capture": (
        "Grab the card (`side` front or back) from the customer's live video, on the server.",
        _message(
            "kyc.capture",
            {"call_id": _UUID, "side": {"enum": ["front", "back"]}},
            ["call_id", "side"],
        ),
    ),
    "kyc.fields.confirm": (
        "The teller confirms (and corrects) the fields read from the card; corrections are "
        "audited. Starts the national ID check.",
        _message(
            "kyc.fields.confirm", {"call_id": _UUID, "fields": _ID_FIELDS}, ["call_id", "fields"]
        ),
    ),
    "kyc.face_match": (
        "Match the card photo against frames the server samples from the customer's video.",
        _message("kyc.face_match", {"call_id": _UUID}, ["call_id"]),
    ),
    "kyc.liveness": (
        "Give the customer a random liveness challenge, verified on server-side frames.",
        _message("kyc.liveness", {"call_id": _UUID}, ["call_id"]),
    ),
    "case.start": (
        "Start a business for the call (`business`: a key of the workflow catalogue).",
        _message(
            "case.start",
            {"call_id": _UUID, "business": {"type": "string", "pattern": "^[a-z0-9_]{1,64}$"}},
            ["call_id", "business"],
        ),
    ),
    "case.fill": (
        "The teller's form for a business (`params`: its fields; checked by the workflow).",
        _message(
            "case.fill",
            {
                "call_id": _UUID,
                "case_id": _UUID,
                "params": {
                    "type": "object",
                    "maxProperties": 40,
                    "propertyNames": {"pattern": "^[a-z][a-z0-9_]{0,63}$"},
                    "additionalProperties": {
                        "type": ["string", "number", "boolean", "null"],
                        "maxLength": 500,
                        "minimum": -(10**15),
                        "maximum": 10**15,
                    },
                },
            },
            ["call_id", "case_id", "params"],
        ),
    ),
    "case.agreement.send": (
        "Push the business's agreement to the customer's screen.",
        _message(
            "case.agreement.send", {"call_id": _UUID, "case_id": _UUID}, ["call_id", "case_id"]
        ),
    ),
    "case.pin.resend": (
        "Ask the customer again for the PIN or one-time code (a fresh keypad).",
        _message("case.pin.resend", {"call_id": _UUID, "case_id": _UUID}, ["call_id", "case_id"]),
    ),
    "case.submission.retry": (
        "Send a business held by a core-banking outage again now (same idempotency key).",
        _message(
            "case.submission.retry", {"call_id": _UUID, "case_id": _UUID}, ["call_id", "case_id"]
        ),
    ),
    "case.cancel": (
        "Cancel a business not yet submitted.",
        _message("case.cancel", {"call_id": _UUID, "case_id": _UUID}, ["call_id", "case_id"]),
    ),
    "kyc.national": (
        "Run (again) the national online ID check with the confirmed fields.",
        _message("kyc.national", {"call_id": _UUID}, ["call_id"]),
    ),
    "ping": ("Keep-alive; answered by `pong`.", _message("ping")),
}

SUPERVISOR_MESSAGES: dict[str, tuple[str, dict]] = {
    "presence.set_for": (
        "Set a teller's presence (by user name): available, offline or break.",
        _message(
            "presence.set_for",
            {
                "teller": {"type": "string", "minLength": 1, "maxLength": 150},
                "status": {"enum": ["available", "offline", "break"]},
                "reason": {"type": "string", "maxLength": 64},
            },
            ["teller", "status"],
        ),
    ),
    "call.move": (
        "Send a waiting call to a named teller (offered to them as soon as they are free).",
        _message(
            "call.move",
            {"call_id": _UUID, "teller": {"type": "string", "minLength": 1, "maxLength": 150}},
            ["call_id", "teller"],
        ),
    ),
    "ping": ("Keep-alive; answered by `pong`.", _message("ping")),
}

# What the server sends (documented; the server builds these itself).
# fmt: off
SERVER_MESSAGES: dict[str, str] = {
    "hello": "First frame on every socket: `protocol`, `role`, `ice_servers` (STUN URLs only, no credentials); for customers the `channel` the socket proved (`vtm` for an enrolled kiosk, else `web`), for tellers `presence`.",
    "call.queued": "Customer: the call is waiting; `call_id`, `token` (keep it to resume), `position`, `priority` (normal / elderly) and `priority_claim` (claimed; over_limit: the elderly queue was asked for too often from this network, the call waits as a normal one).",
    "queue.position": "Customer: new `position` (1 = next) and `waiting` (calls waiting for the business).",
    "queue.snapshot": "Teller: the first `QUEUE_SNAPSHOT_CALLS` `calls` waiting, in service order (`call_id`, `business`, `business_name`, `channel`, `language`, `priority`, `priority_claim`, `waited_s`); `waiting` in all, `more` not listed, `businesses` (`business`, `business_name`, `waiting`).",
    "presence": "Teller: its presence `status` changed (`reason` for a break; `by` if a supervisor did it).",
    "call.offer": "Teller: a call is ringing for you (`call_id`, `business`, `business_name`, `channel`, `language`, `priority`, `priority_claim` — `claimed`: the customer's own word, not yet checked — `waited_s`, `expires_in_s`).",
    "call.priority": "Teller: the identity check's birth date settled the customer's elderly claim (`call_id`, `priority`, `priority_claim`: confirmed or withdrawn, `text` zh/en).",
    "offer.withdrawn": "Teller: the offer of `call_id` is gone (timed out, declined, or the customer left).",
    "call.requeued": "Customer: the teller's connection dropped; you are back at the head of the queue.",
    "queue.callback_offer": "Customer: the wait is long; you may send `callback.request` instead of waiting. With `reason` queue_full (and no `call_id`): the queue is full and the call was not placed; `callback.request` without `call_id` books the callback (`business`, `text` zh/en).",
    "wallboard": "Supervisor: live queue and service figures (see docs/wallboard.md).",
    "teller.presence": "Supervisor: a teller's presence changed (`teller`, `status`, `reason`).",
    "supervisor.alert": "Supervisor: something needs attention (`kind`, e.g. auto_break after missed offers).",
    "call.answered": "Customer: a teller took the call; start WebRTC now with `ice_servers` (STUN, and TURN with a credential for this call that expires within 10 minutes).",
    "call.connected": "Teller: the call is yours (`call_id`, `business`, `business_name`, `channel`, `language`, `priority`, `priority_claim`); start WebRTC now with `ice_servers` (as in `call.answered`).",
    "webrtc.answer": "The server's SDP answer to your offer (`sdp`).",
    "media.state": "Media of your leg: `state` = connected | failed | closed.",
    "call.ended": "The call ended: `call_id`, `reason` (hangup_customer, hangup_teller, ...).",
    "kyc.state": "Teller: the call's identity check as the KYC panel shows it (`check`: status, steps with reasons, fields, corrections, scores, expiry).",
    "kyc.consent_request": "Customer: the teller starts the identity check; answer with `kyc.consent`.",
    "kyc.progress": "Customer: identity check progress (`step`, `status`, `text` in zh/en); no personal data.",
    "kyc.liveness_challenge": "Customer: do these moves now (`steps`: `kind`, `prompt` zh/en, `duration_ms`).",
    "peripheral": "Teller: a kiosk peripheral reported (`device`, `event`, `summary`).",
    "case.state": "Teller: one business of the call as its card shows it (`case`: status, steps, form, summary, errors in words, receipt; `revision` grows with every change — show the highest seen, messages from different processes may arrive out of order).",
    "case.agreement": "Customer: read this agreement to its end (`case_id`, `title`, `paragraphs`).",
    "case.confirm_request": "Customer: confirm or refuse this business (`case_id`, `summary`).",
    "case.pin_request": "Customer: enter the PIN (or one-time code) on the randomized keypad; encrypt it with `public_key_spki_b64` (`method`, `nonce`, `challenge_id`).",
    "case.progress": "Customer: a business's progress in words (`case_id`, `status`, `text`, `revision`: ignore one lower than the last shown).",
    "case.receipt": "Customer: the business is done; its e-receipt (`case_id`, `code`, `url`, `pdf_url`: each link carries the receipt's own token, valid `WORKFLOW_RECEIPT_LINK_MAX_AGE_S`; the call's token opens no receipt).",
    "call.summary": "Teller: at hang-up, the businesses of the call (`cases`: status, receipt).",
    "pong": "Answer to `ping`.",
    "error": "Something you sent was refused: `code`, `detail` (the words in English, then ` / `, then in Chinese), and `ref` (your message `id`) if given; `rate_limited` adds `limit` and, for a rate, `retry_after_s`. The same refusal over HTTP is `{code, detail: {en, zh}}` with its status.",
}
# fmt: on

ERROR_CODES: dict[str, str] = {
    "frame_too_large": "The frame is over 64 KiB.",
    "bad_json": "The frame is not a JSON object, or holds what the protocol refuses before reading it: nesting deeper than 6 levels, NaN, Infinity or an out-of-range number, an integer of more than 20 digits, a key twice in one object, a NUL character or an unpaired surrogate.",
    "unsupported_version": "`v` is missing or not a protocol version this server speaks.",
    "unknown_type": "`type` is not a message this role may send.",
    "invalid": "The message does not match its schema (`detail` says which field), or what it carries cannot be used (an SDP offer the media server cannot read; `detail` says why, in English and Chinese).",
    "forbidden": "The message names a call this socket is not bound to, or the role or device lacks rights (a peripheral event from a socket that is not an enrolled kiosk, a channel the socket did not prove, a forged or expired app claim).",
    "bad_token": "The customer token is invalid or expired.",
    "call_ended": "The customer token's call ended more than `CUSTOMER_TOKEN_AFTER_END_S` ago: the token opens nothing any more.",
    "not_found": "The business or call does not exist.",
    "conflict": "The move is not allowed in the call's current state (e.g. already taken).",
    "media_unavailable": "No media worker is alive to carry the call.",
    "bad_image": "A picture (upload, chip photo) is not usable: not an image, too large, damaged; `detail` says which.",
    "face_problem": "No face, several faces, or a face too small in a picture.",
    "service_unavailable": "An outside service (national ID check) is not answering; retry.",
    "not_connected": "Identity evidence (a chip read) for a call not answered yet; nothing was taken.",
    "not_waiting": "Identity evidence the teller has not asked for (no identity check yet); nothing was taken.",
    "no_consent": "Identity evidence before the customer consented to the check; nothing was taken.",
    "declined": "Identity evidence after the customer declined the check; nothing was taken.",
    "already_received": "Identity evidence for a side of the card the teller already has and relies on (the teller asks again if needed); nothing was taken.",
    "no_portrait": "A face match with no card photo to match against: capture the card front first.",
    "portrait_changed": "A face match after the card's photo changed since the national ID check: run the national check again first.",
    "rate_limited": "Too many call requests, or open calls, from this network or device; `limit` says which (ip_rate, device_rate, ip_open, device_open), `retry_after_s` when a rate lets the next one through. No call was placed.",
    "queue_full": "The queue holds as many waiting calls as it may; no call was placed, a `queue.callback_offer` follows.",
    "internal": "The server failed; the socket stays open and nothing was changed.",
}


# A refused frame in Chinese, by code; the English says exactly what (for a client's developer).
_REFUSED_ZH = {
    "frame_too_large": "消息过大，未予处理。",
    "bad_json": "消息不是本协议接受的 JSON 对象，未予处理。",
    "unsupported_version": "不支持该协议版本，未予处理。",
    "unknown_type": "此角色不能发送这类消息，未予处理。",
    "invalid": "消息内容不符合协议格式，未予处理。",
}
# The English of an `invalid` is cut here: with the Chinese, the detail stays under 300
# characters and never echoes a frame back.
_INVALID_MAX = 300 - len(" / ") - len(_REFUSED_ZH["invalid"])


class ProtocolError(AppError):
    """A frame refused before any service sees it (``code``: which rule); answered like every
    refusal (``videobank.errors``)."""

    def __init__(self, code: str, detail: str, ref: str | None = None) -> None:
        super().__init__(detail, _REFUSED_ZH.get(code, "消息未被接受。"), code=code)
        self.ref = ref  # the offending message's ``id``, when it had one

    def __str__(self) -> str:
        return f"{self.code}: {self.en}"


@functools.cache
def _ecma_regex(pattern: str) -> re.Pattern:
    """``pattern`` as JSON Schema means it (ECMA-262): a final ``$`` is the end of the text.
    Python's ``$`` also matches before a trailing newline, so ``^[a-z_]+$`` would let
    ``"card_loss\\n"`` through."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + "\\Z"
    return re.compile(pattern)


def _pattern(validator, pattern: str, instance: Any, schema: dict):
    if validator.is_type(instance, "string") and not _ecma_regex(pattern).search(instance):
        if schema.get("format") == "uuid":
            yield ValidationError(
                f"{_short(instance)} is not an id: a UUID of 8-4-4-4-12 hex digits is expected."
            )
        else:
            yield ValidationError(f"{_short(instance)} does not match {pattern!r}")


_Validator = validators.extend(Draft202012Validator, {"pattern": _pattern})


def _short(value: Any, limit: int = 40) -> str:
    """A value as an error message quotes it: never the whole of a long one."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _validators(messages: dict[str, tuple[str, dict]]) -> dict[str, Draft202012Validator]:
    return {name: _Validator(schema) for name, (_, schema) in messages.items()}


_VALIDATORS = {
    "customer": _validators(CUSTOMER_MESSAGES),
    "teller": _validators(TELLER_MESSAGES),
    "supervisor": _validators(SUPERVISOR_MESSAGES),
}


def parse(role: str, text: str | None, *, binary: bool = False) -> dict[str, Any]:
    """Decode and validate one incoming frame for ``role``; raise ProtocolError when bad."""
    if binary or text is None:
        raise ProtocolError("bad_json", "Binary frames are not part of the protocol.")
    if (
        len(text) > MAX_FRAME_BYTES
        or len(text.encode("utf-8", errors="surrogatepass")) > MAX_FRAME_BYTES
    ):
        raise ProtocolError("frame_too_large", f"Frames are limited to {MAX_FRAME_BYTES} bytes.")
    message = _decode(text)
    try:
        return _validate(role, message)
    except ProtocolError as exc:
        ref = message.get("id")
        exc.ref = ref if isinstance(ref, str) and len(ref) <= MAX_ID_LENGTH else None
        raise


def _decode(text: str) -> dict[str, Any]:
    _depth_check(text)
    try:
        message = json.loads(
            text,
            object_pairs_hook=_object,
            parse_constant=_constant,
            parse_float=_float,
            parse_int=_int,
        )
    except ValueError as exc:  # JSONDecodeError, and int() past Python's digit limit
        raise ProtocolError("bad_json", f"Not valid JSON: {getattr(exc, 'msg', exc)}.") from None
    if not isinstance(message, dict):
        raise ProtocolError("bad_json", "A message must be a JSON object.")
    _text_check(message)
    return message


def _depth_check(text: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH by counting brackets outside strings: linear, at
    the regex engine's speed, and before anything recurses."""
    depth = 0
    for bracket in _BRACKET.finditer(_JSON_STRING.sub("", text)):
        if bracket.group() in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise ProtocolError(
                    "bad_json", f"The message is nested deeper than {MAX_DEPTH} levels."
                )
        else:
            depth -= 1


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    message = dict(pairs)
    if len(message) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ProtocolError(
                    "bad_json", f"The key {_short(key)} appears twice in one object."
                )
            seen.add(key)
    return message


def _constant(name: str) -> Any:
    raise ProtocolError("bad_json", f"{name} is not a JSON number.")


def _float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ProtocolError("bad_json", f"The number {_short(text)} is out of range.")
    return number


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise ProtocolError("bad_json", f"Integers are limited to {MAX_INTEGER_DIGITS} digits.")
    return int(text)


def _text_check(value: Any) -> None:
    """Every key and string of the (depth-bounded) message."""
    if isinstance(value, str):
        if _BAD_TEXT.search(value):
            raise ProtocolError(
                "bad_json", "Text may not hold a NUL character or an unpaired surrogate."
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            _text_check(key)
            _text_check(item)
    elif isinstance(value, list):
        for item in value:
            _text_check(item)


def _validate(role: str, message: dict[str, Any]) -> dict[str, Any]:
    if message.get("v") != PROTOCOL_VERSION:
        raise ProtocolError(
            "unsupported_version",
            f"This server speaks protocol version {PROTOCOL_VERSION}; "
            f"got {_short(message.get('v'))}.",
        )
    type_ = message.get("type")
    validator = _VALIDATORS[role].get(type_) if isinstance(type_, str) else None
    if validator is None:
        raise ProtocolError("unknown_type", f"{_short(type_)} is not a message a {role} may send.")
    error = next(
        iter(sorted(validator.iter_errors(message), key=lambda e: [str(p) for p in e.path])),
        None,
    )
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "message"
        # jsonschema quotes the whole value ("'xx…x' is too long"): quote a short part of it.
        words = error.message.replace(repr(error.instance), _short(error.instance), 1)
        detail = f"{where}: {words}"
        cut = detail if len(detail) <= _INVALID_MAX else detail[: _INVALID_MAX - 1] + "…"
        raise ProtocolError("invalid", cut)
    return message


def server_message(type_: str, **fields: Any) -> dict[str, Any]:
    assert type_ in SERVER_MESSAGES, type_
    return {"type": type_, "v": PROTOCOL_VERSION, **fields}


def error_message(code: str, detail: str, ref: str | None = None, **fields: Any) -> dict[str, Any]:
    message = server_message("error", **fields, code=code, detail=detail)
    if ref is not None:
        message["ref"] = ref
    return message


def render_markdown() -> str:
    """The protocol as documentation; ``docs/protocol.md`` is this text."""
    out = [
        "# Signaling protocol, version 1",
        "",
        "<!-- Generated by `python manage.py protocol_doc`; edit signaling/protocol.py. -->",
        "",
        "Customers connect to `/ws/customer/` (anonymous; a signed token binds the socket to its",
        "call; an enrolled kiosk carries its credential cookie `vtm_kiosk` on the handshake, an",
        "app a signed `claim` in `call.request`), tellers to `/ws/teller/` (Django session; group",
        "`teller`), supervisors to",
        "`/ws/supervisor/` (group `supervisor`). Every frame is a JSON",
        'object with `"v": 1` and a `type`; an optional `id` is echoed as `ref` in errors.',
        f"Frames over {MAX_FRAME_BYTES} bytes are refused, and so is JSON nested deeper than",
        f"{MAX_DEPTH} levels; ids are UUIDs (8-4-4-4-12 hex digits) and a pattern matches the",
        "whole value. A refused message gets an `error` and the socket stays open.",
        "",
        "WebRTC is non-trickle: a client waits for ICE gathering to complete, then sends one",
        "`webrtc.offer`; the server's media worker answers with a complete `webrtc.answer`.",
        "Media always flows client ⇄ server (aiortc), never peer to peer.",
        "",
        "## Flow",
        "",
        "1. customer → `call.request` → `call.queued` (token, position), then `queue.position`s.",
        "2. teller → `presence.set available`; the router offers a call → `call.offer` (ringing,",
        "   15 s) → `call.accept` or `call.reject` (declined/timed-out offers go to the next teller).",
        "3. customer ← `call.answered`, teller ← `call.connected`, each with the `ice_servers` to",
        "   use for this call (a TURN credential of its own, expiring within 10 minutes; `hello`",
        "   holds STUN URLs only); each sends `webrtc.offer` and gets `webrtc.answer`, then",
        "   `media.state`.",
        "4. either → `call.hangup`; both ← `call.ended`.",
        "",
        "Identity check, during a connected call: teller → `kyc.start`; customer ←",
        "`kyc.consent_request` → `kyc.consent`; teller → `kyc.capture` (front/back: the media",
        "worker grabs the customer's video), `kyc.fields.confirm` (starts the national check),",
        "`kyc.face_match`, `kyc.liveness` (customer ← `kyc.liveness_challenge`). The teller gets",
        "`kyc.state` after every change, the customer `kyc.progress` (no personal data). A kiosk",
        "sends `peripheral.event`s (its card reader's chip goes to the identity check); the",
        "teller gets `peripheral`.",
        "",
    ]
    roles = (
        ("customer", CUSTOMER_MESSAGES),
        ("teller", TELLER_MESSAGES),
        ("supervisor", SUPERVISOR_MESSAGES),
    )
    for role, messages in roles:
        out += [f"## {role.capitalize()} → server", ""]
        for name, (summary, schema) in messages.items():
            out += [f"### `{name}`", "", summary, "", "```json", json.dumps(schema, indent=2)]
            out += ["```", ""]
    out += ["## Server → client", "", "| type | meaning |", "| --- | --- |"]
    out += [f"| `{name}` | {text} |" for name, text in SERVER_MESSAGES.items()]
    out += ["", "## Error codes", "", "| code | meaning |", "| --- | --- |"]
    out += [f"| `{code}` | {text} |" for code, text in ERROR_CODES.items()]
    return "\n".join(out) + "\n"
