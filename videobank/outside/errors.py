"""What the kit's client raises when an outside service gives no answer.

Technical for the adapters that use the client (``reason`` is for logs and an operator), with
words for a person too (``detail`` / ``detail_zh``); each adapter raises its own app's error from
it (``CoreBankUnavailable``, the national check's ``ChannelFailure``...), keeping their codes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OutsideService:
    """An outside service as the kit names it: ``name`` keys its breaker and its log lines
    (``core-bank``, ``national-id/primary``); ``en`` / ``zh`` name it for a person."""

    name: str
    en: str
    zh: str

    def unavailable_words(self) -> tuple[str, str]:
        return (
            f"{self.en[:1].upper()}{self.en[1:]} is not answering; please try again shortly.",
            f"{self.zh}暂时没有响应，请稍后重试。",
        )


class OutsideUnavailable(Exception):
    """No answer: refused, timed out, 5xx, too many requests, or not asked at all because the
    service's circuit is open (``breaker_open``). ``retry_after_s``: what the service asked for
    (HTTP 429/503 ``Retry-After``), if anything."""

    code = "outside_unavailable"

    def __init__(
        self,
        reason: str,
        *,
        service: OutsideService,
        breaker_open: bool = False,
        retry_after_s: float | None = None,
    ):
        super().__init__(f"{service.name}: {reason}")
        self.reason = reason
        self.service = service
        self.breaker_open = breaker_open
        self.retry_after_s = retry_after_s
        self.detail, self.detail_zh = service.unavailable_words()
