"""Errors of the core-banking client. Each carries a stable ``code`` and words for the teller and
the customer in both languages (``detail``, ``detail_zh``): ``videobank.errors.AppError``s."""

from __future__ import annotations

from videobank.errors import AppError


class CoreBankError(AppError):
    code = "corebank_error"
    http_status = 502  # the core refused or failed: an answer from upstream

    def __init__(self, detail: str, *, detail_zh: str = "", code: str | None = None):
        super().__init__(detail, detail_zh or detail, code=code)


class CoreBankUnavailable(CoreBankError):
    """The core did not answer (refused, timed out, 5xx, an answer lost): transient. ``reason``
    is technical, for logs."""

    code = "corebank_unavailable"
    http_status = 503

    def __init__(self, reason: str):
        super().__init__(
            "The core banking system is not answering; please try again shortly.",
            detail_zh="核心系统暂时没有响应，请稍后重试。",
        )
        self.reason = reason


class IdempotencyConflict(CoreBankError):
    """An idempotency key already used for a different submission."""

    code = "idempotency_conflict"
    http_status = 409
