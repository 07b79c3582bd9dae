"""Refusals of the signaling layer, in words."""

from __future__ import annotations

from videobank.errors import Forbidden


class Refused(Forbidden):
    """A refusal a person reads, in both languages."""
