"""Refusals of the queue. The common ones (``NotFound``, ``Conflict``, ``Forbidden``) are the
shared ones of ``videobank.errors``, kept here under their old names; those only the queue has
derive from the same base. Each carries its ``code`` (the protocol's error code), its words in
English and Chinese, and the fields its ``error`` frame adds."""

from __future__ import annotations

from videobank.errors import AppError, Conflict, Forbidden, NotFound, Unavailable
from videobank.errors import RateLimited as _RateLimited

# The queue's refusals had a base of their own before they shared one with every app.
QueueingError = AppError

__all__ = [
    "Conflict",
    "Forbidden",
    "MediaUnavailable",
    "NotFound",
    "QueueFull",
    "QueueingError",
    "RateLimited",
]


class MediaUnavailable(Unavailable):
    code = "media_unavailable"


class RateLimited(_RateLimited):
    """Too many call requests (or open calls) from one network or device. ``limit`` names which
    (ip_rate, device_rate, ip_open, device_open); ``retry_after_s`` says when a rate limit lets
    the next one through."""

    def __init__(self, en: str, zh: str, *, limit: str, retry_after_s: int | None = None):
        super().__init__(en, zh, retry_after_s=retry_after_s, fields={"limit": limit})
        self.limit = limit


class QueueFull(AppError):
    """The queue holds as many waiting calls as it may: the customer is offered a callback."""

    code = "queue_full"
    http_status = 503

    def __init__(self, *, en: str, zh: str):
        super().__init__(en, zh)

    @property
    def text(self) -> dict[str, str]:
        return self.words()
