"""Errors of the businesses done in a call. Each carries a stable ``code`` (for the protocol and
tests) and words for both screens in both languages, like ``kyc.errors``: a refusal a teller or
a customer sees is a sentence, never a stack trace.

``WorkflowError`` has the same face as ``kyc.errors.KycError`` (``code``, ``detail``,
``detail_zh``) so a socket consumer can answer both the same way."""

from __future__ import annotations


class WorkflowError(Exception):
    code = "workflow_error"

    def __init__(
        self,
        detail: str,
        *,
        detail_zh: str = "",
        code: str | None = None,
        fields: dict[str, dict[str, str]] | None = None,
    ):
        super().__init__(detail)
        self.detail = detail
        self.detail_zh = detail_zh or detail
        if code:
            self.code = code
        # Form errors by field name: {"amount": {"en": ..., "zh": ...}}.
        self.fields = fields or {}

    def words(self) -> dict[str, str]:
        return {"en": self.detail, "zh": self.detail_zh}


class StateConflict(WorkflowError):
    """The move is not allowed in the business's current state (out of order, twice, too late)."""

    code = "conflict"


class Invalid(WorkflowError):
    """The teller's form has errors (``fields`` says which, in words)."""

    code = "invalid"


class BusinessRule(WorkflowError):
    """A rule of the business refuses it (insufficient funds, card already lost, over limit...)."""

    code = "business_rule"


class IdentityRequired(WorkflowError):
    """The call's identity check is missing, expired or below the level the business needs."""

    code = "identity_required"


class CoreBankUnavailable(WorkflowError):
    """The core bank did not answer (the submission itself is queued and retried)."""

    code = "corebank_unavailable"
