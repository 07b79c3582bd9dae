"""One error base for every refusal a person reads, and the one place that turns an error into an
answer: an ``error`` frame on a socket, a JSON body (or a page) over HTTP.

A refusal is an ``AppError``: a stable ``code`` (the protocol's error code, the JSON ``code``),
its words in English and in Chinese (``en``, ``zh``: both, always; a teller or a customer reads
them), the HTTP ``status`` it is answered with, and optional structured ``fields`` that travel
next to ``code`` (``limit`` and ``retry_after_s`` of a rate limit, say). Each app derives its
errors from it or raises the common ones below; whoever answers (a consumer, a view) does not
look at which app the error came from.

- Socket: ``socket_fields(error)`` → ``code``, ``detail`` ("en / zh", the form the pages show and
  the protocol documents) and the fields; ``signaling.consumers.SignalingConsumer`` sends it.
- HTTP: a view raises; ``videobank.http_errors.AppErrorMiddleware`` answers ``http_body`` —
  ``{"code", "detail": {"en", "zh"}, ...}`` — with the status, or, to a browser opening a page,
  the same words on the error page.

Anything else that escapes a consumer or a view is a fault, not a refusal: ``as_answer`` logs it
with its traceback and answers ``internal`` (a socket; over HTTP Django's 500 page does the
same), never with its text.

This module imports nothing of the apps, nor Django: every layer may raise these, the wire schema
(``signaling.protocol``, which stands alone) included.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

# Keys of the answer itself: ``fields`` cannot take their place.
RESERVED_KEYS = frozenset({"type", "v", "code", "detail", "ref"})


class AppError(Exception):
    """A refusal in words. ``str()`` is the English text (logs, ``pytest.raises(match=...)``)."""

    code: str = "refused"
    http_status: int = 400

    def __init__(
        self,
        en: str,
        zh: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        fields: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(en)
        self.en = en
        self.zh = zh
        if code:
            self.code = code
        if http_status:
            self.http_status = http_status
        self.fields: dict[str, Any] = dict(fields or {})
        clash = RESERVED_KEYS & self.fields.keys()
        if clash:
            raise ValueError(f"error fields may not be named {sorted(clash)}")

    def words(self) -> dict[str, str]:
        return {"en": self.en, "zh": self.zh}

    # The names the apps' errors used before they shared this base.
    @property
    def detail(self) -> str:
        return self.en

    @property
    def detail_zh(self) -> str:
        return self.zh


class Invalid(AppError):
    """What was sent cannot be used (a missing or malformed field)."""

    code = "invalid"
    http_status = 400


class Forbidden(AppError):
    """This person, socket or device may not do that."""

    code = "forbidden"
    http_status = 403


class NotFound(AppError):
    """The thing named does not exist (or is not this person's to see)."""

    code = "not_found"
    http_status = 404


class Conflict(AppError):
    """Not allowed in the current state (already taken, out of order, too late)."""

    code = "conflict"
    http_status = 409


class TooLarge(AppError):
    """A request or a file over its size limit."""

    code = "too_large"
    http_status = 413


class RateLimited(AppError):
    """Too many, too often; ``retry_after_s`` (when known) says when the next one gets through."""

    code = "rate_limited"
    http_status = 429

    def __init__(
        self,
        en: str,
        zh: str,
        *,
        retry_after_s: int | None = None,
        code: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> None:
        extra = dict(fields or {})
        if retry_after_s is not None:
            extra["retry_after_s"] = retry_after_s
        super().__init__(en, zh, code=code, fields=extra)
        self.retry_after_s = retry_after_s


class Unavailable(AppError):
    """Something the answer needs (an outside service, a media worker) is not there: retry."""

    code = "service_unavailable"
    http_status = 503


class Internal(AppError):
    """A fault of the server: the words never carry what went wrong (that is in the log)."""

    code = "internal"
    http_status = 500

    def __init__(self) -> None:
        super().__init__("The server could not handle that message.", "服务器无法处理该消息。")


def as_answer(exc: BaseException, *, where: str = "") -> AppError:
    """The error to answer with: ``exc`` when it is a refusal; otherwise ``Internal``, and the
    fault is logged with its traceback (``where`` says what was being handled)."""
    if isinstance(exc, AppError):
        return exc
    log.error("unexpected failure%s", f" on {where}" if where else "", exc_info=exc)
    return Internal()


# --- sockets ------------------------------------------------------------------------------------


def socket_detail(error: AppError) -> str:
    """The ``detail`` of an ``error`` frame: both languages in one text, English first."""
    return error.en if error.zh == error.en else f"{error.en} / {error.zh}"


def socket_fields(error: AppError) -> dict[str, Any]:
    """What an ``error`` frame says about ``error``: ``code``, ``detail`` and its fields (the
    protocol adds ``type``, ``v`` and ``ref``)."""
    return {**error.fields, "code": error.code, "detail": socket_detail(error)}


# --- HTTP ---------------------------------------------------------------------------------------


def http_body(error: AppError) -> dict[str, Any]:
    """The JSON answer: ``{"code", "detail": {"en", "zh"}, ...fields}``."""
    return {**error.fields, "code": error.code, "detail": error.words()}
