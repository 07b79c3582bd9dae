"""The bank's core system from our side: customer lookup, PIN challenges, and submissions.

A submission is one business operation under an idempotency key. It starts ``queued``; its
task (``tasks.submission_send_task``) sends it: ``sending`` → ``done`` (the core's result) or
``rejected`` (a business error in words). When the core does not answer it waits
(``waiting_retry``, the teller is told) and is sent again with the same key — so an outage, a
lost answer, a double click or a repeated message all end in exactly one effect in the core.
After the retry horizon (``conf.retry_horizon_s``) it is ``unanswered``; ``submission_retry``
sends it again, still safely.

Every status change announces ``events.SubmissionChanged`` (after commit); the business case
listens (workflows/apps.py).

The PIN never passes through here in clear: the customer's browser encrypts it for the core's
public key (``corebank_pin_challenge``), and we forward the ciphertext once
(``corebank_pin_verify``) without keeping it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import uuid
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from kyc.idcard.numbers import id_number_checksum_ok, id_number_clean
from videobank import events
from videobank.outside.once import created_once

from .backends import OperationAnswer, corebank_backend
from .conf import timeout_s
from .errors import CoreBankError, CoreBankUnavailable, IdempotencyConflict
from .masking import id_number_mask
from .models import FINAL_STATUSES, Submission, SubmissionStatus

log = logging.getLogger(__name__)

OPERATIONS = (
    "password_reset",
    "card_loss_report",
    "card_loss_cancel",
    "dormant_activate",
    "mobile_change",
    "details_update",
    "time_deposit_open",
    "transfer",
    "risk_assessment_save",
    "corporate_account_open",
)
KEY_RE = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")
CUSTOMER_REF_RE = re.compile(r"^[A-Z0-9]{4,20}$")
CHALLENGE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
PURPOSE_RE = re.compile(r"^[a-z0-9_]{1,40}$")
MAX_PARAMS_BYTES = 16 * 1024
MAX_CIPHERTEXT_CHARS = 1400

WAITING_WORDS = (
    "The core banking system is not answering; the business is queued and will be sent again "
    "automatically.",
    "核心系统暂时没有响应，业务已排队，将自动重新提交。",
)
UNANSWERED_WORDS = (
    "The core banking system has not answered for a long time; retry the submission (it is "
    "safe: it cannot be carried out twice).",
    "核心系统长时间未响应，请重新提交（不会重复办理）。",
)


class SubmissionDeferred(CoreBankUnavailable):
    """This attempt got no answer; the submission waits for its next try."""


def _bad(detail: str, zh: str, code: str = "bad_request") -> CoreBankError:
    return CoreBankError(detail, detail_zh=zh, code=code)


# --- customers and PINs ------------------------------------------------------------------------
def corebank_customer_lookup(*, id_number: str) -> dict[str, Any] | None:
    """The bank's customer with this ID number — accounts (number, kind, currency, balance,
    status incl. dormant), cards (masked number + token, status), reserved mobile (masked),
    limits (per transaction, daily, used today) — or None if the bank has none.
    CoreBankUnavailable (in words) when the core does not answer."""
    number = id_number_clean(id_number) if isinstance(id_number, str) else ""
    if not id_number_checksum_ok(number):
        raise _bad(
            "The ID number must have 18 characters with a valid check character.",
            "身份证号码应为 18 位且校验位正确。",
            "bad_id_number",
        )
    try:
        customer = corebank_backend().customer_lookup(id_number=number)
    except CoreBankUnavailable as exc:
        log.warning("core bank: lookup %s: %s", id_number_mask(number), exc.reason)
        raise
    log.info(
        "core bank: lookup %s -> %s",
        id_number_mask(number),
        customer["customer_ref"] if customer else "not a customer",
    )
    return customer


def corebank_pin_challenge(
    *, customer_ref: str, purpose: str, method: str | None = None
) -> dict[str, Any]:
    """A one-use request for the customer's PIN (or a one-time code sent to their reserved
    mobile, or a new PIN): ``{challenge_id, public_key_spki_b64, nonce, method, purpose,
    expires_at}`` (+ ``mobile_masked`` for a code). The browser encrypts the UTF-8 JSON
    ``{"pin": "123456", "nonce": nonce}`` with RSA-OAEP-SHA-256 for that key.

    ``method``: ``pin`` | ``otp`` | ``new_pin``; by default ``otp`` for purpose
    ``password_reset``, ``new_pin`` for purpose ``new_pin``, else ``pin``. CoreBankError in words
    when the core refuses (``pin_locked``, ``no_pin``, ``otp_too_many``...)."""
    if not isinstance(customer_ref, str) or not CUSTOMER_REF_RE.match(customer_ref):
        raise _bad("The customer reference is malformed.", "客户号格式错误。")
    if not isinstance(purpose, str) or not PURPOSE_RE.match(purpose):
        raise _bad("The purpose must be 1-40 of a-z, 0-9, _.", "用途格式错误。")
    if method not in (None, "pin", "otp", "new_pin"):
        raise _bad("The method must be pin, otp or new_pin.", "验证方式应为 pin、otp 或 new_pin。")
    challenge = corebank_backend().pin_challenge(
        customer_ref=customer_ref, purpose=purpose, method=method
    )
    log.info(
        "core bank: %s challenge %s for %s (%s)",
        challenge.get("method"),
        challenge.get("challenge_id"),
        customer_ref,
        purpose,
    )
    return challenge


def corebank_pin_verify(*, challenge_id: str, ciphertext_b64: str) -> dict[str, Any]:
    """Forward the customer's encrypted entry to the core, once (a challenge is spent by a right
    answer; a lost reply means asking for a new challenge): ``{ok, attempts_left, locked, code,
    en, zh, method, purpose, customer_ref}``. Codes: ok, wrong_pin, pin_locked, wrong_otp,
    otp_exhausted, replayed, expired, undecryptable, bad_format, weak_pin (new PIN),
    unknown_challenge. The ciphertext is not kept or logged."""
    if not isinstance(challenge_id, str) or not CHALLENGE_ID_RE.match(challenge_id):
        raise _bad("The PIN request id is malformed.", "密码输入请求编号格式错误。")
    if (
        not isinstance(ciphertext_b64, str)
        or not 16 <= len(ciphertext_b64) <= MAX_CIPHERTEXT_CHARS
        or not _is_base64(ciphertext_b64)
    ):
        raise _bad("The encrypted entry is malformed.", "加密输入格式错误。")
    verdict = corebank_backend().pin_verify(
        challenge_id=challenge_id, ciphertext_b64=ciphertext_b64
    )
    log.info(
        "core bank: challenge %s -> %s (attempts left %s%s)",
        challenge_id,
        verdict.get("code"),
        verdict.get("attempts_left"),
        ", locked" if verdict.get("locked") else "",
    )
    return {
        "ok": bool(verdict.get("ok")),
        "attempts_left": int(verdict.get("attempts_left") or 0),
        "locked": bool(verdict.get("locked")),
        "code": str(verdict.get("code") or ""),
        "en": str(verdict.get("en") or ""),
        "zh": str(verdict.get("zh") or ""),
        "method": str(verdict.get("method") or ""),
        "purpose": str(verdict.get("purpose") or ""),
        "customer_ref": str(verdict.get("customer_ref") or ""),
    }


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


# --- submissions -------------------------------------------------------------------------------
def _fingerprint(
    *,
    business_case_id: uuid.UUID,
    operation: str,
    customer_ref: str,
    params: dict[str, Any],
    auth: str,
) -> str:
    canonical = json.dumps(
        [str(business_case_id), operation, customer_ref, params, auth],
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def submission_create(
    *,
    business_case_id: uuid.UUID,
    operation: str,
    customer_ref: str,
    params: dict[str, Any],
    idempotency_key: str,
    authorised_by: str = "",
) -> Submission:
    """Queue an operation for the core under ``idempotency_key``; it is sent after commit.

    The same key with the same submission returns the same row (nothing is sent twice); the same
    key with anything else raises IdempotencyConflict (in words). ``authorised_by``: the id of
    the PIN/OTP challenge the customer passed, which the core spends on this operation."""
    if operation not in OPERATIONS:
        raise _bad(f"Unknown core-bank operation {operation!r}.", "未知的核心业务操作。")
    if not isinstance(idempotency_key, str) or not KEY_RE.match(idempotency_key):
        raise _bad(
            "The idempotency key must be 8-64 letters, digits or . _ : -",
            "幂等键应为 8-64 位字母、数字或 . _ : -。",
        )
    if not isinstance(customer_ref, str) or not CUSTOMER_REF_RE.match(customer_ref):
        raise _bad("The customer reference is malformed.", "客户号格式错误。")
    if not isinstance(params, dict):
        raise _bad("The parameters must be a mapping.", "业务参数格式错误。")
    try:
        size = len(json.dumps(params, ensure_ascii=False).encode())
    except (TypeError, ValueError) as exc:
        raise _bad("The parameters must be plain JSON values.", "业务参数格式错误。") from exc
    if size > MAX_PARAMS_BYTES:
        raise _bad("The parameters are too large.", "业务参数过大。")
    if authorised_by and not CHALLENGE_ID_RE.match(authorised_by):
        raise _bad("The authorisation id is malformed.", "授权编号格式错误。")
    case_id = uuid.UUID(str(business_case_id))
    fingerprint = _fingerprint(
        business_case_id=case_id,
        operation=operation,
        customer_ref=customer_ref,
        params=params,
        auth=authorised_by,
    )

    def create() -> Submission:
        submission = Submission.objects.create(
            business_case_id=case_id,
            operation=operation,
            customer_ref=customer_ref,
            params=params,
            authorised_by=authorised_by,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
        )
        # robust: a broker that is down must not fail the caller after its commit; the
        # submission stays queued and submissions_resume sends it later.
        transaction.on_commit(lambda: _dispatch(submission.id), robust=True)
        log.info(
            "core bank: submission %s queued: %s %s for %s",
            submission.id,
            operation,
            idempotency_key,
            customer_ref,
        )
        return submission

    # The same key again (or created at the same moment in another process): the same row.
    return created_once(
        existing=lambda: Submission.objects.filter(idempotency_key=idempotency_key).first(),
        same=lambda existing: _same_submission(existing, fingerprint),
        create=create,
    )


def _same_submission(existing: Submission, fingerprint: str) -> Submission:
    if existing.fingerprint != fingerprint:
        raise IdempotencyConflict(
            "This submission key was already used for a different business; nothing was sent.",
            detail_zh="该提交编号已用于另一笔业务，本次未提交。",
        )
    log.info("core bank: submission %s asked again (%s)", existing.id, existing.status)
    return existing


def _dispatch(submission_id: uuid.UUID) -> None:
    # tasks.py runs this module's services: the task is looked up when it is sent.
    from .tasks import submission_enqueue

    submission_enqueue(submission_id=submission_id)


def _attempt_budget() -> timedelta:
    """An attempt older than this is taken for dead (its process died mid-request)."""
    return timedelta(seconds=2 * timeout_s() + 30)


def _set_status(submission: Submission, status: str) -> None:
    if submission.status != status:
        submission.status = status
        events.emit(events.SubmissionChanged(submission_id=submission.id))


def submission_attempt(*, submission_id: uuid.UUID) -> Submission:
    """Send the submission once. A finished one, or one with an attempt in flight elsewhere, is
    returned as it is. SubmissionDeferred when the core did not answer (the submission is
    ``waiting_retry``). No transaction is held while the core is asked: on SQLite the core's
    stub may be writing to the same database."""
    now = timezone.now()
    with transaction.atomic():
        submission = Submission.objects.select_for_update().get(pk=submission_id)
        if submission.status in FINAL_STATUSES:
            return submission
        started = submission.attempt_started_at
        if started is not None and now - started < _attempt_budget():
            return submission  # another delivery of the task is sending it right now
        if submission.status in (SubmissionStatus.QUEUED, SubmissionStatus.UNANSWERED):
            _set_status(submission, SubmissionStatus.SENDING)
        submission.attempts += 1
        submission.attempt_started_at = now
        submission.next_attempt_at = None
        submission.save()
    try:
        answer = corebank_backend().operation(
            operation=submission.operation,
            idempotency_key=submission.idempotency_key,
            customer_ref=submission.customer_ref,
            params=submission.params,
            authorised_by=submission.authorised_by,
        )
    except IdempotencyConflict as exc:
        # Only a bug can get here (keys are ours and unique); the core carried out nothing.
        answer = OperationAnswer(
            status="rejected", error_code=exc.code, en=exc.detail, zh=exc.detail_zh
        )
    except CoreBankUnavailable as exc:
        with transaction.atomic():
            submission = Submission.objects.select_for_update().get(pk=submission_id)
            if submission.status not in FINAL_STATUSES:
                _set_status(submission, SubmissionStatus.WAITING_RETRY)
                submission.error_code = "corebank_unavailable"
                submission.error_en, submission.error_zh = WAITING_WORDS
                submission.last_error = exc.reason
                submission.attempt_started_at = None
                submission.save()
        log.warning(
            "core bank: submission %s attempt %d: %s",
            submission.id,
            submission.attempts,
            exc.reason,
        )
        raise SubmissionDeferred(exc.reason) from exc
    return _finish(submission_id, answer)


def _finish(submission_id: uuid.UUID, answer: OperationAnswer) -> Submission:
    with transaction.atomic():
        submission = Submission.objects.select_for_update().get(pk=submission_id)
        if submission.status in FINAL_STATUSES:
            return submission
        done = answer.status == "done"
        _set_status(submission, SubmissionStatus.DONE if done else SubmissionStatus.REJECTED)
        submission.result = answer.result if done else None
        submission.error_code = "" if done else answer.error_code
        submission.error_en = "" if done else answer.en[:300]
        submission.error_zh = "" if done else answer.zh[:300]
        submission.replayed = answer.replayed
        submission.attempt_started_at = None
        submission.next_attempt_at = None
        submission.finished_at = timezone.now()
        submission.save()
    log.info(
        "core bank: submission %s %s -> %s after %d attempt(s)%s",
        submission.id,
        submission.operation,
        submission.status if done else f"rejected ({submission.error_code})",
        submission.attempts,
        " (the core's replay)" if answer.replayed else "",
    )
    return submission


def submission_wait_until(*, submission_id: uuid.UUID, seconds: float) -> None:
    """Record when the next attempt is due (for the teller, and for ``submissions_resume``)."""
    Submission.objects.filter(pk=submission_id).exclude(status__in=FINAL_STATUSES).update(
        next_attempt_at=timezone.now() + timedelta(seconds=seconds)
    )


def submission_give_up(*, submission_id: uuid.UUID, reason: str = "") -> Submission:
    """No answer within the retry horizon: ``unanswered``, with words and a way to retry."""
    with transaction.atomic():
        submission = Submission.objects.select_for_update().get(pk=submission_id)
        if submission.status in FINAL_STATUSES:
            return submission
        _set_status(submission, SubmissionStatus.UNANSWERED)
        submission.error_code = "corebank_unanswered"
        submission.error_en, submission.error_zh = UNANSWERED_WORDS
        if reason:
            submission.last_error = (
                f"{submission.last_error}; {reason}" if submission.last_error else reason
            )
        submission.attempt_started_at = None
        submission.next_attempt_at = None
        submission.save()
    log.warning(
        "core bank: submission %s unanswered after %d attempt(s): %s",
        submission.id,
        submission.attempts,
        submission.last_error,
    )
    return submission


def submission_retry(*, submission_id: uuid.UUID) -> Submission:
    """Send an ``unanswered`` submission again (same idempotency key: safe). A finished one
    raises CoreBankError; one already queued or waiting is returned as it is."""
    with transaction.atomic():
        submission = Submission.objects.select_for_update().get(pk=submission_id)
        if submission.status in FINAL_STATUSES:
            raise CoreBankError(
                "This submission already has the core bank's answer.",
                detail_zh="该业务已有核心系统的结果。",
                code="not_retryable",
            )
        if submission.status != SubmissionStatus.UNANSWERED:
            return submission
        _set_status(submission, SubmissionStatus.WAITING_RETRY)
        submission.save()
        transaction.on_commit(lambda: _dispatch(submission.id), robust=True)
    log.info("core bank: submission %s: retry asked", submission.id)
    return submission


def submissions_resume() -> list[uuid.UUID]:
    """Send again what was left behind when a process stopped (the embedded profile's retries
    live in a thread): submissions queued or waiting whose next attempt is due, with no attempt
    in flight. Call at start-up or now and then; sending twice is safe."""
    now = timezone.now()
    stale = now - _attempt_budget()
    due = (
        Submission.objects.filter(
            status__in=(
                SubmissionStatus.QUEUED,
                SubmissionStatus.SENDING,
                SubmissionStatus.WAITING_RETRY,
            ),
            updated_at__lt=stale,
        )
        .exclude(attempt_started_at__gte=stale)
        .exclude(next_attempt_at__gt=now)
    )
    ids = list(due.values_list("id", flat=True))
    for submission_id in ids:
        _dispatch(submission_id)
    if ids:
        log.info("core bank: %d submission(s) resumed", len(ids))
    return ids
