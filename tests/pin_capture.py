"""Everything a test run could leave a secret in, captured while it runs, and a search for the
secret in clear and in its common encodings (used by ``tests/test_pin_nowhere.py``; any test that
drives a PIN or a one-time code can use it).

Taps (installed with pytest's ``monkeypatch``, undone after the test):

- ``frames_recorded``: every frame a test socket sends and receives, as on the wire;
- ``channel_layer_tapped``: every message put on the channel layer (between consumers, services,
  the submission threads and the media worker);
- ``corebank_http_tapped``: every request our server makes to the core bank, and the answer;
- ``logs_tapped``: every log record of every logger, at DEBUG, from every thread (the test
  server's request threads and the submission threads included), with its arguments,
  extras and traceback;
- ``sql_tapped``: every SQL statement with its parameters, from every thread: a secret written
  and deleted again would be missed by a dump of the tables at the end;
- ``database_dumped``: every row of every table at the end (binary columns kept as bytes).

Search (``Captures.hits``): the secret in clear, JSON-escaped (``\\u``), hex of its UTF-8, base64
of it and base64 of the keypad's plaintext ``{"pin":"<secret>"`` (how a careless log of what the
browser encrypts would show); in binary values and documents also its UTF-8 and UTF-16 bytes, and
in binary values packed BCD (byte-aligned, as PIN blocks hold it). A PDF is searched as the text
of its decoded streams too (``pdf_text``).

Six random digits turn up by chance inside random tokens: a hit in clear that lies wholly inside a
UUID, a run of 32 or more hex digits (digests, ids), the microseconds of a timestamp or a
savepoint name (a thread id) is a coincidence of those tokens, none of which can carry a PIN in
clear, and is not counted. What chance is left: packed BCD in random bytes (encrypted columns),
about 6e-8 per byte and PIN.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import logging
import re
import threading
import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

SEPARATOR = "\n\x00\n"  # between captured items: no match across two of them

# Random tokens inside which six digits are a coincidence, not a PIN (see the module doc).
RANDOM_TOKEN_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|(?<![0-9A-Za-z])[0-9a-fA-F]{32,}(?![0-9A-Za-z])"
    r"|(?<=\d\d:\d\d:\d\d\.)\d{6}"
    r"|(?<=\bs)\d{6,}(?=_x\d)"  # Django's savepoint names: s<thread id>_x<n>
)

# The attributes every LogRecord has; anything else on a record came as ``extra=``.
_RECORD_ATTRS = set(vars(logging.LogRecord("n", logging.INFO, "p", 1, "m", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def secret_forms(secret: str) -> dict[str, str]:
    """The secret as text in clear and in the encodings a leak would most likely use."""
    utf8 = secret.encode()
    forms = {
        "clear": secret,
        "JSON, ASCII-escaped": json.dumps(secret)[1:-1],
        "JSON, \\u escaped": "".join(f"\\u{ord(c):04x}" for c in secret),
        "hex of UTF-8": utf8.hex(),
        "base64": base64.b64encode(utf8).decode().rstrip("="),
    }
    # The plaintext the page encrypts starts with the PIN: its base64 starts the same way
    # (whole 3-byte groups only: the rest depends on what follows).
    for name, prefix in (("compact", '{"pin":"'), ("spaced", '{"pin": "')):
        raw = f'{prefix}{secret}"'.encode()
        forms[f"base64 of the keypad plaintext ({name})"] = base64.b64encode(
            raw[: len(raw) // 3 * 3]
        ).decode()
    if forms["JSON, ASCII-escaped"] == secret:  # nothing to escape (digits): the same search
        del forms["JSON, ASCII-escaped"]
    return forms


def secret_byte_forms(secret: str) -> dict[str, bytes]:
    forms = {f"{name}, as bytes": text.encode() for name, text in secret_forms(secret).items()}
    forms["UTF-16-LE"] = secret.encode("utf-16-le")
    forms["UTF-16-BE"] = secret.encode("utf-16-be")
    return forms


@dataclass
class Capture:
    name: str
    texts: list[str] = field(default_factory=list)
    blobs: list[bytes] = field(default_factory=list)  # binary values (columns, parameters)
    documents: list[bytes] = field(default_factory=list)  # files as served (a PDF)

    @property
    def chars(self) -> int:
        return sum(len(t) for t in self.texts)

    @property
    def blob_bytes(self) -> int:
        return sum(len(b) for b in self.blobs)

    @property
    def document_bytes(self) -> int:
        return sum(len(d) for d in self.documents)

    def joined(self) -> str:
        return SEPARATOR.join(self.texts)


class Captures:
    """Named captures of text (and binary values), filled from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_name: dict[str, Capture] = {}
        self.sql_on = True
        self.log_records: list[logging.LogRecord] = []  # what ``logs_tapped`` saw, as records

    def _get(self, name: str) -> Capture:
        with self._lock:
            return self.by_name.setdefault(name, Capture(name))

    def text(self, name: str, text: str) -> None:
        capture = self._get(name)
        with self._lock:
            capture.texts.append(text)

    def blob(self, name: str, data: bytes) -> None:
        capture = self._get(name)
        with self._lock:
            capture.blobs.append(bytes(data))

    def document(self, name: str, data: bytes) -> None:
        capture = self._get(name)
        with self._lock:
            capture.documents.append(bytes(data))

    def joined(self, name: str) -> str:
        return self._get(name).joined()

    def sizes(self) -> dict[str, str]:
        return {
            c.name: f"{len(c.texts)} items, {c.chars} chars"
            + (f", {len(c.blobs)} binary values ({c.blob_bytes} bytes)" if c.blobs else "")
            + (f", {len(c.documents)} files ({c.document_bytes} bytes)" if c.documents else "")
            for c in self.by_name.values()
        }

    def hits(self, secret: str, *, names: Iterable[str] | None = None) -> list[str]:
        """Where the secret is, in any form: ``"<capture>: <form>: …context…"`` per hit (in the
        captures ``names``, by default all)."""
        found: list[str] = []
        text_forms = secret_forms(secret)
        byte_forms = secret_byte_forms(secret)
        captures = list(self.by_name.values())
        if names is not None:
            captures = [self.by_name[name] for name in names]
        for capture in captures:
            text = capture.joined()
            for form, needle in text_forms.items():
                haystack = text.lower() if form == "hex of UTF-8" else text
                start = haystack.find(needle)
                while start != -1:
                    if not (form == "clear" and _coincidence(text, start, len(needle))):
                        context = text[max(0, start - 60) : start + len(needle) + 60]
                        found.append(f"{capture.name}: {form}: …{context!r}…")
                    start = haystack.find(needle, start + 1)
            for kind, items in (("binary value", capture.blobs), ("file", capture.documents)):
                for data in items:
                    found += [
                        f"{capture.name}: {kind}, {form}"
                        for form, needle in byte_forms.items()
                        if needle in data
                    ]
            packed = _packed_bcd(secret)
            found += [
                f"{capture.name}: binary value, packed BCD"
                for blob in capture.blobs
                if packed and packed in blob
            ]
        return found


