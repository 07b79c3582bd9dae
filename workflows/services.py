"""The businesses of a call, move by move. Each service is one transition of a case's state machine
(``catalogue.Business.transitions``), checked against the current state with the row locked;
a move out of order raises ``StateConflict`` in words and changes nothing.

Flow (teller on the console, customer on their own screen):

1. ``case_start`` — the teller opens a business; the call's passed identity check must meet the
   business's level; the customer is found at the core bank by the check's confirmed ID number.
2. ``case_fill`` — the teller's form, checked field by field and against the business's rules
   on the customer's current data; errors stay on the card in words. A high-risk business (a
   transfer over ``WORKFLOW_TRANSFER_FACE_LIMIT``, a mobile change, a corporate account) waits in
   ``needs_face`` when the last face match is older than ``KYC_FACE_FRESH_S``, and the fresh face
   match is requested here, not left to the teller's memory; ``case_identity_refreshed`` moves it
   on when the match passes.
3. ``case_agreement_send`` → the customer reads to the end → ``case_agreement_read``.
4. The customer sees the summary → ``case_confirm`` (accepts or refuses).
5. ``case_pin_challenge`` — the core bank's one-use challenge goes to the customer's keypad; the
   browser encrypts the PIN (or one-time code) for the core bank; ``case_authorise`` forwards the
   ciphertext once and keeps nothing of it.
6. ``submission_create`` with an idempotency key derived from the case: a double click, a
   repeated message or an outage retried gives exactly one effect at the core.
7. ``case_submission_result`` (the core-bank client's result hook) → done with a receipt,
   rejected with the core's words on both screens, or waiting_retry (the teller is told).

No call to the core bank is made inside a transaction: on SQLite the stub writes the same
database. Every change reaches the teller's card (``case.state``) and the customer's screen
after commit, and the call's timeline (kind ``business``) — never a PIN, a code or a ciphertext.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from kyc.models import IdentityCheck, StepStatus
from kyc.services import identity_face_match_request, identity_for_call
from queueing import notify
from queueing.models import Call, CallStatus
from queueing.services import call_event_record, call_lock
from videobank.errors import Conflict, Forbidden, NotFound, Unavailable
from workflows.corebank import services as corebank
from workflows.corebank.errors import CoreBankError
from workflows.corebank.errors import CoreBankUnavailable as CoreDown
from workflows.corebank.models import Submission, SubmissionStatus

from . import catalogue, selectors
from .catalogue import Business, words
from .errors import (
    BusinessRule,
    CoreBankUnavailable,
    IdentityRequired,
    Invalid,
    StateConflict,
    WorkflowError,
)
from .models import FINAL_STATUSES, BusinessCase, CaseStatus
from .receipts import receipt_issue, receipt_links

if TYPE_CHECKING:
    from django.contrib.auth.models import User

log = logging.getLogger(__name__)

LEVEL_RANK = {"none": 0, "two_factor": 1, "three_factor_face": 2}
EDITABLE = (CaseStatus.DRAFT, CaseStatus.NEEDS_FACE, CaseStatus.FILLED)
# Verdicts after which the customer tries again on the same challenge (a new keypad, the same
# request); any other refusal needs a new challenge.
RETRY_SAME_CHALLENGE = ("wrong_pin", "wrong_otp", "bad_format", "undecryptable", "weak_pin")


def face_fresh_s() -> float:
    return float(getattr(settings, "KYC_FACE_FRESH_S", 300))


def _now() -> datetime:
    return timezone.now()


# --- state helpers ---------------------------------------------------------------------------


def _business(case: BusinessCase) -> Business:
    return catalogue.CATALOGUE[case.business]


def _move(case: BusinessCase, to: str) -> None:
    """The one place a case changes status: only along its business's transitions."""
    allowed = _business(case).transitions.get(case.status, frozenset())
    if to not in allowed:
        raise _not_now(case, to)
    case.status = to


_MOVE_WORDS: dict[str, tuple[str, str]] = {
    CaseStatus.AGREEMENT_SENT: ("send the agreement", "推送协议"),
    CaseStatus.AGREEMENT_READ: ("agree to the agreement", "同意协议"),
    CaseStatus.CONFIRMED: ("confirm the business", "确认业务"),
    CaseStatus.REFUSED: ("refuse the business", "拒绝业务"),
    CaseStatus.AUTHORISED: ("authorise the business", "授权业务"),
    CaseStatus.SUBMITTED: ("submit the business", "提交业务"),
    CaseStatus.CANCELLED: ("cancel the business", "取消业务"),
    CaseStatus.FILLED: ("change the form", "修改业务信息"),
    CaseStatus.DRAFT: ("change the form", "修改业务信息"),
    CaseStatus.NEEDS_FACE: ("change the form", "修改业务信息"),
}


