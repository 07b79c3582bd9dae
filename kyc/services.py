"""The identity check inside a call: each move is one service that checks the current state.

Flow (the teller drives it from the KYC panel, the customer answers on their page):

1. ``identity_check_start`` — once per call: the customer is asked for consent.
2. ``identity_consent`` — the customer accepts (timestamp, IP, geolocation if granted).
3. ``identity_capture_request`` — the media worker grabs the card from the customer's live video
   (``identity_frames_received``), or the customer uploads a photo (``identity_upload``), or the
   kiosk's card reader sends the chip (``identity_chip_read``).
4. Analysis runs as a background task (``kyc.tasks``): OCR of each side, the card portrait.
5. ``identity_fields_confirm`` — the teller looks at the fields (name and address have no
   checksum) and corrects them; corrections are audited; the national ID check starts.
6. ``identity_face_match_request`` and ``identity_liveness_request`` — frames sampled by the
   server at random moments / during a random challenge.
7. When every step has passed the check is ``passed`` with an expiry; the call's businesses
   reuse it (``identity_for_call``).

Every change reaches the teller's panel (``kyc.state``) and the customer's page (``kyc.progress``,
no personal data) after commit.
"""

from __future__ import annotations

import hashlib
import logging
import random
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from queueing import notify
from queueing.errors import Conflict, Forbidden, NotFound
from queueing.models import Call, CallStatus
from queueing.services import call_event_record, call_priority_claim_settle
from recordings.crypto import open_sealed, seal
from recordings.selectors import recording_for_call
from recordings.services import recording_data_key

from . import selectors
from .errors import KycError
from .images import image_jpeg, image_load
from .models import (
    STEP_ORDER,
    CheckStatus,
    EvidenceKind,
    IdentityCheck,
    IdentityEvidence,
    Level,
    Step,
    StepStatus,
)

log = logging.getLogger(__name__)

# What each grab asks the media worker for (see signaling/media/worker.py ``media.grab``).
CARD_GRAB = {"count": 3, "spread_ms": 600}  # the sharpest of three frames is read
CAPTURE_PURPOSES = {"front": Step.CARD_FRONT, "back": Step.CARD_BACK}

STEP_TEXT = {
    Step.CONSENT: ("Consent", "授权同意"),
    Step.CARD_FRONT: ("ID card, front", "身份证人像面"),
    Step.CARD_BACK: ("ID card, back", "身份证国徽面"),
    Step.FIELDS: ("Fields checked by the teller", "柜员核对信息"),
    Step.FACE_MATCH: ("Face match", "人脸比对"),
    Step.LIVENESS: ("Liveness", "活体检测"),
    Step.NATIONAL: ("National ID check", "公安联网核查"),
}


def mask_id_number(number: str) -> str:
    """``110101********1234``: enough for a person to recognise, not to reuse."""
    if not number or len(number) < 10:
        return "*" * len(number or "")
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


# --- state helpers ---------------------------------------------------------------------------


def _now() -> datetime:
    return timezone.now()


def _step_set(
    check: IdentityCheck,
    step: str,
    status: str,
    *,
    detail: str = "",
    detail_zh: str = "",
    **data,
) -> None:
    entry = {
        "status": status,
        "detail": detail,
        "detail_zh": detail_zh or detail,
        "at": _now().isoformat(),
    }
    entry.update(data)
    check.steps = {**check.steps, step: entry}


def _step_status(check: IdentityCheck, step: str) -> str:
    return check.steps.get(step, {}).get("status", StepStatus.PENDING)


def _locked_check(check_id: uuid.UUID) -> IdentityCheck:
    check = IdentityCheck.objects.select_for_update().filter(pk=check_id).first()
    if check is None:
        raise NotFound("No such identity check.")
    return check


def _check_for_teller(*, call_id: uuid.UUID, teller) -> IdentityCheck:
    """The call's current identity check, locked, if this teller holds the call."""
    call = Call.objects.filter(pk=call_id).first()
    if call is None or call.teller_id != teller.pk or call.status != CallStatus.CONNECTED:
        raise Forbidden("This call is not connected to you.")
    check = (
        IdentityCheck.objects.select_for_update()
        .filter(call_id=call_id)
        .order_by("-created_at")
        .first()
    )
    if check is None:
        raise Conflict("Start the identity check first.")
    return check


