"""Resident ID numbers (GB 11643-1999): 6-digit region, 8-digit birth date, 3-digit sequence
(odd for men, even for women), one ISO 7064 MOD 11-2 check character (0-9 or X)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

# Weight of position i is 2**(17 - i) mod 11; the check character makes the weighted sum ≡ 1.
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
ID_NUMBER_RE = re.compile(r"^\d{17}[\dX]$")

_FULL_WIDTH = str.maketrans("０１２３４５６７８９ＸｘＯｏ", "0123456789XX00")


def id_number_check_char(first17: str) -> str:
    """The check character for the first 17 digits."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("need exactly 17 digits")
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def id_number_make(*, region: str, birth: dt.date, sequence: int) -> str:
    """A well-formed number: sequence 0-999 (odd for a man, even for a woman)."""
    if len(region) != 6 or not region.isdigit():
        raise ValueError("region must be 6 digits")
    if not 0 <= sequence <= 999:
        raise ValueError("sequence must be 0-999")
    first17 = f"{region}{birth:%Y%m%d}{sequence:03d}"
    return first17 + id_number_check_char(first17)


def id_number_clean(text: str) -> str:
    """Upper-case, ASCII, without spaces: what OCR or a typist gives, made comparable."""
    return re.sub(r"\s+", "", text.translate(_FULL_WIDTH)).upper()


def id_number_well_formed(number: str) -> bool:
    return bool(ID_NUMBER_RE.match(number))


def id_number_checksum_ok(number: str) -> bool:
    return id_number_well_formed(number) and id_number_check_char(number[:17]) == number[17]


@dataclass(frozen=True)
class IdNumberParts:
    region: str
    birth: dt.date | None  # None when the eight digits are not a calendar date
    birth_digits: str
    sequence: int
    sex: str  # "男" or "女"
    check: str


def id_number_parse(number: str) -> IdNumberParts:
    """The parts of a well-formed number (ValueError otherwise); the check is not verified here."""
    if not id_number_well_formed(number):
        raise ValueError("not an 18-character resident ID number")
    digits = number[6:14]
    try:
        birth: dt.date | None = dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        birth = None
    sequence = int(number[14:17])
    return IdNumberParts(
        region=number[:6],
        birth=birth,
        birth_digits=digits,
        sequence=sequence,
        sex="男" if sequence % 2 else "女",
        check=number[17],
    )


def id_number_mask(number: str | None) -> str:
    """For logs: region and last four kept, birth date and sequence hidden (110101********1234)."""
    if not number:
        return ""
    if len(number) <= 10:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]
