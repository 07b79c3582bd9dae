"""The national online ID check from our side: start, run over the channels, retry, cache.

A check starts ``pending`` and is answered by a Celery task (``tasks.national_check_task``):
each attempt asks the primary channel and fails over to the next when a channel does not answer;
when none answers the task retries with backoff, and after the last retry the check is
``unavailable`` with words for the teller, who may retry it (same request id, so the service
answers a question it already answered once). A pass is reused, marked ``from_cache``, for
low-risk two-factor checks of the same name and number within ``KYC_NATIONAL_CACHE_S``.

When a check reaches a final state it announces ``events.NationalCheckFinished`` (after commit);
the identity check listens (kyc/apps.py).
"""

from __future__ import annotations

import base64
import logging
import re
import unicodedata
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from PIL import Image

from kyc.errors import KycError, ServiceUnavailable
from kyc.idcard.numbers import id_number_check_char, id_number_clean, id_number_well_formed
from kyc.images import image_jpeg, image_load
from videobank import events
from videobank.keyring import KeyNotConfigured, SealBroken
from videobank.outside.once import created_once

from . import backends
from .backends import ChannelFailure, NationalIdAnswer, NationalIdQuery, QueryRejected
from .masking import id_number_mask, name_mask
from .models import BusinessRisk, CheckStatus, NationalCheck, Outcome
from .sealing import person_hashes, query_seal, query_unseal

log = logging.getLogger(__name__)

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
PORTRAIT_MAX_SIDE = 800  # what a registry comparison needs; keeps the request small

UNAVAILABLE_WORDS = (
    "The national ID service is not answering; try again.",
    "公民身份核查服务暂时没有响应，请重试。",
)


class NationalServiceDown(ServiceUnavailable):
    """No channel answered this attempt (transient: the task retries)."""

    code = "national_unavailable"


def _words(
    answer_result: str, *, mismatch_on: str | None, similarity: float | None
) -> tuple[str, str]:
    if answer_result == Outcome.PASS:
        return "The national ID check passed.", "公民身份核查通过。"
    if answer_result == Outcome.NOT_FOUND:
        return (
            "The national registry has no record of this ID number.",
            "公民身份信息库中没有这个身份证号码。",
        )
    if answer_result == Outcome.REVOKED:
        return "This ID number has been revoked.", "该身份证号码已注销。"
    if answer_result == Outcome.MISMATCH and mismatch_on == "portrait":
        score = f"{similarity:.2f}" if similarity is not None else "?"
        return (
            f"The face does not match the registry portrait (similarity {score}).",
            f"人像与登记照片不一致（相似度 {score}）。",
        )
    if answer_result == Outcome.MISMATCH:
        return "The name does not match the ID number.", "姓名与身份证号码不一致。"
    return "The national ID service refused the query.", "公民身份核查服务拒绝了本次查询。"


# --- inputs ------------------------------------------------------------------------------------
def _name_clean(name: object) -> str:
    text = name if isinstance(name, str) else ""
    text = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip()
    if not text:
        raise KycError("The name is missing.", detail_zh="缺少姓名。", code="bad_name")
    if len(text) > 50 or any(unicodedata.category(c) == "Cc" for c in text):
        raise KycError(
            "The name must be at most 50 printable characters.",
            detail_zh="姓名最多 50 个可打印字符。",
            code="bad_name",
        )
    return text


def _id_number_clean(id_number: object) -> str:
    number = id_number_clean(id_number) if isinstance(id_number, str) else ""
    if not id_number_well_formed(number):
        raise KycError(
            "The ID number must have 18 characters: 17 digits and a digit or X.",
            detail_zh="身份证号码应为 18 位：17 位数字加 1 位数字或 X。",
            code="bad_id_number",
        )
    if id_number_check_char(number[:17]) != number[17]:
        raise KycError(
            "The ID number's last character does not fit the others; a digit is probably wrong.",
            detail_zh="身份证号码校验位不符，可能有数字输错。",
            code="bad_id_number",
        )
    return number


