"""Numbers the core hands out and checks: account and card numbers (Luhn check digit, as bank
cards carry), unified social credit codes of companies (GB 32100-2015 check character)."""

from __future__ import annotations

import secrets

from .models import Account, Card

USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, S, V, Z
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ACCOUNT_PREFIX = "6230"  # the stub's account numbers: 19 digits
CARD_PREFIX = "6222"  # its debit cards: 19 digits


def luhn_digit(body: str) -> str:
    """The check digit to append to ``body`` (digits)."""
    total = 0
    for i, char in enumerate(reversed(body)):
        digit = int(char)
        if i % 2 == 0:  # doubled: every second digit from the right, once the check is added
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return str(-total % 10)


def luhn_ok(number: str) -> bool:
    return len(number) > 1 and number.isdigit() and luhn_digit(number[:-1]) == number[-1]


def _random_number(prefix: str, length: int) -> str:
    body = prefix + "".join(str(secrets.randbelow(10)) for _ in range(length - len(prefix) - 1))
    return body + luhn_digit(body)


def account_number_new() -> str:
    while True:
        number = _random_number(ACCOUNT_PREFIX, 19)
        if not Account.objects.filter(number=number).exists():
            return number


def card_number_new() -> str:
    while True:
        number = _random_number(CARD_PREFIX, 19)
        if not Card.objects.filter(number=number).exists():
            return number


def uscc_check_char(first17: str) -> str:
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_CHARS[-total % 31]


def uscc_valid(code: str) -> bool:
    """18 characters of the code's alphabet whose last is the check of the first 17."""
    if len(code) != 18 or any(c not in USCC_CHARS for c in code):
        return False
    return uscc_check_char(code[:17]) == code[17]