def _packed_bcd(secret: str) -> bytes | None:
    if not secret.isdigit() or len(secret) % 2:
        return None
    return bytes.fromhex(secret)


def _coincidence(text: str, start: int, length: int) -> bool:
    """The hit lies wholly inside a random token (``RANDOM_TOKEN_RE``)."""
    window_start = max(0, start - 80)
    window = text[window_start : start + length + 80]
    offset = start - window_start
    return any(
        m.start() <= offset and offset + length <= m.end() for m in RANDOM_TOKEN_RE.finditer(window)
    )


# --- rendering -------------------------------------------------------------------------------


def rendered(value: object, blobs: list[bytes]) -> object:
    """JSON-able form of a database or SQL value; binary values go to ``blobs`` (searched as
    bytes: decoded as UTF-8 or UTF-16, and as packed BCD, the forms a hex dump would show)."""
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        blobs.append(raw)
        return f"<{len(raw)} bytes>"
    if isinstance(value, dict):
        return {str(k): rendered(v, blobs) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [rendered(v, blobs) for v in value]
    if isinstance(value, dt.datetime | dt.date | dt.time | dt.timedelta):
        return str(value)
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    wrapped = getattr(value, "obj", None)  # psycopg's Binary, Json, Jsonb (their repr is cut)
    if wrapped is not None:
        return rendered(wrapped, blobs)
    return repr(value)


def as_json(value: object, blobs: list[bytes]) -> str:
    return json.dumps(rendered(value, blobs), ensure_ascii=False, sort_keys=True)


# --- PDF ------------------------------------------------------------------------------------

_PDF_STREAM_RE = re.compile(rb"stream\r?\n(.*?)\s*endstream", re.S)
_PDF_STRING_RE = re.compile(rb"\((?:\\.|[^\\()])*\)", re.S)
_PDF_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def pdf_text(data: bytes) -> str:
    """The text of a PDF as far as a search needs it: its streams decoded (ASCII85, Flate), and
    every string in them and outside them read as Latin-1 and as UTF-16-BE (the encoding of
    the CID fonts Chinese text is set in), one per line."""
    parts = [_PDF_STREAM_RE.sub(b"", data)]
    for match in _PDF_STREAM_RE.finditer(data):
        header = data[max(0, match.start() - 300) : match.start()]
        filters = header[header.rfind(b"/Filter") :] if b"/Filter" in header else b""
        stream = match.group(1)
        try:
            if b"ASCII85Decode" in filters:
                stream = base64.a85decode(stream.strip().removesuffix(b"~>"))
            if b"FlateDecode" in filters:
                stream = zlib.decompress(stream)
        except (ValueError, zlib.error):
            pass  # kept as it is: searched as bytes anyway
        parts.append(stream)
    lines = []
    for part in parts:
        for literal in _PDF_STRING_RE.findall(part):
            raw = _pdf_unescaped(literal[1:-1])
            lines.append(raw.decode("latin-1"))
            lines.append(raw.decode("utf-16-be", errors="replace"))
    return "\n".join(lines)


def _pdf_unescaped(body: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(body):
        byte = body[i : i + 1]
        if byte != b"\\" or i + 1 == len(body):
            out += byte
            i += 1
            continue
        following = body[i + 1 : i + 2]
        octal = re.match(rb"[0-7]{1,3}", body[i + 1 : i + 4])
        if octal:
            out.append(int(octal.group(), 8) & 0xFF)
            i += 1 + len(octal.group())
        else:
            out += _PDF_ESCAPES.get(following, following)
            i += 2
    return bytes(out)


# --- taps ------------------------------------------------------------------------------------


def frames_recorded(sock, name: str, captures: Captures):
    """Record every frame ``sock`` (a ``tests.sockets.Socket``) sends and receives; returns it."""
    comm = sock.comm
    send_to, receive_from = comm.send_to, comm.receive_from

    async def sending(text_data=None, bytes_data=None):
        if text_data is not None:
            captures.text(f"frames: {name} sent", text_data)
        if bytes_data is not None:
            captures.blob(f"frames: {name} sent", bytes_data)
        await send_to(text_data=text_data, bytes_data=bytes_data)

    async def receiving(timeout=1):
        data = await receive_from(timeout)
        if isinstance(data, bytes):
            captures.blob(f"frames: {name} received", data)
        else:
            captures.text(f"frames: {name} received", data)
        return data

    comm.send_to, comm.receive_from = sending, receiving
    return sock


def channel_layer_tapped(monkeypatch, captures: Captures, layer) -> None:
    """Every message sent on this channel layer instance (the one the process uses)."""
    send, group_send = layer.send, layer.group_send

    async def sending(channel, message):
        blobs: list[bytes] = []
        captures.text("channel layer", f"{channel} {as_json(message, blobs)}")
        for blob in blobs:
            captures.blob("channel layer", blob)
        await send(channel, message)

    async def group_sending(group, message):
        blobs: list[bytes] = []
        captures.text("channel layer", f"group {group} {as_json(message, blobs)}")
        for blob in blobs:
            captures.blob("channel layer", blob)
        await group_send(group, message)

    monkeypatch.setattr(layer, "send", sending)
    monkeypatch.setattr(layer, "group_send", group_sending)


def corebank_http_tapped(monkeypatch, captures: Captures) -> None:
    """Every request our server makes to the core bank (path, JSON body) and its answer."""
    from workflows.corebank.backends import HttpCoreBankBackend

    post = HttpCoreBankBackend._post

    def posting(self, path: str, body: dict, **options):
        request = json.dumps(body, ensure_ascii=False, sort_keys=True)
        try:
            status, data = post(self, path, body, **options)
        except Exception as exc:
            captures.text("core-bank HTTP", f"POST {path} {request} -> {exc!r}")
            raise
        answer = json.dumps(data, ensure_ascii=False, sort_keys=True)
        captures.text("core-bank HTTP", f"POST {path} {request} -> {status} {answer}")
        return status, data

    monkeypatch.setattr(HttpCoreBankBackend, "_post", posting)


def _record_text(record: logging.LogRecord) -> str:
    parts = [
        f"{record.levelname} {record.name} [{record.threadName}] {record.getMessage()}",
        f"args={record.args!r}",
    ]
    extras = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRS}
    if extras:
        parts.append(f"extra={extras!r}")
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    if record.exc_text:
        parts.append(record.exc_text)
    if record.stack_info:
        parts.append(record.stack_info)
    return "\n".join(parts)


def logs_tapped(monkeypatch, captures: Captures) -> None:
    """Every record any logger emits, at every level down to DEBUG, whatever the loggers'
    levels, handlers and propagation: every logger is made to accept every level, and the tap is
    ``Logger.callHandlers``, through which every accepted record goes. The records are kept in
    ``captures.log_records`` too (their ``threadName`` says which thread logged them)."""
    call_handlers = logging.Logger.callHandlers

    def calling(self, record):
        captures.log_records.append(record)
        captures.text("logs", _record_text(record))
        call_handlers(self, record)

    monkeypatch.setattr(logging.Logger, "isEnabledFor", lambda self, level: True)
    monkeypatch.setattr(logging.Logger, "callHandlers", calling)


def sql_tapped(monkeypatch, captures: Captures) -> None:
    """Every SQL statement with its parameters, on every connection of every thread (while
    ``captures.sql_on``)."""
    from django.db.backends.utils import CursorWrapper

    execute, executemany = CursorWrapper.execute, CursorWrapper.executemany

    def record(sql, params) -> None:
        if not captures.sql_on:
            return
        blobs: list[bytes] = []
        captures.text("SQL", f"{sql} {as_json(params, blobs)}")
        for blob in blobs:
            captures.blob("SQL", blob)

    def executing(self, sql, params=None):
        record(sql, params)
        return execute(self, sql, params)

    def executing_many(self, sql, param_list):
        param_list = list(param_list)
        record(sql, param_list)
        return executemany(self, sql, param_list)

    monkeypatch.setattr(CursorWrapper, "execute", executing)
    monkeypatch.setattr(CursorWrapper, "executemany", executing_many)


def table_rows(captures: Captures, table: str, name: str = "database") -> list[dict]:
    """The rows of ``table`` as ``database_dumped`` captured them."""
    prefix = f"{table} "
    texts = captures.by_name[name].texts
    return [json.loads(t[len(prefix) :]) for t in texts if t.startswith(prefix)]


def database_dumped(captures: Captures, name: str = "database") -> dict[str, int]:
    """Every row of every table of every installed app (auto-created many-to-many tables
    included), through the base manager (no filtering default manager); returns rows per
    table."""
    from django.apps import apps

    counts: dict[str, int] = {}
    for model in _concrete_models(apps.get_models(include_auto_created=True)):
        table = model._meta.db_table
        rows = list(model._base_manager.all().values())
        counts[table] = len(rows)
        for row in rows:
            blobs: list[bytes] = []
            captures.text(name, f"{table} {as_json(row, blobs)}")
            for blob in blobs:
                captures.blob(name, blob)
    return counts


def _concrete_models(models: Iterable) -> list:
    seen: set[str] = set()
    out = []
    for model in models:
        meta = model._meta
        if meta.proxy or meta.db_table in seen:
            continue
        seen.add(meta.db_table)
        out.append(model)
    return out