def _portrait_prepare(portrait_jpeg: bytes) -> bytes:
    """Checked like any picture from outside (kyc.images), then shrunk for the wire."""
    image = image_load(portrait_jpeg)
    image.thumbnail((PORTRAIT_MAX_SIDE, PORTRAIT_MAX_SIDE), Image.Resampling.LANCZOS)
    return image_jpeg(image, quality=90)


def id_number_hash(id_number: str) -> str:
    """Keyed hash (HMAC-SHA256 under KYC_NATIONAL_KEYS) for matching without the number."""
    return person_hashes("id_number", id_number)[0]


def _cache_s() -> float:
    return float(getattr(settings, "KYC_NATIONAL_CACHE_S", 600))


# --- start -------------------------------------------------------------------------------------
def national_check_start(
    *,
    name: str,
    id_number: str,
    portrait_jpeg: bytes | None,
    business_risk: str,
    call_id: uuid.UUID | None = None,
    request_id: str | None = None,
) -> NationalCheck:
    """Ask the national check about a person: two factors (name + number) or three (+ portrait).

    Returns a pending check whose task is queued on commit, or — low-risk two-factor only — a
    passed check ``from_cache``. Starting again with the same ``request_id`` returns the same
    check. KycError / BadImage (in words) when an input is not usable."""
    name = _name_clean(name)
    number = _id_number_clean(id_number)
    if business_risk not in BusinessRisk.values:
        raise KycError(
            f"business_risk must be one of {', '.join(BusinessRisk.values)}.",
            detail_zh="业务风险等级无效。",
            code="bad_risk",
        )
    if request_id is not None and (
        not isinstance(request_id, str) or not REQUEST_ID_RE.match(request_id)
    ):
        raise KycError(
            "request_id must be 1-64 letters, digits or . _ : -",
            detail_zh="请求编号格式无效。",
            code="bad_request_id",
        )
    portrait = _portrait_prepare(portrait_jpeg) if portrait_jpeg is not None else None
    factors = 3 if portrait is not None else 2
    person = _Person(name=name, number=number)
    check_id = uuid.uuid4()

    def create() -> NationalCheck:
        if business_risk == BusinessRisk.LOW and factors == 2:
            source = _cached_pass(person)
            if source is not None:
                return _from_cache(
                    source,
                    call_id=call_id,
                    business_risk=business_risk,
                    request_id=request_id or check_id.hex,
                )
        check = NationalCheck.objects.create(
            id=check_id,
            call_id=call_id,
            request_id=request_id or check_id.hex,
            name_masked=name_mask(name),
            name_hash=person.name_hashes[0],
            id_number_masked=id_number_mask(number),
            id_number_hash=person.number_hashes[0],
            factors=factors,
            business_risk=business_risk,
            sealed_query=query_seal(
                check_id=check_id,
                query={
                    "name": name,
                    "id_number": number,
                    "portrait_jpeg_b64": base64.b64encode(portrait).decode()
                    if portrait is not None
                    else None,
                },
            ),
        )
        transaction.on_commit(lambda: _dispatch(check.id))
        log.info(
            "national check %s started: %s %s, %d-factor, %s risk",
            check.id,
            name_mask(name),
            id_number_mask(number),
            factors,
            business_risk,
        )
        return check

    # The same request id again (or started at the same moment elsewhere): the same check.
    return created_once(
        existing=lambda: (
            NationalCheck.objects.filter(request_id=request_id).first() if request_id else None
        ),
        same=lambda existing: _same_question(existing, person),
        create=create,
    )


class _Person:
    """A name and an ID number as the checks keep them: keyed hashes under every listed key."""

    def __init__(self, *, name: str, number: str) -> None:
        self.name_hashes = person_hashes("name", name)
        self.number_hashes = person_hashes("id_number", number)


def _same_question(existing: NationalCheck, person: _Person) -> NationalCheck:
    if (
        existing.name_hash not in person.name_hashes
        or existing.id_number_hash not in person.number_hashes
    ):
        raise KycError(
            "This request id was already used for another person.",
            detail_zh="该请求编号已用于另一个人。",
            code="request_id_reused",
        )
    return existing


