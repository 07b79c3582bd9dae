"""Generated frames for the signaling protocol, built from its schemas and then mutated; and a tap
on the logs that keeps every error. Used by test_protocol_fuzz.py and test_protocol_bounds.py.

Frames are drawn with Hypothesis strategies made from the schemas in ``signaling/protocol.py``
(no hand-written list of messages: a new message type is fuzzed as soon as it has a schema). A
generated frame names live things through :class:`Pool` placeholders (a call id, a case id, a
challenge, a token, a teller's name, a form a case shows), which the sender fills at send time
from what the sockets have seen so far — ids of this call and of another call alike — so the
frames reach the services with real ids, not only random ones.

Generation runs once per role, before any frame is sent (no database work per example), from a
seed: the same seed gives the same frames.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import re
import string
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from signaling import protocol

ROLE_MESSAGES = {
    "customer": protocol.CUSTOMER_MESSAGES,
    "teller": protocol.TELLER_MESSAGES,
    "supervisor": protocol.SUPERVISOR_MESSAGES,
}
ALL_TYPES = sorted({t for messages in ROLE_MESSAGES.values() for t in messages})


def errors_tapped(monkeypatch) -> list[logging.LogRecord]:
    """Every record logged at ERROR or above, or with a traceback, by any logger of any thread,
    whatever the loggers' levels, handlers and propagation (the tap is ``Logger.callHandlers``,
    through which every accepted record goes)."""
    kept: list[logging.LogRecord] = []
    call_handlers = logging.Logger.callHandlers

    def calling(self, record):
        if record.levelno >= logging.ERROR or record.exc_info:
            kept.append(record)
        call_handlers(self, record)

    def thread_died(args):  # an exception that escaped a thread is never logged: keep it too
        kept.append(
            logging.LogRecord(
                "thread",
                logging.ERROR,
                __file__,
                0,
                "thread %s died: %r",
                (args.thread, args.exc_value),
                None,
            )
        )

    monkeypatch.setattr(logging.Logger, "callHandlers", calling)
    monkeypatch.setattr(threading, "excepthook", thread_died)
    return kept


# --- placeholders filled at send time ----------------------------------------------------------


@dataclass(frozen=True)
class Pool:
    """A value the sender picks from what it has seen: ``kind`` is call, case, challenge, token,
    teller, business, form (a case's form, filled in), ciphertext (a PIN encrypted for the last
    keypad), photo (a chip photo: a JPEG, or not), id_fields (a card's fields, valid or not),
    sdp (an offer as a browser makes one, or one spoilt)."""

    kind: str


# Fields whose values come (mostly) from the pools.
POOLED = {
    "call_id": "call",
    "case_id": "case",
    "challenge_id": "challenge",
    "token": "token",
    "previous_token": "token",
    "teller": "teller",
    "params": "form",
    "ciphertext_b64": "ciphertext",
    "business": "business",
    "photo_jpeg_b64": "photo",
    "sdp": "sdp",
    "fields": "id_fields",
}

NASTY_STRINGS = [
    "",
    " ",
    "\u3000",
    "\n",
    "\r\n",
    "\t",
    "\x7f",
    "\u202e\u0645\u0631\u062d\u0628\u0627",
    "\ufeff",
    "\u200b",
    "😀" * 30,
    "𠜎𠜱𠝹",
    "Ａｍｏｕｎｔ１２３",
    "１２３４５６",
    "NaN",
    "Infinity",
    "-0",
    "1e999999999",
    "-1e-999999999",
    "0.001",
    "9" * 400,
    "1,000,000.00",
    "0x10",
    "1_000",
    "' OR 1=1 --",
    '"; DROP TABLE queueing_call; --',
    "../../etc/passwd",
    "%s%s%s%n",
    "{0}{1}{__class__}",
    "${jndi:ldap://x}",
    "<script>alert(1)</script>",
    "__proto__",
    "constructor",
    "null",
    "true",
    "2026-02-30",
    "9999-12-31",
    "0000-00-00",
    "13800138000",
    "19900307",
    "长期",
    "110101199003071233",
    "11010119900307123X",
]


@functools.cache
def nasty_text(max_size: int = 200) -> st.SearchStrategy[str]:
    """Text a server must take apart carefully: odd scripts, numbers in odd forms, injections,
    invisible characters (never NUL or a lone surrogate: those are a different mutation)."""
    plain = st.text(
        alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
        max_size=max_size,
    )
    return st.one_of(plain, st.sampled_from(NASTY_STRINGS))


_SIMPLE = re.compile(r"^\^\[([^\]]+)\](?:\{(\d+)(?:,(\d+))?\}|(\+))\$$")


@functools.cache
def _regex(pattern: str) -> st.SearchStrategy[str]:
    """Strings that match ``pattern``. The protocol's usual pattern, one character class
    repeated (``^[a-z0-9_]{1,64}$``), is drawn as text of that alphabet: Hypothesis's
    ``from_regex`` is far slower, and is kept for the others."""
    simple = _SIMPLE.match(pattern)
    if simple:
        chars, low, high, plus = simple.groups()
        alphabet = "".join(
            "".join(map(chr, range(ord(m[0]), ord(m[2]) + 1))) if len(m) == 3 else m
            for m in re.findall(r".-.|.", chars)
        )
        low, high = (1, 80) if plus else (int(low), int(high or low))
        return st.text(alphabet=alphabet, min_size=low, max_size=high)
    body = pattern.removeprefix("^").removesuffix("$")
    return st.from_regex(body, fullmatch=True)


def _string(schema: dict) -> st.SearchStrategy[str]:
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    if schema.get("format") == "uuid":
        return st.uuids().map(str)
    if "pattern" in schema:
        strategy = _regex(schema["pattern"])
    else:
        # Mostly short (long values are a mutation of their own); at the top of the range now
        # and then, to meet the bound itself.
        cap = min(high if high is not None else 40, 40)
        short = st.text(
            alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
            min_size=low,
            max_size=max(cap, low),
        )
        strategy = short
        if high is not None and high > cap:
            strategy = st.one_of(short, st.integers(low, high).map(lambda n: "x" * n))
    if high is not None or low:
        strategy = strategy.filter(lambda s: low <= len(s) <= (high or len(s)))
    return strategy


def from_schema(schema: dict, name: str | None = None) -> st.SearchStrategy[Any]:
    """Values valid for ``schema`` (the subset of JSON Schema the protocol uses); fields named
    in POOLED are mostly a Pool placeholder, sometimes a random valid value."""
    strategy = _from_schema(schema)
    if name in POOLED:
        return st.one_of(st.just(Pool(POOLED[name])), st.just(Pool(POOLED[name])), strategy)
    return strategy


def _from_schema(schema: dict) -> st.SearchStrategy[Any]:
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of(*(_from_schema({**schema, "type": k}) for k in kind))
    if kind == "string":
        return _string(schema)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "integer":
        return st.integers(schema.get("minimum", -(2**53)), schema.get("maximum", 2**53))
    if kind == "number":
        return st.one_of(
            st.integers(int(schema.get("minimum", -(2**53))), int(schema.get("maximum", 2**53))),
            st.floats(
                schema.get("minimum"),
                schema.get("maximum"),
                allow_nan=False,
                allow_infinity=False,
            ),
        )
    if kind == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", ()))
        if properties:
            return st.fixed_dictionaries(
                {k: from_schema(v, k) for k, v in properties.items() if k in required},
                optional={k: from_schema(v, k) for k, v in properties.items() if k not in required},
            )
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            names = schema.get("propertyNames", {}).get("pattern", "^[a-z_]{1,16}$")
            return st.dictionaries(
                _regex(names),
                _from_schema(extra),
                max_size=min(schema.get("maxProperties", 8), 8),
            )
        return st.just({})
    raise AssertionError(f"no strategy for {schema}")  # a schema keyword this file must learn


# --- frames and their mutations ----------------------------------------------------------------


@dataclass
class Frame:
    """One frame to send: a message (with Pool placeholders) and how it goes on the wire."""

    type: str
    message: Any = None
    wire: str = "json"  # json | raw | binary | and the encodings of ``encode``
    raw: Any = None
    mutation: str = "valid"
    extra: dict = field(default_factory=dict)


@functools.cache
def _bad_ids() -> st.SearchStrategy[str]:
    good = str(uuid.UUID(int=0x1B4E28BA2FA141D2883F0016D3CCA427))
    return st.one_of(
        st.sampled_from(
            [
                "-" * 36,
                good.replace("-", ""),
                "{" + good + "}",
                "urn:uuid:" + good,
                good + "\n",
                " " + good,
                good[:-1],
                good + "0",
                good.replace("a", "g"),
                "00000000-0000-0000-0000-000000000000",
                "ffffffff-ffff-ffff-ffff-ffffffffffff",
                "",
            ]
        ),
        st.text(alphabet="0123456789abcdefABCDEF-{}", min_size=30, max_size=40),
    )


@functools.cache
def _wrong_value() -> st.SearchStrategy[Any]:
    leaf = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**63),
        st.floats(allow_nan=False, allow_infinity=False),
        nasty_text(40),
    )
    return st.one_of(
        leaf, st.lists(leaf, max_size=4), st.dictionaries(st.text(max_size=8), leaf, max_size=3)
    )


@functools.cache
def _huge_text() -> st.SearchStrategy[str]:
    return st.builds(
        lambda char, size: char * size,
        st.sampled_from(["x", "é", "中", "😀", "\\", '"', "[", " "]),
        st.sampled_from([1_000, 20_000, 60_000, 70_000]),
    )


@st.composite
def mutated(draw, frame: Frame) -> Frame:
    """One mutation of a valid frame: a field dropped or added, a value of the wrong type, a
    huge or odd string, a bad id, another type or version; or the wire itself (nesting, numbers
    JSON does not have, a key twice, broken or non-JSON text, binary, oversize)."""
    message = dict(frame.message)
    keys = [k for k in message if k not in ("type", "v")]
    how = draw(
        st.sampled_from(
            [
                "drop",
                "extra",
                "wrong_type",
                "odd_string",
                "huge_string",
                "bad_id",
                "retype",
                "version",
                "deep",
                "number",
                "duplicate",
                "broken",
                "not_object",
                "binary",
                "oversize",
                "text_escape",
            ]
        )
    )
    out = Frame(type=frame.type, message=message, mutation=how)
    if how == "drop":
        victim = draw(st.sampled_from([*keys, "type", "v"]))
        message.pop(victim, None)
    elif how == "extra":
        message[draw(st.sampled_from(["extra", "id", "call_id", "role", "__proto__", "V"]))] = draw(
            _wrong_value()
        )
    elif how in ("wrong_type", "odd_string", "huge_string", "bad_id") and keys:
        victim = draw(st.sampled_from(keys))
        value = {
            "wrong_type": _wrong_value(),
            "odd_string": nasty_text(),
            "huge_string": _huge_text(),
            "bad_id": _bad_ids(),
        }[how]
        target = message
        if isinstance(message[victim], dict) and message[victim] and draw(st.booleans()):
            target = message[victim] = dict(message[victim])
            victim = draw(st.sampled_from(sorted(target)))
        target[victim] = draw(value)
    elif how == "retype":
        message["type"] = draw(
            st.one_of(
                st.sampled_from(ALL_TYPES),
                st.sampled_from(["", "PING", "ping ", "call.request\x00", "on_ping", "__init__"]),
                _wrong_value(),
            )
        )
    elif how == "version":
        message["v"] = draw(st.sampled_from([0, 2, -1, "1", 1.0, True, None, [], {}, 1e100]))
    elif how == "deep":
        out.wire = "deep"
        out.extra = {
            "depth": draw(st.sampled_from([7, 50, 1000, 20_000])),
            "bracket": draw(st.sampled_from(["[", "{"])),
        }
    elif how == "number":
        out.wire = "number"
        out.extra = {
            "token": draw(
                st.sampled_from(
                    ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "9" * 25, "-0", "1e-400"]
                )
            )
        }
    elif how == "duplicate":
        out.wire = "duplicate"
        out.extra = {"key": draw(st.sampled_from(["type", "v", *keys]))}
    elif how == "broken":
        out.wire = "broken"
        out.extra = {
            "cut": draw(st.integers(0, 200)),
            "tail": draw(st.sampled_from(["", "}", "]", ",", "garbage", "\\", '"', "/*x*/"])),
        }
    elif how == "not_object":
        out.wire = "raw"
        out.raw = draw(
            st.sampled_from(
                ["[]", "null", "true", "1", '"ping"', "", " ", "\ufeff{}", "{}", "[{}]", "{'v':1}"]
            )
        )
    elif how == "binary":
        out.wire = "binary"
        out.raw = draw(st.one_of(st.binary(max_size=64), st.just(b"\xff" * 70_000)))
    elif how == "oversize":
        out.wire = "oversize"
        out.extra = {"size": draw(st.sampled_from([65_537, 80_000, 200_000]))}
    elif how == "text_escape":
        out.wire = "escape"
        out.extra = {
            "escape": draw(st.sampled_from(["\\ud800", "\\udfff", "\\u0000", "\\ud83d\\ude00x"]))
        }
    else:  # a message with no field to change: an extra one instead
        message["extra"] = draw(_wrong_value())
        out.mutation = "extra"
    return out


@functools.cache
def _message_strategies(role: str) -> dict[str, st.SearchStrategy[dict]]:
    # Built once: Hypothesis validates a strategy the first time it draws from it.
    return {type_: from_schema(schema) for type_, (_, schema) in ROLE_MESSAGES[role].items()}


# Messages that end what the others act on (the call, a business) come less often, so that
# most frames find the call in the state the round set up.
RARE = {"call.hangup": 1, "callback.request": 3, "call.reject": 3, "case.cancel": 3}


@functools.cache
def _weighted_types(role: str) -> list[str]:
    # The rare ones last: Hypothesis draws the first choice more often than the others.
    types = sorted(ROLE_MESSAGES[role], key=lambda t: (t in RARE, t))
    return [t for t in types for _ in range(RARE.get(t, 8))]


@st.composite
def frames(draw, role: str) -> Frame:
    """A valid frame of any type ``role`` may send (half of them), or a mutation of one."""
    strategies = _message_strategies(role)
    type_ = draw(st.sampled_from(_weighted_types(role)))
    message = {"type": type_, "v": protocol.PROTOCOL_VERSION}
    message.update(draw(strategies[type_]))
    valid = Frame(type=type_, message=message)
    if not draw(st.booleans()):  # (Hypothesis leans to False: valid frames a little more often)
        return valid
    return draw(mutated(valid))


def frames_generate(role: str, count: int, seed: int) -> list[Frame]:
    """``count`` frames for ``role``, the same for the same seed."""
    out: list[Frame] = []
    batch = 50  # frames per Hypothesis example: fewer examples, less of the engine's own work

    @settings(
        max_examples=count // batch + 1,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(frames(role), min_size=batch, max_size=batch))
    def collect(drawn: list[Frame]) -> None:
        out.extend(drawn)

    round_ = 0
    while len(out) < count:
        hypothesis_seed(seed * 1000 + round_)(collect)()
        round_ += 1
    return out[:count]


# --- on the wire -------------------------------------------------------------------------------


def resolve(value: Any, pick) -> Any:
    """The message with each Pool placeholder replaced by ``pick(kind)``."""
    if isinstance(value, Pool):
        return pick(value.kind)
    if isinstance(value, dict):
        return {k: resolve(v, pick) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, pick) for v in value]
    return value


def encode(frame: Frame, message: Any, rng: random.Random) -> tuple[str | None, bytes | None]:
    """(text, bytes) of the frame as it goes on the wire."""
    if frame.wire == "binary":
        return None, frame.raw
    if frame.wire == "raw":
        return frame.raw, None
    text = json.dumps(message, ensure_ascii=rng.random() < 0.5)
    if frame.wire == "deep":
        depth, bracket = frame.extra["depth"], frame.extra["bracket"]
        inner = "[" * depth + "]" * depth if bracket == "[" else '{"a":' * depth + "1" + "}" * depth
        return text[:-1] + (', "nest": ' if len(text) > 2 else '"nest": ') + inner + "}", None
    if frame.wire == "number":
        token = frame.extra["token"]
        return text[:-1] + (", " if len(text) > 2 else "") + f'"n": {token}' + "}", None
    if frame.wire == "duplicate":
        key = frame.extra["key"]
        return text[:-1] + (", " if len(text) > 2 else "") + f'{json.dumps(key)}: "again"}}', None
    if frame.wire == "broken":
        return text[: frame.extra["cut"]] + frame.extra["tail"], None
    if frame.wire == "oversize":
        size = frame.extra["size"]
        return text[:-1] + ', "pad": "' + "p" * size + '"}', None
    if frame.wire == "escape":
        return text[:-1] + (
            ", " if len(text) > 2 else ""
        ) + f'"s": "a{frame.extra["escape"]}"}}', None
    return text, None


RANDOM_ID_CHARS = string.hexdigits.lower()


def random_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128)))


_FORM_VALUES = {
    "money": ["0.01", "100.00", "2500.50", "50000.01", "99999999.99", "0", "-5", "1e3", "12.345"],
    "number": ["0", "1", "3", "12", "36", "60", "-1", "999"],
    "mobile": ["13800138000", "13912345678", "12345", "23800138000"],
    "date": ["2027-01-01", "1990-03-07", "2026-02-30", "tomorrow"],
}


def form_fill(spec: list[dict], rng: random.Random) -> dict:
    """A teller's form for a case, from the form the case shows (its fields, their choices):
    mostly plausible, sometimes not."""
    params: dict[str, Any] = {}
    for entry in spec:
        roll = rng.random()
        if roll < 0.1:
            continue
        if roll < 0.25:
            params[entry["name"]] = rng.choice([*NASTY_STRINGS, None, True, -1, 1e300, 2**53])
            continue
        choices = [c["value"] for c in entry.get("choices") or []]
        if choices and rng.random() < 0.9:
            params[entry["name"]] = rng.choice(choices)
        elif entry["type"] in _FORM_VALUES:
            params[entry["name"]] = rng.choice(_FORM_VALUES[entry["type"]])
        elif entry["type"] == "text":
            size = rng.choice([1, 5, 20, entry.get("max_length") or 50])
            params[entry["name"]] = "".join(rng.choice("地址上海路号abc 12") for _ in range(size))
        else:
            params[entry["name"]] = rng.choice(["yes", "no", "", None, 1, True])
    return params


def ids_in(message: Any, key: str) -> list[str]:
    """Every value of ``key`` anywhere in a server message (ids the sockets were told)."""
    found: list[str] = []
    if isinstance(message, dict):
        for k, v in message.items():
            if k == key and isinstance(v, str):
                found.append(v)
            else:
                found.extend(ids_in(v, key))
    elif isinstance(message, list):
        for v in message:
            found.extend(ids_in(v, key))
    return found


_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def is_uuid(text: str) -> bool:
    return bool(_UUID_RE.match(text))
