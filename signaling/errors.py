"""Refusals of the signaling layer, in words."""

from __future__ import annotations

from queueing.errors import Forbidden


class Refused(Forbidden):
    """A refusal a person reads, in both languages (``detail`` carries both for the socket)."""

    def __init__(self, en: str, zh: str) -> None:
        super().__init__(f"{en} / {zh}")
        self.en, self.zh = en, zh