def _cached_pass(person: _Person) -> NationalCheck | None:
    """The newest live (not itself cached) pass of this name and number still in its window."""
    return (
        NationalCheck.objects.filter(
            id_number_hash__in=person.number_hashes,
            name_hash__in=person.name_hashes,
            status=CheckStatus.PASSED,
            from_cache=False,
            expires_at__gt=timezone.now(),
        )
        .order_by("-finished_at")
        .first()
    )


def _from_cache(
    source: NationalCheck, *, call_id: uuid.UUID | None, business_risk: str, request_id: str
) -> NationalCheck:
    now = timezone.now()
    check = NationalCheck.objects.create(
        call_id=call_id,
        request_id=request_id,
        name_masked=source.name_masked,
        name_hash=source.name_hash,
        id_number_masked=source.id_number_masked,
        id_number_hash=source.id_number_hash,
        factors=2,
        business_risk=business_risk,
        status=CheckStatus.PASSED,
        outcome=Outcome.PASS,
        channel=source.channel,
        detail="The national ID check passed (a recent result, reused).",
        detail_zh="公民身份核查通过（沿用近期核查结果）。",
        from_cache=True,
        cache_source=source.id,
        finished_at=now,
        expires_at=source.expires_at,
    )
    events.emit(events.NationalCheckFinished(check_id=check.id))
    log.info("national check %s: pass reused from %s", check.id, source.id)
    return check


def _dispatch(check_id: uuid.UUID) -> None:
    # tasks.py runs this module's services: the task is looked up when it is sent.
    from .tasks import national_check_enqueue

    national_check_enqueue(check_id=check_id)


# --- run ---------------------------------------------------------------------------------------
def national_check_run(*, check_id: uuid.UUID) -> NationalCheck:
    """One attempt: ask each channel in turn until one answers, and record the answer.

    A finished check is returned unchanged. NationalServiceDown when no channel answered (the
    attempt is counted and the reasons kept in ``last_error``). No transaction is held while
    the service is asked: on SQLite the service may be writing to the same database."""
    check = NationalCheck.objects.get(pk=check_id)
    if check.status != CheckStatus.PENDING:
        return check
    if not check.sealed_query:
        return national_check_give_up(check_id=check_id, reason="the query is no longer held")
    try:
        sealed = query_unseal(check_id=check.id, sealed=check.sealed_query)
    except (KeyNotConfigured, SealBroken) as exc:
        # Its key was dropped from KYC_NATIONAL_KEYS too soon (or the row was altered): the
        # question cannot be asked; the teller is told and may start a new check.
        log.error("national check %s: the sealed query does not open: %s", check.id, exc)
        NationalCheck.objects.filter(pk=check_id).update(sealed_query=b"")
        return national_check_give_up(check_id=check_id, reason=f"the query does not open: {exc}")
    portrait = sealed.get("portrait_jpeg_b64")
    query = NationalIdQuery(
        request_id=check.request_id,
        name=sealed["name"],
        id_number=sealed["id_number"],
        portrait_jpeg=base64.b64decode(portrait) if portrait else None,
    )
    backend = backends.national_backend()
    failures: list[str] = []
    for channel in backend.channels:
        try:
            answer = backend.verify(channel=channel, query=query)
        except ChannelFailure as exc:
            failures.append(f"{channel}: {exc}")
            log.warning("national check %s: channel %s: %s", check.id, channel, exc)
            continue
        except QueryRejected as exc:
            return _finish(check_id, channel=channel, failures=failures, rejected=exc.detail)
        return _finish(check_id, channel=channel, failures=failures, answer=answer)
    with transaction.atomic():
        check = NationalCheck.objects.select_for_update().get(pk=check_id)
        check.attempts += 1
        check.last_error = "; ".join(failures) or "no channel configured"
        check.save(update_fields=["attempts", "last_error", "updated_at"])
    raise NationalServiceDown(
        f"no channel of the national ID service answered ({check.last_error})",
        detail_zh=UNAVAILABLE_WORDS[1],
    )


