"""What of a bank customer may appear in logs and on screens that are not the customer's own:
account and card numbers with only the first and last four digits (``6222 **** **** 1234``),
mobile numbers with the middle hidden (``138****8000``). ID numbers, names and addresses: see
``kyc.national.masking``."""

from __future__ import annotations

from kyc.national.masking import address_mask, id_number_mask, name_mask

__all__ = ["account_mask", "address_mask", "id_number_mask", "mobile_mask", "name_mask"]


def account_mask(number: str | None) -> str:
    """6222021234567891234 → ``6222 **** **** 1234`` (a card or an account number; the printed
    groups say nothing about the hidden length)."""
    if not number:
        return ""
    digits = "".join(str(number).split())
    if len(digits) <= 8:
        return "*" * len(digits)
    return f"{digits[:4]} **** **** {digits[-4:]}"


def mobile_mask(mobile: str | None) -> str:
    """13800138000 → ``138****8000``."""
    if not mobile:
        return ""
    if len(mobile) < 8:
        return "*" * len(mobile)
    return mobile[:3] + "*" * (len(mobile) - 7) + mobile[-4:]
