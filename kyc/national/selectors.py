"""Reads of national checks."""

from __future__ import annotations

import uuid

from .models import NationalCheck


def national_check_get(*, check_id: uuid.UUID) -> NationalCheck:
    """The check (NationalCheck.DoesNotExist if there is none)."""
    return NationalCheck.objects.get(pk=check_id)


def national_checks_of_call(*, call_id: uuid.UUID) -> list[NationalCheck]:
    """A call's checks, newest first."""
    return list(NationalCheck.objects.filter(call_id=call_id).order_by("-created_at"))
