"""The contract between the control plane (signaling, queue, identity check) and a media engine,
version 1: every message either side sends over the channel layer, one JSON schema each.

The control plane sends to the engine's channel (``Call.media_channel``); the engine answers the
channel of the signaling socket that asked (``reply_to``). Messages are built here and nowhere
else (:func:`offer`, :func:`hangup`, :func:`leg_drop`, :func:`grab` to the engine; :func:`answer`,
:func:`state`, :func:`error` from it); whoever receives one reads it with :func:`parse`, which
refuses a malformed message with :class:`ContractError` in words. ``docs/media-engine.md`` is
generated from this module (``manage.py protocol_doc``) and a test keeps the two in step.

A platform module: it imports no app, so every layer may build the messages it sends.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, TypeGuard

from jsonschema import Draft202012Validator

from videobank.errors import Invalid

CONTRACT_VERSION = 1
LEGS = ("customer", "teller")
STATES = ("new", "connecting", "connected", "disconnected", "failed", "closed")
GRAB_PURPOSES = ("card_front", "card_back", "face_match", "liveness")
MAX_GRAB_FRAMES = 120  # a liveness challenge at 5 frames a second: about 50
MAX_GRAB_MS = 20_000

_UUID = {
    "type": "string",
    "pattern": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
}
# A channel-layer channel name (channels' own rule: letters, digits, "-_.!", under 100).
_CHANNEL = {"type": "string", "pattern": "^[a-zA-Z0-9\\-_.!]{1,99}$"}
_CHANNEL_RE = re.compile(_CHANNEL["pattern"])
_SDP = {"type": "string", "minLength": 10, "maxLength": 60000}
_WORDS = {"type": "string", "minLength": 1, "maxLength": 500}
_MS = {"type": "integer", "minimum": 0, "maximum": MAX_GRAB_MS}


def _message(description: str, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "description": description,
        "type": "object",
        "properties": properties,
        "required": list(extra.pop("required", properties)),
        "additionalProperties": False,
        **extra,
    }


TO_ENGINE: dict[str, dict[str, Any]] = {
    "media.offer": _message(
        "A leg's complete SDP offer (non-trickle). The engine opens the call's session if it has "
        "none (the recording starts on its clock), negotiates the leg and answers `reply_to` "
        "with `media.answer`, or `media.error`. A leg offered again replaces the old one.",
        {"call_id": _UUID, "leg": {"enum": list(LEGS)}, "sdp": _SDP, "reply_to": _CHANNEL},
    ),
    "media.hangup": _message(
        "The call ended: close both legs, seal the recording.",
        {"call_id": _UUID},
    ),
    "media.leg_drop": _message(
        "One participant left but the call goes on (a teller's connection dropped): close that "
        "leg; the other stays connected and recorded.",
        {"call_id": _UUID, "leg": {"enum": list(LEGS)}},
    ),
    "media.grab": _message(
        "Frames of the customer's video for the identity check `check_id`: either at the "
        "moments `at_ms` (milliseconds from now, chosen by the server), or `count` frames "
        "spread over `spread_ms`. The engine hands them to the identity check.",
        {
            "call_id": _UUID,
            "check_id": _UUID,
            "purpose": {"enum": list(GRAB_PURPOSES)},
            "at_ms": {"type": "array", "items": _MS, "minItems": 1, "maxItems": MAX_GRAB_FRAMES},
            "count": {"type": "integer", "minimum": 1, "maximum": MAX_GRAB_FRAMES},
            "spread_ms": _MS,
        },
        required=["call_id", "check_id", "purpose"],
        oneOf=[{"required": ["at_ms"]}, {"required": ["count", "spread_ms"]}],
    ),
}
FROM_ENGINE: dict[str, dict[str, Any]] = {
    "media.answer": _message(
        "The engine's complete SDP answer to the leg's offer.",
        {"call_id": _UUID, "sdp": _SDP},
    ),
    "media.state": _message(
        "The leg's connection state, as WebRTC names it.",
        {"call_id": _UUID, "state": {"enum": list(STATES)}},
    ),
    "media.error": _message(
        "The offer could not be used (`code` `invalid`: the client's offer) or media could not "
        "be set up (no `code`); `detail` in words (English / Chinese).",
        {"detail": _WORDS, "code": {"enum": ["invalid"]}},
        required=["detail"],
    ),
}
MESSAGES = {**TO_ENGINE, **FROM_ENGINE}
_VALIDATORS = {name: Draft202012Validator(schema) for name, schema in MESSAGES.items()}


class ContractError(Invalid):
    """A message that breaks the contract, in words (the one error base: ``invalid``)."""


def parse(message: Any, *, expect: str = "engine") -> dict[str, Any]:
    """``message`` if it is one the contract allows for that side — ``engine``: sent to an
    engine; ``control``: sent by an engine — else :class:`ContractError` saying what is wrong."""
    allowed = TO_ENGINE if expect == "engine" else FROM_ENGINE
    if not isinstance(message, dict):
        raise ContractError("A media message must be an object.", "媒体消息必须是对象。")
    kind = message.get("type")
    if kind not in allowed:
        raise ContractError(
            f"Unknown media message {str(kind)[:40]!r}.", f"未知的媒体消息 {str(kind)[:40]!r}。"
        )
    body = {key: value for key, value in message.items() if key != "type"}
    errors = sorted(_VALIDATORS[kind].iter_errors(body), key=lambda e: list(map(str, e.path)))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "message"
        words = errors[0].message if len(errors[0].message) <= 120 else "is not valid"
        raise ContractError(f"{kind}: {where}: {words}", f"{kind} 消息不符合约定（{where}）。")
    return message


def is_channel(value: Any) -> TypeGuard[str]:
    """Is ``value`` a channel name a reply can go to?"""
    return isinstance(value, str) and _CHANNEL_RE.fullmatch(value) is not None


def _build(kind: str, **fields: Any) -> dict[str, Any]:
    message = {"type": kind, **{k: v for k, v in fields.items() if v is not None}}
    return parse(message, expect="engine" if kind in TO_ENGINE else "control")


def offer(*, call_id: uuid.UUID | str, leg: str, sdp: str, reply_to: str) -> dict[str, Any]:
    return _build("media.offer", call_id=str(call_id), leg=leg, sdp=sdp, reply_to=reply_to)


def hangup(*, call_id: uuid.UUID | str) -> dict[str, Any]:
    return _build("media.hangup", call_id=str(call_id))


def leg_drop(*, call_id: uuid.UUID | str, leg: str) -> dict[str, Any]:
    return _build("media.leg_drop", call_id=str(call_id), leg=leg)


def grab(
    *,
    call_id: uuid.UUID | str,
    check_id: uuid.UUID | str,
    purpose: str,
    at_ms: list[int] | None = None,
    count: int | None = None,
    spread_ms: int | None = None,
) -> dict[str, Any]:
    return _build(
        "media.grab",
        call_id=str(call_id),
        check_id=str(check_id),
        purpose=purpose,
        at_ms=at_ms,
        count=count,
        spread_ms=spread_ms,
    )


def grab_moments(message: dict[str, Any]) -> list[int]:
    """A grab's moments (ms from now): ``at_ms``, or ``count`` spread evenly over ``spread_ms``."""
    if "at_ms" in message:
        return list(message["at_ms"])
    count = message["count"]
    return [i * message["spread_ms"] // max(1, count - 1) for i in range(count)]


def answer(*, call_id: uuid.UUID | str, sdp: str) -> dict[str, Any]:
    return _build("media.answer", call_id=str(call_id), sdp=sdp)


def state(*, call_id: uuid.UUID | str, state: str) -> dict[str, Any]:
    return _build("media.state", call_id=str(call_id), state=state)


def error(*, detail: str, code: str | None = None) -> dict[str, Any]:
    return _build("media.error", detail=detail, code=code)


def render_markdown() -> str:
    """The contract as documentation; ``docs/media-engine.md`` is this text."""
    out = [
        f"# Media-engine contract, version {CONTRACT_VERSION}",
        "",
        "<!-- Generated by `python manage.py protocol_doc`; edit videobank/media_contract.py. -->",
        "",
        "The control plane (signaling sockets, the queue, the identity check) and a media engine",
        "talk over the channel layer only. The control plane sends to the engine's channel (the",
        "call's `media_channel`, registered with heartbeats); the engine answers the channel of",
        "the signaling socket that asked (`reply_to`). Every message is a JSON object with a",
        "`type`; the fields are exactly those listed (no others). Messages are built and read",
        "by `videobank/media_contract.py` only; a malformed one is refused in words and changes",
        "nothing.",
        "",
    ]
    for title, messages in (
        ("To the engine", TO_ENGINE),
        ("From the engine (to a signaling socket)", FROM_ENGINE),
    ):
        out += [f"## {title}", ""]
        for name, schema in messages.items():
            out += [f"### `{name}`", "", schema["description"], ""]
            out += ["| field | required | value |", "|---|---|---|"]
            for field, rule in schema["properties"].items():
                required = "yes" if field in schema["required"] else "no"
                out.append(f"| `{field}` | {required} | {_describe(rule)} |")
            if "oneOf" in schema:
                choices = " or ".join(
                    "+".join(f"`{f}`" for f in choice["required"]) for choice in schema["oneOf"]
                )
                out.append("")
                out.append(f"Exactly one of: {choices}.")
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def _describe(rule: dict[str, Any]) -> str:
    if "enum" in rule:
        return " \\| ".join(f"`{v}`" for v in rule["enum"])
    if rule is _UUID:
        return "UUID"
    if rule is _CHANNEL:
        return "channel name"
    if rule.get("type") == "array":
        return f"list of {_describe(rule['items'])} ({rule['minItems']}–{rule['maxItems']})"
    if rule.get("type") == "integer":
        return f"integer {rule['minimum']}–{rule['maximum']}"
    if rule.get("type") == "string":
        return f"text, {rule.get('minLength', 0)}–{rule['maxLength']} characters"
    return rule.get("type", "any")
