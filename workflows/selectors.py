"""Reads of the businesses of a call: the teller's card for each (``case_panel``), the call summary
at hang-up, and what the customer's screen is sent (agreement, summary to confirm, progress)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from django.conf import settings

from . import catalogue
from .catalogue import STEP_WORDS, words
from .models import FINAL_STATUSES, BusinessCase, CaseStatus, Receipt
from .receipts import receipt_links

STATUS_WORDS: dict[str, tuple[str, str]] = {
    CaseStatus.DRAFT: ("Fill in the form", "请填写业务信息"),
    CaseStatus.NEEDS_FACE: (
        "Waiting for a fresh face match of the customer",
        "等待重新进行人脸比对",
    ),
    CaseStatus.FILLED: ("Ready: send the agreement to the customer", "信息已填写，可推送协议"),
    CaseStatus.AGREEMENT_SENT: ("The customer is reading the agreement", "客户正在阅读协议"),
    CaseStatus.AGREEMENT_READ: (
        "Agreement read; the customer is checking the summary",
        "客户已阅读协议，正在核对业务信息",
    ),
    CaseStatus.CONFIRMED: (
        "Confirmed; the customer is entering the PIN or code",
        "客户已确认，正在输入密码或验证码",
    ),
    CaseStatus.AUTHORISED: ("Authorised", "已授权"),
    CaseStatus.SUBMITTED: ("Sent to the core bank", "已提交核心系统处理"),
    CaseStatus.WAITING_RETRY: (
        "The core bank is not answering: queued, it will be sent once it is back",
        "核心系统暂无响应：业务已排队，恢复后将自动提交（仅处理一次）",
    ),
    CaseStatus.DONE: ("Done", "办理成功"),
    CaseStatus.REFUSED: ("The customer refused", "客户已拒绝"),
    CaseStatus.REJECTED: ("Rejected", "业务被拒绝"),
    CaseStatus.CANCELLED: ("Cancelled", "已取消"),
}

# Who the case waits on: the teller's card shows it as the next move.
WAITING_ON: dict[str, str] = {
    CaseStatus.DRAFT: "teller",
    CaseStatus.NEEDS_FACE: "face_match",
    CaseStatus.FILLED: "teller",
    CaseStatus.AGREEMENT_SENT: "customer",
    CaseStatus.AGREEMENT_READ: "customer",
    CaseStatus.CONFIRMED: "customer",
    CaseStatus.AUTHORISED: "customer",
    CaseStatus.SUBMITTED: "core_bank",
    CaseStatus.WAITING_RETRY: "core_bank",
}

# What the customer's screen says at each status (no figures, no personal data).
PROGRESS_WORDS: dict[str, tuple[str, str]] = {
    CaseStatus.DRAFT: ("The teller is preparing your business.", "柜员正在为您准备业务。"),
    CaseStatus.NEEDS_FACE: (
        "For this business the teller needs to check your face again: please look at the camera.",
        "办理此业务需要再次核验您的人脸，请正对摄像头。",
    ),
    CaseStatus.FILLED: ("The teller is preparing your business.", "柜员正在为您准备业务。"),
    CaseStatus.SUBMITTED: ("Processing…", "正在处理…"),
    CaseStatus.WAITING_RETRY: (
        "The bank's system is busy. Your request is queued and will go through once, "
        "automatically; you need not do anything.",
        "银行系统繁忙。您的业务已排队，将自动提交且只处理一次，您无需任何操作。",
    ),
    CaseStatus.DONE: ("Done. Your e-receipt is ready.", "办理成功，电子回单已生成。"),
    CaseStatus.REFUSED: (
        "You refused this business; nothing was done.",
        "您已拒绝该业务，未做任何处理。",
    ),
    CaseStatus.CANCELLED: ("The teller cancelled this business.", "柜员已取消该业务。"),
}


def status_words(status: str) -> dict[str, str]:
    en, zh = STATUS_WORDS.get(status, (status, status))
    return words(en, zh)


def progress_words(case: BusinessCase) -> dict[str, str]:
    if case.status == CaseStatus.REJECTED and case.error:
        return words(case.error["en"], case.error["zh"])
    en, zh = PROGRESS_WORDS.get(case.status, STATUS_WORDS.get(case.status, ("", "")))
    return words(en, zh)


def teller_actions(case: BusinessCase) -> list[str]:
    """What the teller may do now (protocol message suffixes after ``case.``)."""
    if case.status in (CaseStatus.DRAFT, CaseStatus.NEEDS_FACE):
        return ["fill", "cancel"]
    if case.status == CaseStatus.FILLED:
        return ["fill", "agreement.send", "cancel"]
    business = catalogue.CATALOGUE[case.business]
    if case.status == CaseStatus.CONFIRMED and business.authorisation:
        return ["pin.resend", "cancel"]
    if case.status == CaseStatus.AUTHORISED and business.new_pin:
        return ["pin.resend", "cancel"]
    if case.status in (CaseStatus.AGREEMENT_SENT, CaseStatus.AGREEMENT_READ):
        return ["cancel"]
    if case.status == CaseStatus.WAITING_RETRY and (case.error or {}).get("code") == (
        "corebank_unanswered"
    ):
        return ["submission.retry"]
    return []


def form_spec(case: BusinessCase) -> list[dict[str, Any]]:
    """The form the teller's card renders: each field with its type, label, choices (the
    customer's own accounts and cards where the field takes one), value as typed and error."""
    business = catalogue.CATALOGUE[case.business]
    editable = case.status in (CaseStatus.DRAFT, CaseStatus.NEEDS_FACE, CaseStatus.FILLED)
    spec = []
    for f in business.form:
        entry = {
            "name": f.name,
            "type": f.type,
            "label": f.label(),
            "required": f.required,
            "choices": catalogue.field_choices(f, case.customer),
            "value": case.form_values.get(f.name, ""),
            # The field's error in words ({"en", "zh"}) or None; "errors" is the same.
            "error": case.form_errors.get(f.name),
            "errors": case.form_errors.get(f.name),
            "help": catalogue.words(f.help_en, f.help_zh or f.help_en) if f.help_en else None,
            "group": f.group or None,
            "readonly": not editable,
        }
        if f.type == "money":
            entry["min"] = str(f.min) if f.min is not None else "0.01"
            entry["max"] = str(f.max) if f.max is not None else None
        elif f.type == "number":
            entry["min"], entry["max"] = f.min, f.max
        elif f.type == "text":
            entry["max_length"] = f.max_length
        spec.append(entry)
    return spec