def _require_consent(check: IdentityCheck) -> None:
    if check.status == CheckStatus.CONSENT_PENDING:
        raise Conflict("The customer has not given consent yet.")
    if check.status == CheckStatus.REFUSED:
        raise Conflict("The customer refused the identity check.")


def _publish(check: IdentityCheck, *, step: str | None = None) -> None:
    """After commit: the panel to the teller's consoles, progress words to the call."""
    call = Call.objects.only("id", "teller_id").get(pk=check.call_id)
    if call.teller_id:
        notify.forward_on_commit(
            notify.teller_group(call.teller_id),
            "kyc.state",
            call_id=str(call.id),
            check=selectors.identity_panel(check),
        )
    notify.forward_on_commit(
        notify.call_group(call.id),
        "kyc.progress",
        call_id=str(call.id),
        **selectors.identity_progress(check, step=step),
    )


def _evaluate(check: IdentityCheck) -> None:
    """Passed when every step has; the level says what was proven."""
    if check.status != CheckStatus.IN_PROGRESS:
        return
    if all(_step_status(check, s) == StepStatus.PASSED for s in STEP_ORDER):
        now = _now()
        national = check.steps.get(Step.NATIONAL, {})
        check.status = CheckStatus.PASSED
        check.level = Level.THREE_FACTOR_FACE if national.get("factors") == 3 else Level.TWO_FACTOR
        check.passed_at = now
        check.expires_at = now + timedelta(seconds=settings.KYC_RESULT_TTL_S)
        call_event_record(
            call_id=check.call_id,
            kind="kyc_result",
            data={
                "status": "passed",
                "level": check.level,
                "expires_at": check.expires_at.isoformat(),
            },
        )


def _save(check: IdentityCheck, *, step: str | None = None) -> IdentityCheck:
    _evaluate(check)
    check.save()
    _publish(check, step=step)
    return check


# --- start and consent ----------------------------------------------------------------------


def identity_check_start(*, call_id: uuid.UUID, teller) -> IdentityCheck:
    """Once per call: returns the call's check if there is a usable one, otherwise starts one
    and asks the customer for consent."""
    with transaction.atomic():
        call = Call.objects.select_for_update().filter(pk=call_id).first()
        if call is None or call.teller_id != teller.pk or call.status != CallStatus.CONNECTED:
            raise Forbidden("This call is not connected to you.")
        current = IdentityCheck.objects.filter(call_id=call_id).order_by("-created_at").first()
        usable = current is not None and current.status != CheckStatus.REFUSED
        if usable and current.status == CheckStatus.PASSED and current.expires_at <= _now():
            usable = False
        if usable:
            _publish(current)
            if current.status == CheckStatus.CONSENT_PENDING:
                _ask_consent(call)
            return current
        check = IdentityCheck.objects.create(
            call=call, steps={s: {"status": StepStatus.PENDING} for s in STEP_ORDER}
        )
        call_event_record(
            call_id=call.id, kind="kyc_consent", actor=f"teller:{teller.pk}", data={"asked": True}
        )
        _ask_consent(call)
        _publish(check, step=Step.CONSENT)
    return check


def _ask_consent(call: Call) -> None:
    notify.forward_on_commit(
        notify.call_group(call.id),
        "kyc.consent_request",
        call_id=str(call.id),
        text={
            "en": "To act for you, the teller needs to verify your identity: your ID card, your "
            "face on video and the national ID check. Pictures are kept with the call's "
            "encrypted recording.",
            "zh": "为了为您办理业务，柜员需要核验您的身份：身份证、视频中的人脸以及公安联网核查。"
            "相关图像将随本次通话的加密录像一并保存。",
        },
    )