def _finish(
    check_id: uuid.UUID,
    *,
    channel: str,
    failures: list[str],
    answer: NationalIdAnswer | None = None,
    rejected: str | None = None,
) -> NationalCheck:
    with transaction.atomic():
        check = NationalCheck.objects.select_for_update().get(pk=check_id)
        if check.status != CheckStatus.PENDING:
            return check  # another delivery of the task got there first
        now = timezone.now()
        if answer is not None:
            check.outcome = answer.result
            check.mismatch_on = answer.mismatch_on or ""
            check.similarity = answer.similarity
            check.detail, check.detail_zh = _words(
                answer.result, mismatch_on=answer.mismatch_on, similarity=answer.similarity
            )
        else:
            check.outcome = Outcome.REJECTED
            en, zh = _words(Outcome.REJECTED, mismatch_on=None, similarity=None)
            check.detail, check.detail_zh = f"{en} ({rejected})", f"{zh}（{rejected}）"
        passed = check.outcome == Outcome.PASS
        check.status = CheckStatus.PASSED if passed else CheckStatus.FAILED
        check.channel = channel
        check.attempts += 1
        check.last_error = "; ".join(failures)
        check.finished_at = now
        check.expires_at = now + timedelta(seconds=_cache_s()) if passed else None
        check.sealed_query = b""
        check.save()
        events.emit(events.NationalCheckFinished(check_id=check_id))
    log.info(
        "national check %s: %s via %s after %d attempt(s)%s",
        check.id,
        check.outcome,
        channel,
        check.attempts,
        f" (failed over: {check.last_error})" if failures else "",
    )
    return check


def national_check_give_up(*, check_id: uuid.UUID, reason: str = "") -> NationalCheck:
    """No answer after the last retry: ``unavailable``, with words and a way to retry."""
    with transaction.atomic():
        check = NationalCheck.objects.select_for_update().get(pk=check_id)
        if check.status != CheckStatus.PENDING:
            return check
        check.status = CheckStatus.UNAVAILABLE
        check.detail, check.detail_zh = UNAVAILABLE_WORDS
        if reason:
            check.last_error = f"{check.last_error}; {reason}" if check.last_error else reason
        check.finished_at = timezone.now()
        check.save()
        events.emit(events.NationalCheckFinished(check_id=check_id))
    log.warning(
        "national check %s unavailable after %d attempt(s): %s",
        check.id,
        check.attempts,
        check.last_error,
    )
    return check


def _series_budget_s() -> float:
    """The longest one attempt series can take: a pending check older than this is stuck."""
    retries = int(getattr(settings, "KYC_NATIONAL_MAX_RETRIES", 3))
    backoff = float(getattr(settings, "KYC_NATIONAL_RETRY_BACKOFF_S", 0.5))
    timeout = float(getattr(settings, "KYC_NATIONAL_TIMEOUT_S", 2.0))
    channels = len(getattr(settings, "KYC_NATIONAL_CHANNELS", None) or (1, 2))
    return float((retries + 1) * channels * timeout + backoff * (2**retries - 1) + 30.0)


def national_check_retry(*, check_id: uuid.UUID) -> NationalCheck:
    """The teller asks again after ``unavailable`` (or a check stuck pending): a new attempt
    series with the same request id. A check already running is returned as it is."""
    with transaction.atomic():
        check = NationalCheck.objects.select_for_update().get(pk=check_id)
        if check.status == CheckStatus.PENDING:
            age = (timezone.now() - check.updated_at).total_seconds()
            if age < _series_budget_s():
                return check
        elif check.status != CheckStatus.UNAVAILABLE:
            raise KycError(
                "This check already has an answer; start a new check to ask again.",
                detail_zh="本次核查已有结果；如需再次核查请重新发起。",
                code="not_retryable",
            )
        if not check.sealed_query:
            raise KycError(
                "This check can no longer be retried; start a new check.",
                detail_zh="本次核查无法重试，请重新发起核查。",
                code="not_retryable",
            )
        check.status = CheckStatus.PENDING
        check.series += 1
        check.detail = check.detail_zh = ""
        check.finished_at = None
        check.save()
        transaction.on_commit(lambda: _dispatch(check_id))
    log.info("national check %s: retry, series %d", check.id, check.series)
    return check