def case_steps(case: BusinessCase) -> list[dict[str, Any]]:
    business = catalogue.CATALOGUE[case.business]
    steps = []
    for step in business.steps:
        en, zh = STEP_WORDS[step]
        entry = {"step": step, "label": words(en, zh), "state": "pending", "detail": None}
        entry.update(case.steps.get(step, {}))
        steps.append(entry)
    return steps


def current_step_words(case: BusinessCase) -> dict[str, Any] | None:
    """The detail of the step in progress (e.g. "The customer is reading the agreement.")."""
    for step in catalogue.CATALOGUE[case.business].steps:
        entry = case.steps.get(step) or {}
        if entry.get("state") == "current":
            return entry.get("detail")
    return None


def receipt_of(case: BusinessCase) -> Receipt | None:
    try:
        return case.receipt
    except Receipt.DoesNotExist:
        return None


def receipt_info(case: BusinessCase) -> dict[str, Any] | None:
    receipt = receipt_of(case)
    return receipt_links(receipt) if receipt is not None else None


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def case_panel(case: BusinessCase) -> dict[str, Any]:
    """Everything the teller's card for one business shows (``case.state``)."""
    business = catalogue.CATALOGUE[case.business]
    actions = teller_actions(case)
    return {
        "case_id": str(case.id),
        "call_id": str(case.call_id),
        "revision": case.revision,
        "business": case.business,
        "name": business.name(),
        "identity_level": business.identity_level,
        "authorisation": business.authorisation or None,
        "status": case.status,
        "status_text": status_words(case.status),
        "final": case.status in FINAL_STATUSES,
        "waiting_on": WAITING_ON.get(case.status),
        "actions": actions,
        "can": {
            "fill": "fill" in actions,
            "send_agreement": "agreement.send" in actions,
            "cancel": "cancel" in actions,
            "pin_resend": "pin.resend" in actions,
            "submission_retry": "submission.retry" in actions,
        },
        "message": current_step_words(case),
        "steps": case_steps(case),
        "form": form_spec(case),
        "summary": case.summary,
        "error": case.error,
        "agreement": {
            "sent_at": _iso(case.agreement_sent_at),
            "read_at": _iso(case.agreement_read_at),
            "reading_ms": case.agreement_reading_ms,
            "reached_end": case.agreement_reached_end,
        },
        "confirmed_at": _iso(case.confirmed_at),
        "authorisation_state": {
            "method": case.auth_method or None,
            "attempts_left": case.auth_attempts_left,
            "authorised_at": _iso(case.authorised_at),
        },
        "submitted_at": _iso(case.submitted_at),
        "result_lines": (
            business.result_lines(case.params, case.result) if case.status == "done" else []
        ),
        "receipt": receipt_info(case),
        "created_at": _iso(case.created_at),
        "updated_at": _iso(case.updated_at),
        "done_at": _iso(case.done_at),
    }