def identity_consent(
    *,
    call_id: uuid.UUID,
    accepted: bool,
    geolocation: dict | None = None,
    ip: str | None = None,
) -> IdentityCheck:
    """The customer's answer to the consent request; recorded with time, IP and place."""
    with transaction.atomic():
        check = (
            IdentityCheck.objects.select_for_update()
            .filter(call_id=call_id)
            .order_by("-created_at")
            .first()
        )
        if check is None or check.status != CheckStatus.CONSENT_PENDING:
            raise Conflict("There is no identity check waiting for your consent.")
        now = _now()
        check.consent_at = now
        check.consent_ip = ip
        check.geolocation = geolocation
        if accepted:
            check.status = CheckStatus.IN_PROGRESS
            _step_set(
                check,
                Step.CONSENT,
                StepStatus.PASSED,
                detail="Consent given.",
                detail_zh="客户已同意。",
            )
        else:
            check.status = CheckStatus.REFUSED
            _step_set(
                check,
                Step.CONSENT,
                StepStatus.FAILED,
                detail="The customer refused the identity check.",
                detail_zh="客户拒绝了身份核验。",
            )
        call_event_record(
            call_id=call_id,
            kind="kyc_consent",
            actor="customer",
            data={
                "accepted": accepted,
                "at": now.isoformat(),
                "ip": ip,
                "geolocation": geolocation,
            },
        )
        return _save(check, step=Step.CONSENT)


# --- capture ----------------------------------------------------------------------------------


def _grab(check: IdentityCheck, *, purpose: str, **params) -> None:
    """Ask the call's media worker for frames of the customer's video (sent after commit)."""
    call = Call.objects.only("id", "media_channel").get(pk=check.call_id)
    if not call.media_channel:
        raise Conflict("The call has no media yet: wait for the customer's video.")
    notify.channel_send_on_commit(
        call.media_channel,
        {
            "type": "media.grab",
            "call_id": str(call.id),
            "check_id": str(check.id),
            "purpose": purpose,
            **params,
        },
    )


def identity_capture_request(*, call_id: uuid.UUID, teller, side: str) -> IdentityCheck:
    """The teller clicks "capture": the server grabs the card from the live video."""
    step = CAPTURE_PURPOSES.get(side)
    if step is None:
        raise Conflict(f"Unknown card side {side!r}.")
    with transaction.atomic():
        check = _check_for_teller(call_id=call_id, teller=teller)
        _require_consent(check)
        _step_set(
            check,
            step,
            StepStatus.RUNNING,
            detail="Capturing the card from the video…",
            detail_zh="正在从视频中截取证件…",
        )
        _grab(check, purpose=step, **CARD_GRAB)
        call_event_record(
            call_id=call_id, kind="kyc_capture", actor=f"teller:{teller.pk}", data={"side": side}
        )
        return _save(check, step=step)