def _not_now(case: BusinessCase, to: str) -> StateConflict:
    move_en, move_zh = _MOVE_WORDS.get(to, (to, to))
    now = selectors.status_words(case.status)
    return StateConflict(
        f"Cannot {move_en} now: the business is at “{now['en']}”.",
        detail_zh=f"当前无法{move_zh}：业务状态为“{now['zh']}”。",
    )


def _step(case: BusinessCase, step: str, state: str, detail: dict[str, Any] | None = None) -> None:
    if step not in _business(case).steps:
        return
    case.steps = {
        **case.steps,
        step: {"state": state, "at": _now().isoformat(), "detail": detail},
    }


def _error(case: BusinessCase, code: str, en: str, zh: str) -> None:
    case.error = {"code": code, "en": en, "zh": zh}


def _error_words(case: BusinessCase) -> dict[str, Any]:
    """The case's error (just set by ``_error``) as a step's words."""
    assert case.error is not None
    return words(case.error["en"], case.error["zh"])


def _locked(case_id: uuid.UUID) -> BusinessCase:
    """The case, locked for a write, after its call (``call_lock``: a call before its cases, as
    a hang-up closes them, so that a step and a hang-up at once never deadlock)."""
    call_id = BusinessCase.objects.filter(pk=case_id).values_list("call_id", flat=True).first()
    if call_id is not None:
        call_lock(call_id)
    case = BusinessCase.objects.select_for_update().filter(pk=case_id).first()
    if case is None:
        raise NotFound("No such business case.", "没有这笔业务。")
    return case


def _case_of_call(case_id: uuid.UUID, call_id: uuid.UUID, *, lock: bool = False) -> BusinessCase:
    """The case, if it belongs to this call (the customer's socket is bound to one call)."""
    case = _locked(case_id) if lock else BusinessCase.objects.filter(pk=case_id).first()
    if case is None or str(case.call_id) != str(call_id):
        raise NotFound("No such business in this call.", "本通话中没有这笔业务。")
    return case


def _teller_call(call_id: uuid.UUID, teller: User) -> Call:
    call = Call.objects.filter(pk=call_id).first()
    if call is None or call.teller_id != teller.pk or call.status != CallStatus.CONNECTED:
        raise Forbidden("This call is not connected to you.", "该通话没有接通到您。")
    return call


def _teller_case(
    case_id: uuid.UUID, call_id: uuid.UUID, teller: User, *, lock: bool = False
) -> BusinessCase:
    _teller_call(call_id, teller)
    return _case_of_call(case_id, call_id, lock=lock)


def _event(case: BusinessCase, step: str, *, actor: str = "system", **data: Any) -> None:
    """The call's timeline: what happened to which business. Never a PIN, a code, a ciphertext
    or a full account number (callers pass masked values)."""
    call_event_record(
        call_id=case.call_id,
        kind="business",
        actor=actor,
        data={
            "case": str(case.id),
            "business": case.business,
            "step": step,
            "status": case.status,
            **data,
        },
    )


def _publish(case: BusinessCase, *customer_messages: tuple[str, dict[str, Any]]) -> None:
    """After commit: the card to the teller's consoles; the given messages to the call's group
    (the customer's screen)."""
    teller_id = Call.objects.filter(pk=case.call_id).values_list("teller_id", flat=True).first()
    if teller_id:
        notify.forward_on_commit(
            notify.teller_group(teller_id),
            "case.state",
            call_id=str(case.call_id),
            case=selectors.case_panel(case),
        )
    for type_, fields in customer_messages:
        notify.forward_on_commit(notify.call_group(case.call_id), type_, **fields)


