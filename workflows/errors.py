"""Errors of the businesses done in a call. Each carries a stable ``code`` (for the protocol and
tests) and words for both screens in both languages (``detail``, ``detail_zh``): a refusal a
teller or a customer sees is a sentence, never a stack trace. They are
``videobank.errors.AppError``s, answered in one place like every app's."""

from __future__ import annotations

from videobank.errors import AppError


class WorkflowError(AppError):
    code = "workflow_error"
    http_status = 400

    def __init__(self, detail: str, *, detail_zh: str, code: str | None = None):
        super().__init__(detail, detail_zh, code=code)


class StateConflict(WorkflowError):
    """The move is not allowed in the business's current state (out of order, twice, too late)."""

    code = "conflict"
    http_status = 409


class Invalid(WorkflowError):
    """The teller's form, or the customer's answer, cannot be used; the words say why."""

    code = "invalid"


class BusinessRule(WorkflowError):
    """A rule of the business refuses it (insufficient funds, card already lost, over limit...)."""

    code = "business_rule"
    http_status = 422


class IdentityRequired(WorkflowError):
    """The call's identity check is missing, expired or below the level the business needs."""

    code = "identity_required"
    http_status = 409


class CoreBankUnavailable(WorkflowError):
    """The core bank did not answer (the submission itself is queued and retried)."""

    code = "corebank_unavailable"
    http_status = 503
