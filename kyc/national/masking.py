"""What of a person may appear in logs: the ID number with birth date and sequence hidden, the
name reduced to its first character."""

from __future__ import annotations

from kyc.idcard.numbers import id_number_mask

__all__ = ["id_number_mask", "name_mask"]


def name_mask(name: str | None) -> str:
    """张伟 → 张*, 欧阳娜娜 → 欧***: enough for a teller to recognise a log line, not a person."""
    if not name:
        return ""
    if len(name) == 1:
        return "*"
    return name[0] + "*" * (len(name) - 1)