def identity_face_match_request(*, call_id: uuid.UUID, teller) -> IdentityCheck:
    """Sample frames at random moments of the next few seconds and match them to the card."""
    with transaction.atomic():
        check = _check_for_teller(call_id=call_id, teller=teller)
        _require_consent(check)
        if not check.evidence.filter(
            kind__in=[EvidenceKind.PORTRAIT, EvidenceKind.CHIP_PHOTO]
        ).exists():
            raise Conflict("Capture the card front (with its photo) first.")
        _step_set(
            check,
            Step.FACE_MATCH,
            StepStatus.RUNNING,
            detail="Sampling the customer's live video…",
            detail_zh="正在采集客户视频画面…",
        )
        # One random moment in each equal slot of the spread (a frame per moment even when the
        # video runs at a few frames a second), unpredictable to the client.
        count = settings.KYC_FACE_FRAMES
        slot = int(settings.KYC_FACE_SPREAD_S * 1000) // count
        rng = random.SystemRandom()
        at_ms = [i * slot + rng.randrange(0, max(1, slot * 6 // 10)) for i in range(count)]
        _grab(check, purpose=Step.FACE_MATCH, at_ms=at_ms)
        return _save(check, step=Step.FACE_MATCH)


def identity_liveness_request(*, call_id: uuid.UUID, teller) -> IdentityCheck:
    """A random challenge, shown to the customer and verified on frames the server samples."""
    from .liveness import liveness_challenge_new

    with transaction.atomic():
        check = _check_for_teller(call_id=call_id, teller=teller)
        _require_consent(check)
        challenge = liveness_challenge_new()
        steps = selectors.liveness_steps(challenge)
        lead_in_ms = settings.KYC_LIVENESS_LEAD_IN_MS
        duration_ms = lead_in_ms + sum(s["duration_ms"] for s in steps)
        check.liveness_challenge = {**challenge.as_dict(), "play": steps, "lead_in_ms": lead_in_ms}
        _step_set(
            check,
            Step.LIVENESS,
            StepStatus.RUNNING,
            detail="The customer is asked to "
            + ", then ".join(s["prompt"]["en"] for s in steps if s["kind"] != "neutral"),
            detail_zh="请客户"
            + "，然后".join(s["prompt"]["zh"] for s in steps if s["kind"] != "neutral"),
        )
        notify.forward_on_commit(
            notify.call_group(call_id),
            "kyc.liveness_challenge",
            call_id=str(call_id),
            lead_in_ms=lead_in_ms,
            steps=steps,
        )
        fps = settings.KYC_LIVENESS_FPS
        _grab(
            check,
            purpose=Step.LIVENESS,
            at_ms=list(range(0, duration_ms, 1000 // fps)),
        )
        return _save(check, step=Step.LIVENESS)


def _seal_evidence(
    check: IdentityCheck, *, kind: str, jpeg: bytes, source: str, offset_ms=None, meta=None
):
    recording = recording_for_call(check.call_id)
    if recording is None:
        raise Conflict("The call has no recording to keep the evidence with.")
    evidence_id = uuid.uuid4()
    sealed = seal(recording_data_key(recording=recording), jpeg, _evidence_aad(evidence_id))
    return IdentityEvidence.objects.create(
        id=evidence_id,
        identity_check=check,
        kind=kind,
        source=source,
        offset_ms=offset_ms,
        captured_at=_now(),
        sha256=hashlib.sha256(jpeg).hexdigest(),
        sealed=sealed,
        meta=meta or {},
    )


def _evidence_aad(evidence_id: uuid.UUID) -> bytes:
    return f"videobank-kyc-evidence:{evidence_id}".encode()


def identity_evidence_open(*, evidence: IdentityEvidence) -> bytes:
    """The JPEG of one piece of evidence (callers audit access where a person sees it)."""
    recording = recording_for_call(evidence.identity_check.call_id)
    return open_sealed(
        recording_data_key(recording=recording), bytes(evidence.sealed), _evidence_aad(evidence.id)
    )


EVIDENCE_OF = {
    Step.CARD_FRONT: EvidenceKind.CARD_FRONT,
    Step.CARD_BACK: EvidenceKind.CARD_BACK,
    Step.FACE_MATCH: EvidenceKind.FACE_FRAME,
    Step.LIVENESS: EvidenceKind.LIVENESS_FRAME,
}


def identity_frames_received(
    *, check_id: uuid.UUID, purpose: str, frames: list[tuple[int, int, bytes]], source: str
) -> list[uuid.UUID]:
    """Frames grabbed by the media worker (``(offset_ms on the recording, ms since the grab
    began, jpeg)``) or uploaded: kept as evidence, analysed in the background."""
    from .tasks import identity_analyse_dispatch

    if purpose not in EVIDENCE_OF:
        raise Conflict(f"Unknown purpose {purpose!r}.")
    with transaction.atomic():
        check = _locked_check(check_id)
        if not frames:
            _step_set(
                check,
                purpose,
                StepStatus.FAILED,
                detail="No video arrived from the customer's camera; check it is on and retry.",
                detail_zh="未收到客户摄像头画面，请确认摄像头已开启后重试。",
                code="no_video",
            )
            _save(check, step=purpose)
            return []
        ids = [
            _seal_evidence(
                check,
                kind=EVIDENCE_OF[purpose],
                jpeg=jpeg,
                source=source,
                offset_ms=offset_ms,
                meta={"t_ms": t_ms},
            ).id
            for offset_ms, t_ms, jpeg in frames
        ]
        _step_set(
            check,
            purpose,
            StepStatus.RUNNING,
            detail="Checking the pictures…",
            detail_zh="正在分析图像…",
        )
        _save(check, step=purpose)
        transaction.on_commit(
            lambda: identity_analyse_dispatch(str(check.id), purpose, [str(i) for i in ids])
        )
    return ids


def identity_grab_failed(*, check_id: uuid.UUID, purpose: str, detail: str, detail_zh: str) -> None:
    """The media worker could not grab (call not on this worker, no video)."""
    with transaction.atomic():
        check = _locked_check(check_id)
        _step_set(
            check, purpose, StepStatus.FAILED, detail=detail, detail_zh=detail_zh, code="no_video"
        )
        _save(check, step=purpose)


def identity_upload(*, call_id: uuid.UUID, side: str, data: bytes) -> IdentityCheck:
    """The customer photographed the card on a phone (or chose a file): checked, then analysed
    like a grabbed frame. Bad files are refused in words and nothing is stored."""
    step = CAPTURE_PURPOSES.get(side)
    if step is None:
        raise Conflict(f"Unknown card side {side!r}.")
    image = image_load(data)  # BadImage: not an image, > 10 MB, > 20 MP, damaged
    check = IdentityCheck.objects.filter(call_id=call_id).order_by("-created_at").first()
    if check is None:
        raise Conflict("The teller has not started the identity check.")
    _require_consent(check)
    image.thumbnail((2000, 2000))  # OCR needs no more; keeps evidence small
    identity_frames_received(
        check_id=check.id, purpose=step, frames=[(None, 0, image_jpeg(image))], source="upload"
    )
    with transaction.atomic():
        check = _locked_check(check.id)
        check.source = "upload"
        check.save(update_fields=["source", "updated_at"])
    return check


def identity_chip_read(
    *, call_id: uuid.UUID, fields: dict, photo_jpeg: bytes | None
) -> IdentityCheck:
    """The kiosk's ID-card reader read the chip: its fields replace OCR (still confirmed by the
    teller) and its photo is the portrait the live face is matched against."""
    with transaction.atomic():
        check = (
            IdentityCheck.objects.select_for_update()
            .filter(call_id=call_id)
            .order_by("-created_at")
            .first()
        )
        if check is None:
            raise Conflict("The teller has not started the identity check.")
        _require_consent(check)
        if photo_jpeg:
            image = image_load(photo_jpeg)
            _seal_evidence(
                check, kind=EvidenceKind.CHIP_PHOTO, jpeg=image_jpeg(image), source="chip"
            )
        checks = validate_fields(fields)
        check.source = "chip"
        check.fields_read = {"front": dict(fields), "back": {}, "checks": checks, "source": "chip"}
        ok = all(c["passed"] for c in checks)
        for step in (Step.CARD_FRONT, Step.CARD_BACK):
            _step_set(
                check,
                step,
                StepStatus.PASSED if ok else StepStatus.FAILED,
                detail="Read from the card's chip." if ok else _checks_words(checks)[0],
                detail_zh="已读取证件芯片。" if ok else _checks_words(checks)[1],
                source="chip",
            )
        call_event_record(
            call_id=call_id,
            kind="kyc_capture",
            actor="customer",
            data={"source": "chip", "id_number": mask_id_number(fields.get("id_number", ""))},
        )
        return _save(check, step=Step.CARD_FRONT)


def _checks_words(checks: list[dict]) -> tuple[str, str]:
    failed = [c for c in checks if not c["passed"]]
    return (
        " ".join(c["detail"] for c in failed) or "All checks passed.",
        " ".join(c.get("detail_zh") or c["detail"] for c in failed) or "全部校验通过。",
    )


# --- results of the background analysis --------------------------------------------------------


def identity_step_result(
    *,
    check_id: uuid.UUID,
    step: str,
    passed: bool,
    detail: str,
    detail_zh: str,
    data: dict | None = None,
    fields_read: dict | None = None,
    portrait_jpeg: bytes | None = None,
    evidence_meta: dict[str, dict] | None = None,
    face_distance: float | None = None,
) -> IdentityCheck:
    """Record what an analysis found (called by ``kyc.tasks``)."""
    with transaction.atomic():
        check = _locked_check(check_id)
        _step_set(
            check,
            step,
            StepStatus.PASSED if passed else StepStatus.FAILED,
            detail=detail,
            detail_zh=detail_zh,
            **(data or {}),
        )
        if fields_read is not None:
            check.fields_read = {**check.fields_read, **fields_read}
        if portrait_jpeg is not None:
            check.evidence.filter(kind=EvidenceKind.PORTRAIT).delete()
            _seal_evidence(check, kind=EvidenceKind.PORTRAIT, jpeg=portrait_jpeg, source="card")
        for evidence_id, meta in (evidence_meta or {}).items():
            IdentityEvidence.objects.filter(pk=evidence_id, identity_check=check).update(meta=meta)
        if face_distance is not None:
            check.face_distance = face_distance
        if step == Step.FACE_MATCH:
            if passed:
                check.face_matched_at = _now()
            # Businesses that waited for a fresh face match (a transfer over the limit) go on,
            # or are told it failed.
            hook = settings.KYC_FACE_MATCH_HOOK
            if hook:
                call_id = check.call_id
                transaction.on_commit(lambda: import_string(hook)(call_id=call_id))
        kind = {
            Step.CARD_FRONT: "kyc_ocr",
            Step.CARD_BACK: "kyc_ocr",
            Step.FACE_MATCH: "kyc_face_match",
            Step.LIVENESS: "kyc_liveness",
        }.get(step, "kyc_result")
        call_event_record(
            call_id=check.call_id,
            kind=kind,
            data={"step": step, "passed": passed, "detail": detail, **_timeline_data(data or {})},
        )
        return _save(check, step=step)


def _timeline_data(data: dict) -> dict:
    """What the call's timeline keeps of a result: scores and codes, never personal fields."""
    keep = (
        "code",
        "distances",
        "threshold",
        "usable_frames",
        "evidence",
        "measurements",
        "factors",
    )
    return {k: v for k, v in data.items() if k in keep}


# --- the teller confirms the fields, then the national check ----------------------------------


FRONT_FIELDS = ("name", "sex", "ethnicity", "birth", "address", "id_number")
BACK_FIELDS = ("authority", "validity")
FIELD_NAMES = FRONT_FIELDS + BACK_FIELDS


def validate_fields(fields: dict) -> list[dict]:
    """Every card rule (kyc/idcard/validation.py) on these fields, each explained in words."""
    from .idcard.validation import birth_parse, id_card_back_checks, id_card_front_checks

    checks = id_card_front_checks({k: fields.get(k, "") for k in FRONT_FIELDS})
    if any(fields.get(k) for k in BACK_FIELDS):
        checks += id_card_back_checks(
            {k: fields.get(k, "") for k in BACK_FIELDS}, birth=birth_parse(fields.get("birth", ""))
        )
    return [c.as_dict() for c in checks]


def identity_fields_confirm(*, call_id: uuid.UUID, teller, fields: dict) -> IdentityCheck:
    """The teller confirms what the card says, correcting OCR; every rule must pass (explained
    in words otherwise) and every correction is audited. Starts the national ID check."""
    with transaction.atomic():
        check = _check_for_teller(call_id=call_id, teller=teller)
        _require_consent(check)
        for step in (Step.CARD_FRONT, Step.CARD_BACK):
            if _step_status(check, step) != StepStatus.PASSED:
                raise Conflict(f"{STEP_TEXT[step][0]} is not done yet.")
        fields = {k: str(v).strip() for k, v in fields.items() if k in FIELD_NAMES}
        fields["id_number"] = fields.get("id_number", "").upper()
        checks = validate_fields(fields)
        failed = [c for c in checks if not c["passed"]]
        if failed:
            words, words_zh = _checks_words(checks)
            raise Conflict(f"{words} / {words_zh}")
        read = {**check.fields_read.get("back", {}), **check.fields_read.get("front", {})}
        now = _now()
        corrections = [
            {
                "field": name,
                "from": _masked_field(name, read.get(name, "")),
                "to": _masked_field(name, value),
                "by": teller.get_username(),
                "at": now.isoformat(),
            }
            for name, value in fields.items()
            if str(read.get(name, "")) != value
        ]
        check.fields = fields
        check.corrections = [*check.corrections, *corrections]
        _step_set(
            check,
            Step.FIELDS,
            StepStatus.PASSED,
            detail=f"Confirmed by {teller.get_username()}"
            + (f" with {len(corrections)} correction(s)." if corrections else "."),
            detail_zh=f"柜员 {teller.get_username()} 已核对"
            + (f"，更正 {len(corrections)} 处。" if corrections else "。"),
            checks=checks,
        )
        call_event_record(
            call_id=call_id,
            kind="kyc_fields",
            actor=f"teller:{teller.pk}",
            data={"corrections": corrections, "id_number": mask_id_number(fields["id_number"])},
        )
        # An elderly/accessibility claim is settled by the birth date the teller confirmed.
        call_priority_claim_settle(call_id=call_id, birth=fields.get("birth", ""))
        _national_start(check)
        return _save(check, step=Step.FIELDS)


def _masked_field(name: str, value: str) -> str:
    return mask_id_number(value) if name == "id_number" else value


def identity_national_request(*, call_id: uuid.UUID, teller) -> IdentityCheck:
    """Run the national ID check again (after an outage, say)."""
    with transaction.atomic():
        check = _check_for_teller(call_id=call_id, teller=teller)
        _require_consent(check)
        if _step_status(check, Step.FIELDS) != StepStatus.PASSED:
            raise Conflict("Confirm the card's fields first.")
        _national_start(check, retry=True)
        return _save(check, step=Step.NATIONAL)


def _business_risk(check: IdentityCheck) -> str:
    key = Call.objects.filter(pk=check.call_id).values_list("business__key", flat=True).first()
    return "high" if key in settings.KYC_HIGH_RISK_BUSINESSES else "low"


def _portrait_jpeg(check: IdentityCheck) -> bytes | None:
    evidence = (
        check.evidence.filter(kind__in=[EvidenceKind.CHIP_PHOTO, EvidenceKind.PORTRAIT])
        .order_by("-captured_at")
        .first()
    )
    return identity_evidence_open(evidence=evidence) if evidence is not None else None


def _national_start(check: IdentityCheck, *, retry: bool = False) -> None:
    from kyc.national.services import national_check_retry, national_check_start

    portrait = _portrait_jpeg(check)
    _step_set(
        check,
        Step.NATIONAL,
        StepStatus.RUNNING,
        detail="Asking the national ID service…",
        detail_zh="正在进行公安联网核查…",
        factors=3 if portrait else 2,
    )
    if retry and check.national_check_id:
        national = national_check_retry(check_id=check.national_check_id)
    else:
        national = national_check_start(
            name=check.fields["name"],
            id_number=check.fields["id_number"],
            portrait_jpeg=portrait,
            business_risk=_business_risk(check),
            call_id=check.call_id,
        )
    check.national_check_id = national.id
    call_event_record(
        call_id=check.call_id,
        kind="kyc_national",
        data={"asked": True, "factors": 3 if portrait else 2, "national_check": str(national.id)},
    )


def identity_national_result(*, check_id: uuid.UUID) -> None:
    """Hook (``KYC_NATIONAL_RESULT_HOOK``): the national check ``check_id`` reached a result."""
    from kyc.national.models import NationalCheck

    national = NationalCheck.objects.filter(pk=check_id).first()
    if national is None:
        return
    with transaction.atomic():
        check = (
            IdentityCheck.objects.select_for_update().filter(national_check_id=national.id).first()
        )
        if check is None:
            return
        passed = national.status == "passed"
        detail, detail_zh = selectors.national_words(national)
        _step_set(
            check,
            Step.NATIONAL,
            StepStatus.PASSED if passed else StepStatus.FAILED,
            detail=detail,
            detail_zh=detail_zh,
            factors=national.factors,
            outcome=national.outcome,
            code=national.status,
            from_cache=national.from_cache,
            retry=national.status == "unavailable",
        )
        call_event_record(
            call_id=check.call_id,
            kind="kyc_national",
            data={
                "status": national.status,
                "outcome": national.outcome,
                "factors": national.factors,
                "from_cache": national.from_cache,
                "channel": national.channel,
                "attempts": national.attempts,
            },
        )
        _save(check, step=Step.NATIONAL)


# --- reads for the businesses that follow -----------------------------------------------------


def identity_for_call(*, call_id: uuid.UUID) -> IdentityCheck | None:
    """The call's passed, unexpired identity check, or None."""
    check = (
        IdentityCheck.objects.filter(call_id=call_id, status=CheckStatus.PASSED)
        .order_by("-passed_at")
        .first()
    )
    if check is None or check.expires_at <= _now():
        return None
    return check


def evidence_for_analysis(*, evidence_ids: list[str]) -> list[tuple[IdentityEvidence, bytes]]:
    items = IdentityEvidence.objects.select_related("identity_check").filter(pk__in=evidence_ids)
    return [(e, identity_evidence_open(evidence=e)) for e in items]


__all__ = [
    "KycError",
    "identity_capture_request",
    "identity_check_start",
    "identity_chip_read",
    "identity_consent",
    "identity_face_match_request",
    "identity_fields_confirm",
    "identity_for_call",
    "identity_frames_received",
    "identity_liveness_request",
    "identity_national_request",
    "identity_national_result",
    "identity_step_result",
    "identity_upload",
    "mask_id_number",
]


# --- kiosk peripherals ------------------------------------------------------------------------


def peripheral_report(*, call_id: uuid.UUID, device: str, event: str, data: dict) -> None:
    """A VTM peripheral reported: on the call's timeline and the teller's console; the ID-card
    reader's chip goes on to the identity check."""
    import base64
    import binascii

    summary = {"device": device, "event": event}
    if device == "id_card_reader" and data.get("fields"):
        summary["id_number"] = mask_id_number(data["fields"].get("id_number", ""))
        summary["name"] = data["fields"].get("name", "")
    elif data.get("detail"):
        summary["detail"] = data["detail"][:200]
    with transaction.atomic():
        call = Call.objects.filter(pk=call_id).first()
        if call is None:
            raise NotFound("No such call.")
        call_event_record(call_id=call_id, kind="peripheral", actor="customer", data=summary)
        if call.teller_id:
            notify.forward_on_commit(
                notify.teller_group(call.teller_id),
                "peripheral",
                call_id=str(call_id),
                **summary,
            )
    if device == "id_card_reader" and event == "card_read":
        if not data.get("fields"):
            raise Conflict("The card reader sent no fields.")
        photo = None
        if data.get("photo_jpeg_b64"):
            try:
                photo = base64.b64decode(data["photo_jpeg_b64"], validate=True)
            except (binascii.Error, ValueError):
                raise Conflict("The card reader's photo is not valid base64.") from None
        identity_chip_read(call_id=call_id, fields=data["fields"], photo_jpeg=photo)


def simulated_card_issue(*, photo_jpeg: bytes) -> tuple[dict, bytes]:
    """For the kiosk's simulated card reader: a random valid card holder with this face as the
    chip photo (102x126, as a real chip's), registered with the national-ID stub."""
    from kyc.idcard.generator import person_random
    from kyc.national_stub.services import citizen_register

    from .images import image_array

    image = image_load(photo_jpeg)
    person = person_random()
    chip = image.copy()
    chip.thumbnail((204, 252))
    chip_jpeg = image_jpeg(chip, quality=85)
    try:
        citizen_register(name=person.name, id_number=person.id_number, portrait=image_array(image))
    except KycError:  # no usable face in the snapshot: the holder is on file without a photo
        citizen_register(name=person.name, id_number=person.id_number)
    until = person.valid_until.strftime("%Y.%m.%d") if person.valid_until else "长期"
    fields = {
        "name": person.name,
        "sex": person.sex,
        "ethnicity": person.ethnicity,
        "birth": person.birth.strftime("%Y%m%d"),
        "address": person.address,
        "id_number": person.id_number,
        "authority": person.authority,
        "validity": f"{person.valid_from.strftime('%Y.%m.%d')}-{until}",
    }
    return fields, chip_jpeg