def call_cases(call_id: uuid.UUID) -> list[BusinessCase]:
    return list(
        BusinessCase.objects.filter(call_id=call_id)
        .select_related("receipt")
        .order_by("created_at")
    )


def call_summary(call_id: uuid.UUID) -> list[dict[str, Any]]:
    """The businesses of a call as the teller's summary at hang-up lists them (``call.summary``
    ``cases``): business, status in words, the error if any, the receipt."""
    return [
        {
            "case_id": str(case.id),
            "business": case.business,
            "name": catalogue.CATALOGUE[case.business].name(),
            "status": case.status,
            "status_text": status_words(case.status),
            "error": case.error if case.status == CaseStatus.REJECTED else None,
            "receipt": receipt_info(case),
            "done_at": _iso(case.done_at),
        }
        for case in call_cases(call_id)
    ]


# --- what the customer's screen is sent ---------------------------------------------------------


def agreement_min_read_ms() -> int:
    return int(getattr(settings, "WORKFLOW_AGREEMENT_MIN_READ_MS", 2000))


def agreement_message(case: BusinessCase) -> dict[str, Any]:
    """``case.agreement`` fields."""
    business = catalogue.CATALOGUE[case.business]
    return {
        "call_id": str(case.call_id),
        "case_id": str(case.id),
        "business": business.name(),
        "title": business.agreement.title(),
        "paragraphs": business.agreement.paragraphs(),
        "version": catalogue.AGREEMENT_VERSION,
        "min_read_ms": agreement_min_read_ms(),
    }


def confirm_message(case: BusinessCase) -> dict[str, Any]:
    """``case.confirm_request`` fields: the summary the customer confirms or refuses."""
    business = catalogue.CATALOGUE[case.business]
    return {
        "call_id": str(case.call_id),
        "case_id": str(case.id),
        "business": business.name(),
        "title": business.name(),
        "summary": case.summary,
    }


def progress_message(case: BusinessCase, text: dict[str, Any] | None = None) -> dict[str, Any]:
    """``case.progress`` fields."""
    return {
        "call_id": str(case.call_id),
        "case_id": str(case.id),
        "revision": case.revision,
        "business": catalogue.CATALOGUE[case.business].name(),
        "status": case.status,
        "text": text or progress_words(case),
    }


def receipt_message(case: BusinessCase) -> dict[str, Any] | None:
    """``case.receipt`` fields: the links carry the receipt's own link token (the call's token
    opens no receipt)."""
    receipt = receipt_of(case)
    if receipt is None:
        return None
    info = receipt_links(receipt, for_customer=True)
    name = catalogue.CATALOGUE[case.business].name()
    return {
        "call_id": str(case.call_id),
        "case_id": str(case.id),
        "business": name,
        "title": name,
        "code": info["code"],
        "url": info["url"],
        "pdf_url": info["pdf_url"],
    }