def _progress(case: BusinessCase, text: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    return "case.progress", selectors.progress_message(case, text)


def _save(case: BusinessCase, *customer_messages: tuple[str, dict[str, Any]]) -> BusinessCase:
    case.revision += 1  # the row is locked (``_locked``, select_for_update) by every writer
    case.save()
    _publish(case, *customer_messages)
    return case


# --- identity --------------------------------------------------------------------------------


def _identity(call_id: uuid.UUID, business: Business) -> IdentityCheck | None:
    """The call's identity check if it serves this business; IdentityRequired in words if not."""
    check = identity_for_call(call_id=call_id)
    if business.identity_level == "none":
        return check
    if check is None:
        raise IdentityRequired(
            "Verify the customer's identity first (or again: the last check has expired).",
            detail_zh="请先完成客户身份核验（或重新核验：上次核验已过期）。",
        )
    if LEVEL_RANK.get(check.level, 0) < LEVEL_RANK[business.identity_level]:
        en, zh = catalogue.LEVEL_WORDS[business.identity_level]
        raise IdentityRequired(
            f"This business needs the identity level “{en}”; the call's check reached "
            f"“{catalogue.LEVEL_WORDS.get(check.level, (check.level, ''))[0]}”.",
            detail_zh=f"此业务要求身份核验等级“{zh}”，本次通话的核验未达到该等级。",
        )
    if check.steps.get("face_match", {}).get("status") == StepStatus.FAILED:
        raise IdentityRequired(
            "The last face match failed: match the customer's face again before any business.",
            detail_zh="最近一次人脸比对未通过：请重新比对客户人脸后再办理业务。",
        )
    return check


def _face_fresh(check: IdentityCheck | None) -> bool:
    if check is None or check.face_matched_at is None:
        return False
    if check.steps.get("face_match", {}).get("status") != StepStatus.PASSED:
        return False  # a fresh match is running (or failed)
    return _now() - check.face_matched_at <= timedelta(seconds=face_fresh_s())


def _identity_words(check: IdentityCheck | None) -> dict[str, Any]:
    if check is None:
        return words("No identity check needed.", "无需身份核验。")
    en, zh = catalogue.LEVEL_WORDS.get(check.level, (check.level, check.level))
    matched = (
        timezone.localtime(check.face_matched_at).strftime("%H:%M:%S")
        if check.face_matched_at
        else "—"
    )
    return words(f"{en}; face matched at {matched}.", f"{zh}；人脸比对时间 {matched}。")


# --- the core bank ---------------------------------------------------------------------------


def _core_error(exc: CoreBankError) -> WorkflowError:
    if isinstance(exc, CoreDown):
        return CoreBankUnavailable(exc.detail, detail_zh=exc.detail_zh)
    return BusinessRule(exc.detail, detail_zh=exc.detail_zh, code=exc.code)


def _customer_lookup(check: IdentityCheck | None) -> dict[str, Any]:
    if check is None:
        return {}
    try:
        customer = corebank.corebank_customer_lookup(id_number=check.fields.get("id_number", ""))
    except CoreBankError as exc:
        raise _core_error(exc) from exc
    if customer is None:
        raise BusinessRule(
            "The bank has no customer with this ID number: the customer must open an account "
            "first.",
            detail_zh="本行没有该身份证号码的客户，请先开户。",
            code="not_a_customer",
        )
    return customer


def _customer_snapshot(customer: dict[str, Any]) -> dict[str, Any]:
    """What the case keeps of the customer for the teller's form (choices and rules): what the
    core gave, without what no form needs."""
    keep = ("customer_ref", "name", "mobile_masked", "status", "accounts", "cards", "limits")
    return {k: customer[k] for k in keep if k in customer}


# --- 1. start --------------------------------------------------------------------------------


def case_start(*, call_id: uuid.UUID, teller: User, business: str) -> BusinessCase:
    """The teller opens a business for the call (several per call, one identity check)."""
    spec = catalogue.business_get(business)
    if spec is None:
        raise Invalid(f"Unknown business {business!r}.", detail_zh=f"未知业务 {business!r}。")
    _teller_call(call_id, teller)
    check = _identity(call_id, spec)
    customer = _customer_lookup(check)  # over the network: outside the transaction
    with transaction.atomic():
        call = call_lock(call_id)
        if call is None or call.teller_id != teller.pk or call.status != CallStatus.CONNECTED:
            raise Forbidden("This call is not connected to you.", "该通话没有接通到您。")
        case = BusinessCase(
            call=call,
            business=spec.key,
            teller=teller,
            identity_check_id=check.id if check else None,
            customer_ref=customer.get("customer_ref", ""),
            customer=_customer_snapshot(customer),
        )
        case.idempotency_key = f"case-{case.id}"
        _step(case, "form", "current")
        _step(case, "identity", "done", _identity_words(check))
        case.save()
        _event(
            case,
            "start",
            actor=f"teller:{teller.pk}",
            identity_level=check.level if check else "none",
            customer_ref=case.customer_ref,
        )
        _publish(case, _progress(case))
    return case


# --- 2. the form -----------------------------------------------------------------------------


def case_fill(
    *, call_id: uuid.UUID, case_id: uuid.UUID, teller: User, params: dict[str, Any]
) -> BusinessCase:
    """The teller's form. Errors (a field, or a rule such as insufficient funds) stay on the
    card in words and keep the case a draft; a clean form makes it ``filled`` — or
    ``needs_face`` when the business is high-risk and the last face match is too old, in which
    case the fresh face match is requested at once."""
    if not isinstance(params, dict):
        raise Invalid("The form must be a set of fields.", detail_zh="业务信息格式不正确。")
    case = _teller_case(case_id, call_id, teller)
    if case.status not in EDITABLE:
        raise _not_now(case, CaseStatus.FILLED)
    spec = _business(case)
    check = _identity(call_id, spec)
    customer = _customer_lookup(check)  # current balances and statuses for the rules
    clean, errors = catalogue.form_clean(spec.form, params, customer)
    rule_errors = spec.rules(clean, customer)
    for rule in rule_errors:
        if rule.field and rule.field not in errors:
            errors[rule.field] = words(rule.en, rule.zh)
    with transaction.atomic():
        case = _locked(case.id)
        if case.status not in EDITABLE:
            raise _not_now(case, CaseStatus.FILLED)
        case.customer = _customer_snapshot(customer) or case.customer
        case.form_values = {
            f.name: ("" if params.get(f.name) is None else str(params.get(f.name)))[:500]
            for f in spec.form
        }
        case.form_errors = errors
        if errors or rule_errors:
            _move(case, CaseStatus.DRAFT)
            case.params, case.summary = {}, []
            if rule_errors:
                first = rule_errors[0]
                _error(case, first.code, first.en, first.zh)
            else:
                _error(
                    case,
                    "invalid",
                    f"The form has {len(errors)} error(s).",
                    f"业务信息有 {len(errors)} 处错误。",
                )
            _step(case, "form", "failed", _error_words(case))
            _event(
                case,
                "form",
                actor=f"teller:{teller.pk}",
                errors=sorted(errors),
                rule=rule_errors[0].code if rule_errors else None,
            )
            return _save(case)
        case.params = clean
        case.summary = spec.summary(clean, customer)
        case.error = None
        _step(case, "form", "done")
        if "intent" in spec.steps:
            _step(case, "intent", "done", words("Answers recorded.", "已记录回答。"))
        if spec.high_risk(clean) and not _face_fresh(check):
            _move(case, CaseStatus.NEEDS_FACE)
            running = (
                check is not None
                and (check.steps.get("face_match") or {}).get("status") == StepStatus.RUNNING
            )
            if not running:  # else one is on its way: its result moves the case on
                _face_match_request(case, teller)
        else:
            _move(case, CaseStatus.FILLED)
            _step(case, "identity", "done", _identity_words(check))
            _step(case, "agreement", "current")
        _event(case, "form", actor=f"teller:{teller.pk}", high_risk=spec.high_risk(clean))
        return _save(case, _progress(case))


def _face_match_request(case: BusinessCase, teller: User) -> None:
    """Ask the identity check for a fresh face match of the customer now (inside the case's
    transaction: the request goes out after commit)."""
    case.face_requested_at = _now()
    _step(
        case,
        "identity",
        "current",
        words(
            f"High-risk business: a face match within {face_fresh_s():.0f} s is needed; "
            "matching the customer's face now.",
            f"高风险业务：需 {face_fresh_s():.0f} 秒内的人脸比对结果，正在重新比对客户人脸。",
        ),
    )
    try:
        identity_face_match_request(call_id=case.call_id, teller=teller)
    except (Conflict, Forbidden, NotFound, Unavailable) as exc:  # the call's state: in words
        _error(
            case,
            "face_match_unavailable",
            f"The fresh face match could not start: {exc.en} Start it from the identity panel.",
            f"无法发起人脸比对：{exc.zh} 请在身份核验面板中发起。",
        )
    _event(case, "face_requested", fresh_s=face_fresh_s())


def case_identity_refreshed(*, call_id: uuid.UUID) -> list[BusinessCase]:
    """Hook for the identity check's face-match result: cases of the call waiting for a fresh
    face match go on when it passed (or say in words that it failed)."""
    moved = []
    with transaction.atomic():
        cases = list(
            BusinessCase.objects.select_for_update().filter(
                call_id=call_id, status=CaseStatus.NEEDS_FACE
            )
        )
        if not cases:
            return []
        check = identity_for_call(call_id=call_id)
        face = (check.steps.get("face_match", {}) if check else {}) or {}
        for case in cases:
            if _face_fresh(check):
                _move(case, CaseStatus.FILLED)
                case.error = None
                _step(case, "identity", "done", _identity_words(check))
                _step(case, "agreement", "current")
                _event(case, "face_refreshed")
                _save(case, _progress(case))
                moved.append(case)
            elif face.get("status") == StepStatus.FAILED:
                _error(
                    case,
                    "face_match_failed",
                    "The fresh face match failed: "
                    + (face.get("detail") or "")
                    + " Match again or cancel the business.",
                    "人脸比对未通过：" + (face.get("detail_zh") or "") + " 请重新比对或取消业务。",
                )
                _step(case, "identity", "failed", _error_words(case))
                _event(case, "face_failed")
                _save(case)
    return moved


# --- 3. the agreement ------------------------------------------------------------------------


def case_agreement_send(*, call_id: uuid.UUID, case_id: uuid.UUID, teller: User) -> BusinessCase:
    """Push the business's agreement to the customer's screen."""
    with transaction.atomic():
        case = _teller_case(case_id, call_id, teller, lock=True)
        _move(case, CaseStatus.AGREEMENT_SENT)
        agreement = _business(case).agreement
        case.agreement_version = catalogue.AGREEMENT_VERSION
        case.agreement_sha256 = agreement.sha256()
        case.agreement_sent_at = _now()
        case.agreement_read_at = case.agreement_reading_ms = case.agreement_reached_end = None
        _step(
            case,
            "agreement",
            "current",
            words("The customer is reading the agreement.", "客户正在阅读协议。"),
        )
        _event(
            case,
            "agreement_sent",
            actor=f"teller:{teller.pk}",
            version=case.agreement_version,
            sha256=case.agreement_sha256,
        )
        return _save(case, ("case.agreement", selectors.agreement_message(case)))


def case_agreement_read(
    *, call_id: uuid.UUID, case_id: uuid.UUID, reached_end: bool, reading_ms: object = None
) -> BusinessCase:
    """The customer's "I have read and agree": only once they reached the end, and not sooner
    than ``WORKFLOW_AGREEMENT_MIN_READ_MS`` after the agreement was sent. The reading time is
    the server's measure (sent → agreed); what a page says it measured (``reading_ms``, sent by
    older pages) is not trusted and not kept. The teller sees it at once; the customer is then
    shown the summary to confirm."""
    del reading_ms  # the client's own figure: accepted for older pages, never used
    with transaction.atomic():
        case = _case_of_call(case_id, call_id, lock=True)
        if case.status != CaseStatus.AGREEMENT_SENT:
            raise _not_now(case, CaseStatus.AGREEMENT_READ)
        if not reached_end:
            raise Invalid(
                "Please read the agreement to its end before agreeing.",
                detail_zh="请将协议阅读至末尾后再点击同意。",
                code="agreement_not_read",
            )
        now = _now()
        sent_at = case.agreement_sent_at or now
        reading_ms = max(0, int((now - sent_at).total_seconds() * 1000))
        minimum = selectors.agreement_min_read_ms()
        if reading_ms < minimum:
            raise Invalid(
                f"Please take at least {minimum / 1000:.0f} s to read the agreement.",
                detail_zh=f"请至少用 {minimum / 1000:.0f} 秒阅读协议。",
                code="agreement_too_fast",
            )
        _move(case, CaseStatus.AGREEMENT_READ)
        case.agreement_read_at = now
        case.agreement_reading_ms = reading_ms
        case.agreement_reached_end = True
        _step(
            case,
            "agreement",
            "done",
            words(
                f"Read to the end and agreed after {reading_ms / 1000:.1f} s.",
                f"客户已阅读至末尾并同意，用时 {reading_ms / 1000:.1f} 秒。",
            ),
        )
        _step(case, "confirm", "current")
        _event(
            case,
            "agreement_read",
            actor="customer",
            reached_end=True,
            reading_ms=reading_ms,
            reading_measured_by="server",
            sha256=case.agreement_sha256,
        )
        return _save(case, ("case.confirm_request", selectors.confirm_message(case)))


# --- 4. confirmation -------------------------------------------------------------------------


def case_confirm(*, call_id: uuid.UUID, case_id: uuid.UUID, accepted: bool) -> BusinessCase:
    """The customer confirms the summary on their screen (or refuses: the business ends). A
    business with a PIN or code then asks for it; one without is submitted."""
    if not isinstance(accepted, bool):
        raise Invalid("Answer yes or no.", detail_zh="请选择确认或拒绝。")
    with transaction.atomic():
        case = _case_of_call(case_id, call_id, lock=True)
        if case.status != CaseStatus.AGREEMENT_READ:
            raise _not_now(case, CaseStatus.CONFIRMED if accepted else CaseStatus.REFUSED)
        spec = _business(case)
        if not accepted:
            _move(case, CaseStatus.REFUSED)
            _step(case, "confirm", "failed", words("Refused by the customer.", "客户拒绝办理。"))
            _event(case, "confirm", actor="customer", accepted=False)
            return _save(case, _progress(case))
        _move(case, CaseStatus.CONFIRMED)
        case.confirmed_at = _now()
        _step(case, "confirm", "done", words("Confirmed by the customer.", "客户已确认。"))
        _event(
            case,
            "confirm",
            actor="customer",
            accepted=True,
            summary=catalogue.lines_masked(case.summary),
        )
        if spec.authorisation:
            _step(case, spec.authorisation, "current")
            _save(case)
        else:
            return _submit(case)
    _pin_request_or_error(case.id)
    case.refresh_from_db()
    return case


# --- 5. PIN or one-time code -------------------------------------------------------------------


def _pin_request_or_error(case_id: uuid.UUID) -> None:
    """Ask the core for a challenge and send it to the customer; if the core cannot make one,
    both screens are told in words (``case_pin_challenge`` can be called again)."""
    try:
        case_pin_challenge(case_id=case_id)
    except WorkflowError as exc:
        with transaction.atomic():
            case = _locked(case_id)
            if exc.code == "pin_locked" and case.status == CaseStatus.CONFIRMED:
                _reject(case, exc.code, exc.detail, exc.detail_zh)
                return
            _error(case, exc.code, exc.detail, exc.detail_zh)
            _save(case, _progress(case, words(exc.detail, exc.detail_zh)))


def case_pin_challenge(*, case_id: uuid.UUID) -> dict[str, Any]:
    """A fresh one-use challenge from the core bank for the case's authorisation (or for the new
    PIN of a password reset), sent to the customer's keypad (``case.pin_request``). Returns the
    message's fields."""
    case = BusinessCase.objects.filter(pk=case_id).first()
    if case is None:
        raise NotFound("No such business case.", "没有这笔业务。")
    spec = _business(case)
    method = _awaited_method(case, spec)
    if method is None:
        raise StateConflict(
            "No PIN or code is expected for this business now.",
            detail_zh="当前业务无需输入密码或验证码。",
        )
    # The core binds an authorisation to the operation it is for.
    purpose = "new_pin" if method == "new_pin" else spec.operation
    try:
        challenge = corebank.corebank_pin_challenge(
            customer_ref=case.customer_ref, purpose=purpose, method=method
        )
    except CoreBankError as exc:
        raise _core_error(exc) from exc
    with transaction.atomic():
        case = _locked(case_id)
        if _awaited_method(case, spec) != method:
            raise StateConflict(
                "The business moved on meanwhile.", detail_zh="业务状态已发生变化。"
            )
        case.challenge_id = challenge["challenge_id"]
        # What the page needs to encrypt for this challenge (public: a key and a nonce).
        case.challenge = {
            k: challenge[k]
            for k in ("challenge_id", "method", "public_key_spki_b64", "nonce", "mobile_masked")
            if k in challenge
        }
        case.auth_method = method
        message = _pin_request_message(case, case.challenge)
        # From here to the authorisation the customer types on the keypad: nothing of it is
        # recorded (the keys never reach us; the page's events for that span are not logged),
        # and the timeline says so for the reviewer.
        _event(
            case,
            "pin_requested",
            method=method,
            challenge=case.challenge_id,
            masked="start",
            note="PIN entry: the customer's keypad is not recorded (encrypted for the core bank)",
        )
        _save(case, ("case.pin_request", message))
    return message


def case_pin_resend(*, call_id: uuid.UUID, case_id: uuid.UUID, teller: User) -> dict[str, Any]:
    """The teller sends the customer a fresh keypad (the core could not make one earlier, or the
    customer's page lost it)."""
    _teller_case(case_id, call_id, teller)
    return case_pin_challenge(case_id=case_id)


def _awaited_method(case: BusinessCase, spec: Business) -> str | None:
    if case.status == CaseStatus.CONFIRMED and spec.authorisation:
        return spec.authorisation
    if case.status == CaseStatus.AUTHORISED and spec.new_pin and not case.new_pin_challenge_id:
        return "new_pin"
    return None


PIN_PROMPTS = {
    "pin": ("Enter your 6-digit PIN.", "请输入 6 位交易密码。"),
    "otp": (
        "Enter the 6-digit code sent to your reserved mobile {mobile}.",
        "请输入发送至预留手机 {mobile} 的 6 位验证码。",
    ),
    "new_pin": (
        "Choose a new 6-digit PIN (no repeated, consecutive or birthday digits).",
        "请设置新的 6 位交易密码（不要使用重复、连续数字或生日）。",
    ),
}


def _pin_request_message(
    case: BusinessCase, challenge: dict[str, Any], error: dict[str, Any] | None = None
) -> dict[str, Any]:
    en, zh = PIN_PROMPTS[challenge["method"]]
    mobile = challenge.get("mobile_masked") or case.customer.get("mobile_masked", "")
    message = {
        "call_id": str(case.call_id),
        "case_id": str(case.id),
        "business": _business(case).name(),
        "method": challenge["method"],
        "challenge_id": challenge["challenge_id"],
        "public_key_spki_b64": challenge["public_key_spki_b64"],
        "nonce": challenge["nonce"],
        "digits": 6,
        "text": words(en.format(mobile=mobile), zh.format(mobile=mobile)),
        "attempts_left": case.auth_attempts_left,
        "retry": error is not None,
    }
    if error:
        message["error"] = error
    return message


def case_authorise(
    *, call_id: uuid.UUID, case_id: uuid.UUID, challenge_id: str, ciphertext_b64: str
) -> BusinessCase:
    """The customer's PIN (or code, or new PIN), encrypted in their browser for the core bank,
    forwarded once and never kept. Right: the business is submitted (a password reset first asks
    for the new PIN). Wrong: attempts left in words, the keypad again. Locked: rejected.

    A second authorisation of the same case (double click, repeated message) is refused without
    a second submission."""
    case = _case_of_call(case_id, call_id)
    spec = _business(case)
    method = _awaited_method(case, spec)
    if method is None:
        raise _not_now(case, CaseStatus.AUTHORISED)
    if not case.challenge_id or challenge_id != case.challenge_id:
        raise StateConflict(
            "This entry answers an old request; use the keypad on your screen now.",
            detail_zh="该输入对应的是已失效的请求，请使用当前屏幕上的键盘重新输入。",
        )
    try:
        verdict = corebank.corebank_pin_verify(
            challenge_id=challenge_id, ciphertext_b64=ciphertext_b64
        )
    except CoreBankError as exc:
        if isinstance(exc, CoreDown):
            # The core may have checked the entry and lost its answer, spending the challenge:
            # the customer enters it again on a new one (made once the core answers).
            _pin_request_or_error(case.id)
        raise _core_error(exc) from exc
    if verdict["code"] == "replayed":
        # The same entry twice (a double click, a repeated message): the first one counts.
        raise StateConflict(
            "This entry was already received.", detail_zh="该输入已收到，请勿重复提交。"
        )
    new_challenge = False
    with transaction.atomic():
        case = _locked(case.id)
        if _awaited_method(case, spec) != method or case.challenge_id != challenge_id:
            raise _not_now(case, CaseStatus.AUTHORISED)
        step = method
        if verdict["ok"]:
            case.error = None
            case.auth_attempts_left = None
            if method == "new_pin":
                case.new_pin_challenge_id = challenge_id
                _step(case, "new_pin", "done", words("New PIN set.", "新密码已设置。"))
                _event(case, "new_pin", actor="customer", ok=True)
                return _submit(case)
            case.authorised_at = _now()
            case.authorised_challenge_id = challenge_id
            _move(case, CaseStatus.AUTHORISED)
            _step(case, step, "done", words(verdict["en"], verdict["zh"]))
            _event(case, "authorise", actor="customer", method=method, ok=True, masked="end")
            if spec.new_pin:
                _step(case, "new_pin", "current")
                _save(case)
                new_challenge = True
            else:
                return _submit(case)
        elif verdict["locked"] or verdict["code"] == "pin_locked":
            _event(
                case,
                "authorise",
                actor="customer",
                method=method,
                ok=False,
                code="locked",
                masked="end",
            )
            _step(case, step, "failed", words(verdict["en"], verdict["zh"]))
            return _reject(case, "pin_locked", verdict["en"], verdict["zh"])
        else:
            case.auth_attempts_left = verdict["attempts_left"]
            _error(case, verdict["code"], verdict["en"], verdict["zh"])
            _step(case, step, "current", words(verdict["en"], verdict["zh"]))
            _event(
                case,
                "authorise",
                actor="customer",
                method=method,
                ok=False,
                code=verdict["code"],
                attempts_left=verdict["attempts_left"],
            )
            said = words(verdict["en"], verdict["zh"])
            if verdict["code"] in RETRY_SAME_CHALLENGE and verdict["attempts_left"] > 0:
                # The same request again (a one-time code stays the one sent); the page
                # shuffles the keypad anew.
                again = _pin_request_message(case, case.challenge, error=said)
                return _save(case, _progress(case, said), ("case.pin_request", again))
            _save(case, _progress(case, said))
            new_challenge = True
    if new_challenge:
        _pin_request_or_error(case.id)
        case.refresh_from_db()
    return case


def _reject(case: BusinessCase, code: str, en: str, zh: str) -> BusinessCase:
    _move(case, CaseStatus.REJECTED)
    _error(case, code, en, zh)
    _event(case, "rejected", code=code)
    return _save(case, _progress(case))


# --- 6. submission ---------------------------------------------------------------------------


def _submit(case: BusinessCase) -> BusinessCase:
    """Queue the operation at the core bank (inside the caller's transaction; it is sent after
    commit). The idempotency key is the case's: whatever repeats, one effect."""
    spec = _business(case)
    params = spec.core_params(case.params, case.customer, _identity_fields(case))
    if spec.new_pin:
        params["new_pin_challenge_id"] = case.new_pin_challenge_id
    try:
        submission = corebank.submission_create(
            business_case_id=case.id,
            operation=spec.operation,
            customer_ref=case.customer_ref,
            params=params,
            idempotency_key=case.idempotency_key,
            authorised_by=case.authorised_challenge_id,
        )
    except CoreBankError as exc:
        raise _core_error(exc) from exc
    _move(case, CaseStatus.SUBMITTED)
    case.submission_id = submission.id
    case.submitted_at = _now()
    _step(case, "submit", "current", words("Sent to the core bank.", "已提交核心系统。"))
    _event(case, "submitted", submission=str(submission.id), operation=spec.operation)
    return _save(case, _progress(case))


def _identity_fields(case: BusinessCase) -> dict[str, Any]:
    """The identity check's confirmed name and ID number (a corporate account's legal person)."""
    if not case.identity_check_id:
        return {}
    check = IdentityCheck.objects.filter(pk=case.identity_check_id).first()
    fields = check.fields if check else {}
    return {"name": fields.get("name", ""), "id_number": fields.get("id_number", "")}


def case_submission_result(*, submission_id: uuid.UUID) -> BusinessCase | None:
    """Listens to the core-bank client's ``events.SubmissionChanged``: the submission moved.
    Done → the case is done and its receipt issued; rejected → the core's words on both screens;
    waiting (outage) → the teller is told. Idempotent: a finished case stays as it is."""
    submission = Submission.objects.filter(pk=submission_id).first()
    if submission is None:
        return None
    with transaction.atomic():
        case = (
            BusinessCase.objects.select_for_update().filter(pk=submission.business_case_id).first()
        )
        if case is None or case.status in FINAL_STATUSES:
            return case
        submission.refresh_from_db()
        status = submission.status
        if status == SubmissionStatus.DONE:
            _move(case, CaseStatus.DONE)
            case.result = submission.result or {}
            case.done_at = _now()
            case.error = None
            _step(case, "submit", "done", words("Done at the core bank.", "核心系统处理成功。"))
            case.save()
            receipt = receipt_issue(case=case)
            code = receipt_links(receipt)["code"]
            _step(case, "receipt", "done", words(f"Code {code}.", f"验证码 {code}。"))
            _event(
                case,
                "done",
                submission=str(submission.id),
                attempts=submission.attempts,
                receipt=receipt.code,
            )
            message = selectors.receipt_message(case)
            assert message is not None  # the receipt was issued just above
            return _save(case, _progress(case), ("case.receipt", message))
        if status == SubmissionStatus.REJECTED:
            _step(case, "submit", "failed", words(submission.error_en, submission.error_zh))
            _event(case, "core_rejected", code=submission.error_code)
            return _reject(case, submission.error_code, submission.error_en, submission.error_zh)
        if status in (SubmissionStatus.WAITING_RETRY, SubmissionStatus.UNANSWERED):
            if case.status != CaseStatus.WAITING_RETRY:
                _move(case, CaseStatus.WAITING_RETRY)
            _error(case, submission.error_code, submission.error_en, submission.error_zh)
            _step(case, "submit", "current", words(submission.error_en, submission.error_zh))
            _event(
                case,
                "core_waiting",
                code=submission.error_code,
                attempts=submission.attempts,
            )
            return _save(case, _progress(case))
        if status == SubmissionStatus.SENDING and case.status == CaseStatus.WAITING_RETRY:
            _move(case, CaseStatus.SUBMITTED)
            case.error = None
            _step(case, "submit", "current", words("Sent again.", "正在重新提交。"))
            return _save(case, _progress(case))
    return case


def case_submission_retry(*, call_id: uuid.UUID, case_id: uuid.UUID, teller: User) -> BusinessCase:
    """The core has not answered for longer than the retry horizon: send it again (same key:
    safe)."""
    case = _teller_case(case_id, call_id, teller)
    if case.status != CaseStatus.WAITING_RETRY or case.submission_id is None:
        raise _not_now(case, CaseStatus.SUBMITTED)
    try:
        corebank.submission_retry(submission_id=case.submission_id)
    except CoreBankError as exc:
        raise _core_error(exc) from exc
    case.refresh_from_db()
    return case


# --- cancel, hang-up, reconnect ----------------------------------------------------------------


def case_cancel(*, call_id: uuid.UUID, case_id: uuid.UUID, teller: User) -> BusinessCase:
    """The teller cancels a business not yet submitted."""
    with transaction.atomic():
        case = _teller_case(case_id, call_id, teller, lock=True)
        _move(case, CaseStatus.CANCELLED)
        case.challenge_id, case.challenge = "", {}
        _event(case, "cancelled", actor=f"teller:{teller.pk}")
        return _save(case, _progress(case))


def call_cases_close(*, call_id: uuid.UUID) -> list[dict[str, Any]]:
    """At hang-up: businesses not yet submitted are cancelled (submitted ones finish on their
    own); the summary the teller sees is returned (``call.summary`` ``cases``)."""
    with transaction.atomic():
        for case in BusinessCase.objects.select_for_update().filter(call_id=call_id):
            if CaseStatus.CANCELLED in _business(case).transitions.get(case.status, ()):
                case.status = CaseStatus.CANCELLED
                case.challenge_id, case.challenge = "", {}
                _error(case, "call_ended", "The call ended first.", "通话已先结束。")
                _event(case, "cancelled", reason="call_ended")
                case.revision += 1
                case.save()
    return selectors.call_summary(call_id)


def case_customer_prompt(*, call_id: uuid.UUID) -> None:
    """The customer's page (re)connected: send again what each open business waits for from
    them (the agreement, the summary, a fresh keypad)."""
    for case in BusinessCase.objects.filter(call_id=call_id).exclude(status__in=FINAL_STATUSES):
        if case.status == CaseStatus.AGREEMENT_SENT:
            notify.forward_on_commit(
                notify.call_group(call_id), "case.agreement", **selectors.agreement_message(case)
            )
        elif case.status == CaseStatus.AGREEMENT_READ:
            notify.forward_on_commit(
                notify.call_group(call_id),
                "case.confirm_request",
                **selectors.confirm_message(case),
            )
        elif _awaited_method(case, _business(case)) is not None:
            _pin_request_or_error(case.id)
        else:
            notify.forward_on_commit(
                notify.call_group(call_id), "case.progress", **selectors.progress_message(case)
            )
