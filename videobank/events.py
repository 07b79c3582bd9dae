"""Cross-app reactions: the events one app announces and another acts on, all declared here.

An app lower in the layers (docs/architecture.md) never imports a higher one, yet something has
to happen up there when things change down here: a call ends and its businesses not yet
submitted are cancelled; a face match finishes and a transfer waiting for it goes on. The lower
app ``emit``s a typed event; the higher app's ``AppConfig.ready()`` says ``on(Event, handler)``.
Every event is a frozen dataclass in this module, its fields are the handler's keyword
arguments, and ``docs/architecture.md`` lists who listens to what (a test keeps that table equal
to the registry). Grep an event's name to see who sends and who acts.

Why not Django signals: a signal can be sent by anything with any arguments and connected from
anywhere, and nothing says whether it fires inside the transaction or after it. Here the set of
events is closed, each names its fields and its moment, and a handler's signature is checked
against the event's fields when it is registered (at start-up, not at the first call).

Two moments:

- ``IN_TRANSACTION``: handlers run at once, inside the sender's transaction; their writes commit
  or roll back with the change that caused them, and an exception undoes the whole change.
- ``AFTER_COMMIT``: handlers run once the sender's transaction commits (at once when there is
  none), each on its own: one that fails is logged and neither undoes the change nor stops the
  other handlers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Literal, TypeVar

from django.db import transaction

log = logging.getLogger(__name__)

Moment = Literal["in_transaction", "after_commit"]
IN_TRANSACTION: Moment = "in_transaction"
AFTER_COMMIT: Moment = "after_commit"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every event: ``moment`` says when handlers run, ``name`` how logs and docs say it."""

    name: ClassVar[str]
    moment: ClassVar[Moment]


E = TypeVar("E", bound=Event)
Handler = Callable[..., Any]


# --- the events ---------------------------------------------------------------------------------
# (sender → listeners; the table in docs/architecture.md says the same)


@dataclasses.dataclass(frozen=True, kw_only=True)
class CallAnswered(Event):
    """A teller answered the call (``queueing.services.offer_accept``): it is recorded from now
    on. In the transaction, so a connected call always has its recording."""

    name = "call.answered"
    moment = IN_TRANSACTION
    call_id: uuid.UUID


@dataclasses.dataclass(frozen=True, kw_only=True)
class CallEnded(Event):
    """The call ended or was abandoned (``queueing.services.call_end``). In the transaction, so
    whoever hears "call.ended" on a socket reads what the listeners closed."""

    name = "call.ended"
    moment = IN_TRANSACTION
    call_id: uuid.UUID


@dataclasses.dataclass(frozen=True, kw_only=True)
class FaceMatchFinished(Event):
    """The identity check's face match has a result, passed or not (``kyc.services``)."""

    name = "kyc.face_match_finished"
    moment = AFTER_COMMIT
    call_id: uuid.UUID


@dataclasses.dataclass(frozen=True, kw_only=True)
class FramesGrabbed(Event):
    """The media engine grabbed frames of the customer's video for the identity check
    (``media.grab``): ``frames`` are ``(offset_ms on the recording, ms since the grab began,
    jpeg)``. At once: a listener that cannot take them fails the grab (``GrabFailed``)."""

    name = "media.frames_grabbed"
    moment = IN_TRANSACTION
    check_id: uuid.UUID
    purpose: str
    frames: list[tuple[int, int, bytes]]
    source: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class GrabFailed(Event):
    """The media engine could not grab (no customer video on it), in words."""

    name = "media.grab_failed"
    moment = IN_TRANSACTION
    check_id: uuid.UUID
    purpose: str
    detail: str
    detail_zh: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class NationalCheckFinished(Event):
    """A national ID check reached its final state (``kyc.national.services``)."""

    name = "kyc.national_check_finished"
    moment = AFTER_COMMIT
    check_id: uuid.UUID


@dataclasses.dataclass(frozen=True, kw_only=True)
class SubmissionChanged(Event):
    """A core-banking submission changed status (``workflows.corebank.services``)."""

    name = "corebank.submission_changed"
    moment = AFTER_COMMIT
    submission_id: uuid.UUID


@dataclasses.dataclass(frozen=True, kw_only=True)
class Housekeeping(Event):
    """About every 10 s, from the one queue ticker that holds the lease (``queueing.ticker``):
    work that needs exactly one runner in the whole installation."""

    name = "housekeeping"
    moment = AFTER_COMMIT


EVENTS: tuple[type[Event], ...] = (
    CallAnswered,
    CallEnded,
    FaceMatchFinished,
    FramesGrabbed,
    GrabFailed,
    NationalCheckFinished,
    SubmissionChanged,
    Housekeeping,
)

# --- the registry -------------------------------------------------------------------------------

_listeners: dict[type[Event], tuple[Handler, ...]] = {event: () for event in EVENTS}
_lock = threading.Lock()


def _fields(event: type[Event]) -> list[str]:
    return [f.name for f in dataclasses.fields(event)]


def on(event: type[E], handler: Handler) -> Handler:
    """Make ``handler`` act on ``event`` (from an ``AppConfig.ready()``; twice is once). The
    handler takes the event's fields as keyword arguments: a mismatch fails here, at start-up."""
    if event not in _listeners:
        raise TypeError(f"{event!r} is not an event declared in videobank.events")
    try:
        inspect.signature(handler).bind(**dict.fromkeys(_fields(event)))
    except TypeError as exc:
        raise TypeError(
            f"{handler_name(handler)} cannot take {event.__name__}({', '.join(_fields(event))}): "
            f"{exc}"
        ) from None
    with _lock:
        if handler not in _listeners[event]:
            _listeners[event] = (*_listeners[event], handler)
    return handler


def listeners(event: type[Event]) -> tuple[Handler, ...]:
    return _listeners[event]


def handler_name(handler: Handler) -> str:
    return f"{handler.__module__}.{getattr(handler, '__qualname__', repr(handler))}"


def emit(event: Event) -> None:
    """Announce ``event``: its handlers run now (``IN_TRANSACTION``) or after commit."""
    handlers = _listeners[type(event)]
    if not handlers:
        return
    data = {name: getattr(event, name) for name in _fields(type(event))}
    if event.moment == IN_TRANSACTION:
        for handler in handlers:
            handler(**data)
        return
    transaction.on_commit(lambda: _after_commit(event, handlers, data))


def _after_commit(event: Event, handlers: tuple[Handler, ...], data: dict[str, Any]) -> None:
    for handler in handlers:
        try:
            handler(**data)
        except Exception:
            # The change is committed either way; a broken listener must not undo or crash it.
            log.exception("event %s: listener %s failed", event.name, handler_name(handler))


@contextlib.contextmanager
def listening(event: type[Event], *handlers: Handler, only: bool = True) -> Iterator[None]:
    """For tests: ``handlers`` act on ``event`` inside the block (``only``: instead of the
    registered ones), then the registry is as it was."""
    with _lock:
        before = _listeners[event]
    for handler in handlers:
        inspect.signature(handler).bind(**dict.fromkeys(_fields(event)))
    with _lock:
        _listeners[event] = tuple(handlers) if only else (*before, *handlers)
    try:
        yield
    finally:
        with _lock:
            _listeners[event] = before
