"""The queue's clock. Tests and the simulator move it by hand; everything else reads real time."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

_frozen: datetime | None = None


def now() -> datetime:
    return _frozen if _frozen is not None else timezone.now()


def set_now(moment: datetime | None) -> None:
    """Freeze the clock at ``moment`` (None: back to real time)."""
    global _frozen
    _frozen = moment


def seconds(moment: datetime) -> float:
    return moment.timestamp()
