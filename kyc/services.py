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

import base64
import binascii
import hashlib
import json
import logging
import random
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from kyc.national.models import NationalCheck
from kyc.national.services import national_check_retry, national_check_start
from kyc.national_stub.services import citizen_register
from queueing import notify
from queueing.models import Call, CallStatus
from queueing.services import call_event_record, call_lock, call_priority_claim_settle
from recordings.crypto import open_sealed, seal
from recordings.selectors import recording_for_call
from recordings.services import recording_data_key
from videobank import events, media_contract
from videobank.errors import Conflict, Forbidden, NotFound

from . import selectors
from .errors import KycError, Refused
from .idcard.generator import person_random
from .idcard.validation import birth_parse, id_card_back_checks, id_card_front_checks
from .images import image_array, image_jpeg, image_load
from .liveness import liveness_challenge_new
from .models import (
    STEP_ORDER,
    CheckStatus,
    EvidenceKind,
    IdentityCheck,
    IdentityEvidence,
    Level,
    Step,
    StepStatus,
    UploadAttempt,
)
from .national.masking import address_mask, geolocation_coarse, ip_mask, name_mask

if TYPE_CHECKING:
    from django.contrib.auth.models import User

log = logging.getLogger(__name__)

# What each grab asks the media worker for (see signaling/media/worker.py ``media.grab``).
# The card: the sharpest of five frames over 1.2 s is read. A teller clicks "capture" as soon as
# the card is in view, when the video is at its worst: the browser's encoder sends a scene that
# just changed coarsely and sharpens it over the next second. Read from the first 0.6 s, the
# card's text still read but its photo, under CPU load, sometimes no longer matched the registry's.
CARD_GRAB: dict[str, Any] = {"count": 5, "spread_ms": 1200}
CAPTURE_PURPOSES: dict[str, str] = {"front": Step.CARD_FRONT, "back": Step.CARD_BACK}

STEP_TEXT: dict[str, tuple[str, str]] = {
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
    **data: Any,
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
    status: str = check.steps.get(step, {}).get("status", StepStatus.PENDING)
    return status


def _locked_check(check_id: uuid.UUID) -> IdentityCheck:
    check = IdentityCheck.objects.select_for_update().filter(pk=check_id).first()
    if check is None:
        raise NotFound("No such identity check.", "没有这项身份核验。")
    return check


def _check_for_teller(*, call_id: uuid.UUID, teller: User) -> IdentityCheck:
    """The call's current identity check, locked, if this teller holds the call."""
    call = Call.objects.filter(pk=call_id).first()
    if call is None or call.teller_id != teller.pk or call.status != CallStatus.CONNECTED:
        raise Forbidden("This call is not connected to you.", "该通话没有接通到您。")
    check = (
        IdentityCheck.objects.select_for_update()
        .filter(call_id=call_id)
        .order_by("-created_at")
        .first()
    )
    if check is None:
        raise Conflict("Start the identity check first.", "请先发起身份核验。")
    return check


def _require_consent(check: IdentityCheck) -> None:
    if check.status == CheckStatus.CONSENT_PENDING:
        raise Conflict("The customer has not given consent yet.", "客户尚未同意身份核验。")
    if check.status == CheckStatus.REFUSED:
        raise Conflict("The customer refused the identity check.", "客户已拒绝身份核验。")


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
    """Passed when every step has, on the evidence the check holds now; the level says what was
    proven."""
    if check.status != CheckStatus.IN_PROGRESS:
        return
    if all(_step_status(check, s) == StepStatus.PASSED for s in STEP_ORDER):
        if _binding_broken(check):
            return
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


# --- card evidence: when it is taken, and what rests on it --------------------------------------
#
# A side of the card takes evidence (the teller's capture, the customer's upload, the kiosk's chip
# read) only while its step has not passed. Once it has, the teller is relying on it: only the
# teller replaces it (capture again), and that resets every step that rested on the card, in
# words and on the timeline. The customer's device never overwrites a side the teller has.

CARD_STEPS = (Step.CARD_FRONT, Step.CARD_BACK)
SIDE_OF: dict[str, str] = {Step.CARD_FRONT: "front", Step.CARD_BACK: "back"}
# What rests on the card: the fields read from it, the national check run on those fields and the
# card's photo, the live face matched to that photo, the liveness of that face.
RESTS_ON_CARD: dict[str, tuple[str, str]] = {
    Step.FIELDS: ("confirm the fields again", "请重新核对信息"),
    Step.NATIONAL: (
        "the national ID check runs again once the fields are confirmed",
        "核对信息后将重新进行公安联网核查",
    ),
    Step.FACE_MATCH: ("match the face again", "请重新进行人脸比对"),
    Step.LIVENESS: ("check liveness again", "请重新进行活体检测"),
}
REPLACED_BY = {
    "capture": ("the teller captured it again", "柜员重新采集"),
    "chip": ("the card reader read a card", "读卡器读取了证件"),
}
PORTRAIT_WORDS = {"card": ("the card's photo", "证件照片"), "chip": ("the chip photo", "芯片照片")}


def _card_basis(check: IdentityCheck) -> dict[str, str | None]:
    """The evidence each side of the card passed on: what the fields and the national check
    rest on."""
    return {
        SIDE_OF[step]: check.steps.get(step, {}).get("evidence")
        if _step_status(check, step) == StepStatus.PASSED
        else None
        for step in CARD_STEPS
    }


def _card_portrait(check: IdentityCheck) -> dict[str, Any] | None:
    """The photo the card front passed with — ``{evidence, sha256, source}`` — or None."""
    if _step_status(check, Step.CARD_FRONT) != StepStatus.PASSED:
        return None
    portrait: dict[str, Any] | None = check.steps[Step.CARD_FRONT].get("portrait")
    return portrait


def _sha(portrait: dict[str, Any] | None) -> str | None:
    return portrait.get("sha256") if portrait else None


def portrait_named(portrait: dict[str, Any] | None) -> dict[str, Any] | None:
    """Which photo, as the panel's words and the timeline name it (a hash prefix is enough)."""
    if not portrait:
        return None
    return {
        "evidence": portrait["evidence"],
        "source": portrait["source"],
        "sha256": portrait["sha256"][:16],
    }


def portrait_words(portrait: dict[str, Any]) -> tuple[str, str]:
    en, zh = PORTRAIT_WORDS.get(portrait["source"], PORTRAIT_WORDS["card"])
    ref = f"evidence {portrait['evidence'][:8]}, sha256 {portrait['sha256'][:12]}"
    ref_zh = f"证据 {portrait['evidence'][:8]}，sha256 {portrait['sha256'][:12]}"
    return f"Compared with {en} ({ref}).", f"比对对象：{zh}（{ref_zh}）。"


def _portrait_ref(evidence: IdentityEvidence, source: str) -> dict[str, Any]:
    return {"evidence": str(evidence.id), "sha256": evidence.sha256, "source": source}


def portrait_bytes(*, check_id: uuid.UUID, portrait: dict[str, Any]) -> bytes:
    """The JPEG of exactly this portrait, verified by its hash; KycError in words if the evidence
    is not the one named."""
    evidence = (
        IdentityEvidence.objects.select_related("identity_check")
        .filter(
            pk=portrait["evidence"],
            identity_check_id=check_id,
            kind__in=[EvidenceKind.PORTRAIT, EvidenceKind.CHIP_PHOTO],
        )
        .first()
    )
    jpeg = identity_evidence_open(evidence=evidence) if evidence is not None else b""
    if evidence is None or hashlib.sha256(jpeg).hexdigest() != portrait["sha256"]:
        raise KycError(
            "The card photo on record is not the one the check was run with; capture the card "
            "front again.",
            detail_zh="存档的证件照片与核验时使用的不一致，请重新采集证件人像面。",
            code="portrait_mismatch",
        )
    return jpeg


def _face_match_portrait(check: IdentityCheck) -> dict[str, Any]:
    """The photo the live face is matched against: the one the national check was run with (bound
    by hash when it started), else the card's photo. Refused in words if there is none, or if the
    card's photo changed after the national check."""
    portrait = _card_portrait(check)
    if portrait is None:
        raise Refused(
            "Capture the card front (with its photo) first.",
            detail_zh="请先采集证件人像面（含照片）。",
            reason="no_portrait",
        )
    national = check.steps.get(Step.NATIONAL, {}).get("portrait")
    if national is not None and national["sha256"] != portrait["sha256"]:
        raise Refused(
            "The card's photo changed after the national ID check was run with another one; run "
            "the national check again before the face match.",
            detail_zh="公安联网核查之后证件照片已更换，请先重新进行联网核查，再进行人脸比对。",
            reason="portrait_changed",
        )
    return national or portrait


def _binding_broken(check: IdentityCheck) -> bool:
    """True (and the step in question failed, in words) when a step's result rests on evidence
    other than what the check holds now: never passed on swapped evidence."""
    basis = _card_basis(check)
    portrait = _card_portrait(check)
    national = check.steps.get(Step.NATIONAL, {})
    broken = None
    if check.steps.get(Step.FIELDS, {}).get("basis") != basis:
        broken = Step.FIELDS
    elif national.get("basis") != basis or _sha(national.get("portrait")) != _sha(portrait):
        broken = Step.NATIONAL
    elif _sha(check.steps.get(Step.FACE_MATCH, {}).get("portrait")) != _sha(portrait):
        broken = Step.FACE_MATCH
    if broken is None:
        return False
    log.warning("identity check %s: %s rests on replaced card evidence", check.id, broken)
    todo_en, todo_zh = RESTS_ON_CARD[broken]
    _step_set(
        check,
        broken,
        StepStatus.FAILED,
        detail=f"This result rests on card evidence that has since been replaced; {todo_en}.",
        detail_zh=f"该结果所依据的证件材料已被替换，{todo_zh}。",
        code="stale_evidence",
    )
    return True


def _card_replace(check: IdentityCheck, *, sides: Sequence[str], by: str, actor: str) -> list[str]:
    """New card evidence is coming for ``sides``. A side that had passed is being replaced: every
    step that rested on the card goes back to pending with words saying why, a passed check is
    no longer passed, late results of the old evidence are ignored, and the timeline says so.
    Returns the steps reset."""
    replaced = [s for s in sides if _step_status(check, s) == StepStatus.PASSED]
    if not replaced:
        return []
    sides_en = " and ".join(STEP_TEXT[s][0] for s in replaced)
    sides_zh = "、".join(STEP_TEXT[s][1] for s in replaced)
    why_en, why_zh = REPLACED_BY[by]
    reset: list[str] = [s for s in RESTS_ON_CARD if _step_status(check, s) != StepStatus.PENDING]
    for step in reset:
        todo_en, todo_zh = RESTS_ON_CARD[step]
        _step_set(
            check,
            step,
            StepStatus.PENDING,
            detail=f"Reset: {sides_en} was replaced ({why_en}); {todo_en}.",
            detail_zh=f"已重置：{sides_zh}已被替换（{why_zh}），{todo_zh}。",
            code="reset",
        )
    was_passed = check.status == CheckStatus.PASSED
    if was_passed:
        check.status = CheckStatus.IN_PROGRESS
        check.level = Level.NONE
        check.passed_at = None
        check.expires_at = None
    check.fields = {}  # confirmed no more: the teller confirms what the new evidence says
    check.face_distance = None
    check.face_matched_at = None
    check.national_check_id = None  # a late answer about the old card changes nothing
    call_event_record(
        call_id=check.call_id,
        kind="kyc_reset",
        actor=actor,
        data={
            "replaced": [SIDE_OF[s] for s in replaced],
            "by": by,
            "evidence_replaced": {SIDE_OF[s]: check.steps[s].get("evidence") for s in replaced},
            "steps_reset": reset,
            "check_was_passed": was_passed,
        },
    )
    return reset


def _result_lapsed(check: IdentityCheck) -> bool:
    """A passed result no longer to be relied on (one without an expiry never is)."""
    return check.expires_at is None or check.expires_at <= _now()


def _save(check: IdentityCheck, *, step: str | None = None) -> IdentityCheck:
    _evaluate(check)
    check.save()
    _publish(check, step=step)
    return check


# --- start and consent ----------------------------------------------------------------------


def identity_check_start(*, call_id: uuid.UUID, teller: User) -> IdentityCheck:
    """Once per call: returns the call's check if there is a usable one, otherwise starts one
    and asks the customer for consent."""
    with transaction.atomic():
        call = call_lock(call_id)
        if call is None or call.teller_id != teller.pk or call.status != CallStatus.CONNECTED:
            raise Forbidden("This call is not connected to you.", "该通话没有接通到您。")
        current = IdentityCheck.objects.filter(call_id=call_id).order_by("-created_at").first()
        if (
            current is not None
            and current.status != CheckStatus.REFUSED
            and not (current.status == CheckStatus.PASSED and _result_lapsed(current))
        ):
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
    geolocation: dict[str, Any] | None = None,
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
            raise Conflict(
                "There is no identity check waiting for your consent.",
                "目前没有等待您同意的身份核验。",
            )
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
            data={  # the check keeps them in full (encrypted); the timeline masked
                "accepted": accepted,
                "at": now.isoformat(),
                "ip": ip_mask(ip),
                "geolocation": geolocation_coarse(geolocation),
            },
        )
        return _save(check, step=Step.CONSENT)


# --- capture ----------------------------------------------------------------------------------


def _grab(check: IdentityCheck, *, purpose: str, **params: Any) -> None:
    """Ask the call's media worker for frames of the customer's video (sent after commit)."""
    call = Call.objects.only("id", "media_channel").get(pk=check.call_id)
    if not call.media_channel:
        raise Conflict(
            "The call has no media yet: wait for the customer's video.",
            "通话尚无视频，请等待客户画面接通。",
        )
    notify.channel_send_on_commit(
        call.media_channel,
        media_contract.grab(call_id=call.id, check_id=check.id, purpose=purpose, **params),
    )


def identity_capture_request(*, call_id: uuid.UUID, teller: User, side: str) -> IdentityCheck:
    """The teller clicks "capture": the server grabs the card from the live video. Capturing a
    side that already passed replaces it: every step that rested on the card is reset (words on
    the panel, a ``kyc_reset`` on the timeline), and the side takes new evidence again — from
    this grab, the customer's upload or the kiosk's card reader."""
    step = CAPTURE_PURPOSES.get(side)
    if step is None:
        raise Conflict(f"Unknown card side {side!r}.", f"没有 {side!r} 这一证件面。")
    with transaction.atomic():
        check = _check_for_teller(call_id=call_id, teller=teller)
        _require_consent(check)
        _card_replace(check, sides=[step], by="capture", actor=f"teller:{teller.pk}")
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


def identity_face_match_request(*, call_id: uuid.UUID, teller: User) -> IdentityCheck:
    """Sample frames at random moments of the next few seconds and match them to the photo the
    national check was run with (or, before it, the card's photo); refused in words if the card's
    photo changed after the national check."""
    with transaction.atomic():
        check = _check_for_teller(call_id=call_id, teller=teller)
        _require_consent(check)
        portrait = _face_match_portrait(check)
        _step_set(
            check,
            Step.FACE_MATCH,
            StepStatus.RUNNING,
            detail="Sampling the customer's live video…",
            detail_zh="正在采集客户视频画面…",
            portrait=portrait,
        )
        # One random moment in each equal slot of the spread (a frame per moment even when the
        # video runs at a few frames a second), unpredictable to the client.
        count = settings.KYC_FACE_FRAMES
        slot = int(settings.KYC_FACE_SPREAD_S * 1000) // count
        rng = random.SystemRandom()
        at_ms = [i * slot + rng.randrange(0, max(1, slot * 6 // 10)) for i in range(count)]
        _grab(check, purpose=Step.FACE_MATCH, at_ms=at_ms)
        return _save(check, step=Step.FACE_MATCH)


def identity_liveness_request(*, call_id: uuid.UUID, teller: User) -> IdentityCheck:
    """A random challenge, shown to the customer and verified on frames the server samples."""
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
        # Sampled past the last prompt by KYC_LIVENESS_TAIL_MS: the customer's video reaches
        # the server late (encoder, network), and the last move must not fall off the end.
        _grab(
            check,
            purpose=Step.LIVENESS,
            at_ms=list(range(0, duration_ms + settings.KYC_LIVENESS_TAIL_MS, 1000 // fps)),
        )
        return _save(check, step=Step.LIVENESS)


def _seal_evidence(
    check: IdentityCheck,
    *,
    kind: str,
    jpeg: bytes,
    source: str,
    offset_ms: int | None = None,
    meta: dict[str, Any] | None = None,
) -> IdentityEvidence:
    recording = recording_for_call(check.call_id)
    if recording is None:
        raise Conflict(
            "The call has no recording to keep the evidence with.",
            "该通话没有录像，无法保存核验材料。",
        )
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
    assert recording is not None  # evidence is sealed only with its call's recording key
    return open_sealed(
        recording_data_key(recording=recording), bytes(evidence.sealed), _evidence_aad(evidence.id)
    )


EVIDENCE_OF: dict[str, EvidenceKind] = {
    Step.CARD_FRONT: EvidenceKind.CARD_FRONT,
    Step.CARD_BACK: EvidenceKind.CARD_BACK,
    Step.FACE_MATCH: EvidenceKind.FACE_FRAME,
    Step.LIVENESS: EvidenceKind.LIVENESS_FRAME,
}


def identity_frames_received(
    *, check_id: uuid.UUID, purpose: str, frames: list[tuple[int, int, bytes]], source: str
) -> list[uuid.UUID]:
    """Frames grabbed by the media worker (``(offset_ms on the recording, ms since the grab
    began, jpeg)``): kept as evidence, analysed in the background. Frames for a side of the card
    that has passed meanwhile (the card reader filled it, say) are not kept."""
    if purpose not in EVIDENCE_OF:
        raise Conflict(f"Unknown purpose {purpose!r}.", f"未知用途 {purpose!r}。")
    with transaction.atomic():
        check = _locked_check(check_id)
        return _evidence_take(check, purpose=purpose, frames=frames, source=source)


def _evidence_take(
    check: IdentityCheck,
    *,
    purpose: str,
    frames: Sequence[tuple[int | None, int, bytes]],
    source: str,
) -> list[uuid.UUID]:
    """Seal the frames as evidence of ``purpose`` and queue their analysis (after commit). The
    step remembers which evidence it is analysing: a result about any other (an older grab, a
    replaced card) is ignored."""
    # tasks.py runs this module's services (the analysis records its result here): the task is
    # looked up when it is sent, after commit, not when this module loads.
    from .tasks import identity_analyse_dispatch

    if purpose in CARD_STEPS and _step_status(check, purpose) == StepStatus.PASSED:
        log.info("%s frames for %s not kept: the side has passed", purpose, check.id)
        return []
    bound = {}
    if purpose == Step.FACE_MATCH:
        try:
            bound["portrait"] = _face_match_portrait(check)
        except KycError as exc:
            _step_set(
                check,
                purpose,
                StepStatus.FAILED,
                detail=exc.detail,
                detail_zh=exc.detail_zh,
                code=getattr(exc, "reason", exc.code),
            )
            _save(check, step=purpose)
            return []
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
        analysing=[str(i) for i in ids],
        **bound,
    )
    _save(check, step=purpose)
    check_id = str(check.id)
    transaction.on_commit(
        lambda: identity_analyse_dispatch(check_id, purpose, [str(i) for i in ids])
    )
    return ids


def identity_grab_failed(*, check_id: uuid.UUID, purpose: str, detail: str, detail_zh: str) -> None:
    """The media worker could not grab (call not on this worker, no video)."""
    with transaction.atomic():
        check = _locked_check(check_id)
        if _step_status(check, purpose) != StepStatus.RUNNING:
            return  # nobody waits for this grab any more (filled or reset meanwhile)
        _step_set(
            check, purpose, StepStatus.FAILED, detail=detail, detail_zh=detail_zh, code="no_video"
        )
        _save(check, step=purpose)


# --- the customer's evidence: a phone upload, the kiosk's card reader ---------------------------

UPLOAD_MAX_SIDE = 2000  # OCR needs no more; keeps evidence small


def _customer_call(call_id: uuid.UUID) -> IdentityCheck:
    """The call's current identity check, if the call is connected and the customer consented;
    refused in words otherwise."""
    call = Call.objects.filter(pk=call_id).only("status").first()
    if call is None or call.status != CallStatus.CONNECTED:
        if call is not None and call.status in (CallStatus.WAITING, CallStatus.OFFERED):
            raise Refused(
                "The call is not connected yet; nothing was taken.",
                detail_zh="通话尚未接通，未接收任何内容。",
                reason="not_connected",
            )
        raise Refused(
            "The call has ended; nothing was taken.",
            detail_zh="通话已结束，未接收任何内容。",
            reason="call_ended",
        )
    check = IdentityCheck.objects.filter(call_id=call_id).order_by("-created_at").first()
    if check is None:
        raise Refused(
            "The teller has not asked for your ID card yet; nothing was taken.",
            detail_zh="柜员尚未请求您的证件，未接收任何内容。",
            reason="not_waiting",
        )
    if check.status == CheckStatus.CONSENT_PENDING:
        raise Refused(
            "Give your consent to the identity check first; nothing was taken.",
            detail_zh="请先同意身份核验，未接收任何内容。",
            reason="no_consent",
        )
    if check.status == CheckStatus.REFUSED:
        raise Refused(
            "You declined the identity check; nothing was taken.",
            detail_zh="您已拒绝身份核验，未接收任何内容。",
            reason="declined",
        )
    return check


def identity_upload_admit(*, call_id: uuid.UUID, side: str) -> IdentityCheck:
    """Before a byte of the picture is looked at: the call is connected and its identity check
    waits for this side of the card (consent given, the side not passed). Refused in words."""
    step = CAPTURE_PURPOSES.get(side)
    if step is None:
        raise Refused(
            "Say which side of the card this is.",
            detail_zh="请说明是证件哪一面。",
            reason="invalid",
            status=400,
        )
    check = _customer_call(call_id)
    if _step_status(check, step) == StepStatus.PASSED:
        raise Refused(
            f"The teller already has this side of your card ({STEP_TEXT[step][0]}); if they "
            "need it again they will ask. Nothing was taken.",
            detail_zh=f"柜员已收到证件此面（{STEP_TEXT[step][1]}），如需重新提供会告知您。"
            "未接收任何内容。",
            reason="already_received",
        )
    return check


def _upload_rate_take(*, call_id: uuid.UUID, side: str, size: int) -> None:
    """One of the call's uploads a minute (``KYC_UPLOAD_MAX_PER_MINUTE``), counted in the
    database under the call's row lock: the limit holds across server processes."""
    limit = settings.KYC_UPLOAD_MAX_PER_MINUTE
    now = _now()
    with transaction.atomic():
        call_lock(call_id)
        recent = UploadAttempt.objects.filter(
            call_id=call_id, at__gt=now - timedelta(seconds=60)
        ).count()
        if recent >= limit:
            raise Refused(
                f"Too many pictures: at most {limit} a minute. Wait a moment, then send it again.",
                detail_zh=f"发送过于频繁：每分钟最多 {limit} 张，请稍候再发送。",
                reason="too_many",
                status=429,
            )
        UploadAttempt.objects.create(call_id=call_id, side=side, size=size, at=now)


def identity_upload(*, call_id: uuid.UUID, side: str, data: bytes) -> IdentityCheck:
    """The customer photographed the card on a phone (or chose a file): taken only while the call
    is connected and its check waits for this side, within the per-call rate; then checked (size,
    pixels from the header, format) and analysed like a grabbed frame. Refused in words, with
    nothing stored, otherwise."""
    check = identity_upload_admit(call_id=call_id, side=side)  # before any decoding
    step = CAPTURE_PURPOSES[side]  # a known side: identity_upload_admit refused any other
    _upload_rate_take(call_id=call_id, side=side, size=len(data))
    image = image_load(data, max_side=UPLOAD_MAX_SIDE)  # BadImage: not an image, > 10 MB, > 20 MP
    image.thumbnail((UPLOAD_MAX_SIDE, UPLOAD_MAX_SIDE))
    jpeg = image_jpeg(image)
    with transaction.atomic():
        # Decoding took a while: the call may have ended or the side been filled meanwhile.
        _locked_check(check.id)
        check = identity_upload_admit(call_id=call_id, side=side)
        check.source = "upload"
        taken = _evidence_take(check, purpose=step, frames=[(None, 0, jpeg)], source="upload")
        call_event_record(
            call_id=call_id,
            kind="kyc_capture",
            actor="customer",
            data={"side": side, "source": "upload", "evidence": [str(i) for i in taken]},
        )
    return check


def identity_chip_read(
    *, call_id: uuid.UUID, fields: dict[str, Any], photo_jpeg: bytes | None
) -> IdentityCheck:
    """The kiosk's ID-card reader read the chip: its fields replace OCR (still confirmed by the
    teller) and its photo is the portrait the live face is matched against. The chip carries both
    sides, so it is taken while the card is not fully read (a side not passed — at the start, or
    after the teller asked for the card again); a side it replaces resets what rested on it."""
    check = _chip_waiting(call_id)  # before the photo is decoded
    image = image_load(photo_jpeg) if photo_jpeg else None
    with transaction.atomic():
        _locked_check(check.id)
        check = _chip_waiting(call_id)
        _card_replace(check, sides=CARD_STEPS, by="chip", actor="customer")
        portrait = None
        if image is not None:
            evidence = _seal_evidence(
                check, kind=EvidenceKind.CHIP_PHOTO, jpeg=image_jpeg(image), source="chip"
            )
            portrait = _portrait_ref(evidence, "chip")
        chip_fields = json.dumps(fields, sort_keys=True, ensure_ascii=False).encode()
        basis = (
            portrait["evidence"] if portrait else f"chip:{hashlib.sha256(chip_fields).hexdigest()}"
        )
        checks = validate_fields(fields)
        check.source = "chip"
        check.fields_read = {"front": dict(fields), "back": {}, "checks": checks, "source": "chip"}
        ok = all(c["passed"] for c in checks)
        for step in CARD_STEPS:
            _step_set(
                check,
                step,
                StepStatus.PASSED if ok else StepStatus.FAILED,
                detail="Read from the card's chip." if ok else _checks_words(checks)[0],
                detail_zh="已读取证件芯片。" if ok else _checks_words(checks)[1],
                source="chip",
                evidence=basis,
                **({"portrait": portrait} if step == Step.CARD_FRONT and portrait else {}),
            )
        call_event_record(
            call_id=call_id,
            kind="kyc_capture",
            actor="customer",
            data={
                "source": "chip",
                "id_number": mask_id_number(fields.get("id_number", "")),
                "portrait": portrait_named(portrait),
            },
        )
        return _save(check, step=Step.CARD_FRONT)


def _chip_waiting(call_id: uuid.UUID) -> IdentityCheck:
    check = _customer_call(call_id)
    if all(_step_status(check, s) == StepStatus.PASSED for s in CARD_STEPS):
        raise Refused(
            "The card was already read and the teller is relying on it; the teller asks for the "
            "card again if it is needed. Nothing was taken.",
            detail_zh="证件已读取，柜员正在据此核验；如需重新读卡，柜员会提示您。未接收任何内容。",
            reason="already_received",
        )
    return check


def _checks_words(checks: list[dict[str, Any]]) -> tuple[str, str]:
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
    data: dict[str, Any] | None = None,
    fields_read: dict[str, Any] | None = None,
    portrait_jpeg: bytes | None = None,
    evidence_meta: dict[str, dict[str, Any]] | None = None,
    face_distance: float | None = None,
    evidence_ids: list[str] | None = None,
) -> IdentityCheck:
    """Record what an analysis of ``evidence_ids`` found (called by ``kyc.tasks``). A result
    about evidence the step no longer waits for — an older grab, a card replaced meanwhile, a
    face matched against another photo than the step is bound to — changes nothing."""
    data = dict(data or {})
    with transaction.atomic():
        check = _locked_check(check_id)
        waiting = check.steps.get(step, {})
        stale = evidence_ids is not None and (
            waiting.get("status") != StepStatus.RUNNING
            or sorted(waiting.get("analysing") or []) != sorted(evidence_ids)
            or ("portrait" in data and _sha(data["portrait"]) != _sha(waiting.get("portrait")))
        )
        if stale:
            log.info("%s result of %s ignored: not what the step waits for", step, check_id)
            return check
        if portrait_jpeg is not None:
            # Kept beside any earlier portrait (evidence is never deleted); the front's step
            # names the one it passed with, and that is the photo the checks use.
            portrait = _seal_evidence(
                check, kind=EvidenceKind.PORTRAIT, jpeg=portrait_jpeg, source="card"
            )
            data["portrait"] = _portrait_ref(portrait, "card")
        _step_set(
            check,
            step,
            StepStatus.PASSED if passed else StepStatus.FAILED,
            detail=detail,
            detail_zh=detail_zh,
            **data,
        )
        if fields_read is not None:
            check.fields_read = {**check.fields_read, **fields_read}
        for evidence_id, meta in (evidence_meta or {}).items():
            IdentityEvidence.objects.filter(pk=evidence_id, identity_check=check).update(meta=meta)
        if face_distance is not None:
            check.face_distance = face_distance
        if step == Step.FACE_MATCH:
            if passed:
                check.face_matched_at = _now()
            # Businesses that waited for a fresh face match (a transfer over the limit) go on,
            # or are told it failed.
            events.emit(events.FaceMatchFinished(call_id=check.call_id))
        kinds: dict[str, str] = {
            Step.CARD_FRONT: "kyc_ocr",
            Step.CARD_BACK: "kyc_ocr",
            Step.FACE_MATCH: "kyc_face_match",
            Step.LIVENESS: "kyc_liveness",
        }
        kind = kinds.get(step, "kyc_result")
        call_event_record(
            call_id=check.call_id,
            kind=kind,
            data={"step": step, "passed": passed, "detail": detail, **_timeline_data(data)},
        )
        return _save(check, step=step)


def _timeline_data(data: dict[str, Any]) -> dict[str, Any]:
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
    kept = {k: v for k, v in data.items() if k in keep}
    if data.get("portrait"):
        kept["portrait"] = portrait_named(data["portrait"])
    return kept


# --- the teller confirms the fields, then the national check ----------------------------------


FRONT_FIELDS = ("name", "sex", "ethnicity", "birth", "address", "id_number")
BACK_FIELDS = ("authority", "validity")
FIELD_NAMES = FRONT_FIELDS + BACK_FIELDS


def validate_fields(fields: dict[str, Any]) -> list[dict[str, Any]]:
    """Every card rule (kyc/idcard/validation.py) on these fields, each explained in words."""
    checks = id_card_front_checks({k: fields.get(k, "") for k in FRONT_FIELDS})
    if any(fields.get(k) for k in BACK_FIELDS):
        checks += id_card_back_checks(
            {k: fields.get(k, "") for k in BACK_FIELDS}, birth=birth_parse(fields.get("birth", ""))
        )
    return [c.as_dict() for c in checks]


def identity_fields_confirm(
    *, call_id: uuid.UUID, teller: User, fields: dict[str, Any]
) -> IdentityCheck:
    """The teller confirms what the card says, correcting OCR; every rule must pass (explained
    in words otherwise) and every correction is audited. Starts the national ID check."""
    with transaction.atomic():
        check = _check_for_teller(call_id=call_id, teller=teller)
        _require_consent(check)
        for step in (Step.CARD_FRONT, Step.CARD_BACK):
            if _step_status(check, step) != StepStatus.PASSED:
                raise Conflict(
                    f"{STEP_TEXT[step][0]} is not done yet.", f"{STEP_TEXT[step][1]}尚未完成。"
                )
        fields = {k: str(v).strip() for k, v in fields.items() if k in FIELD_NAMES}
        fields["id_number"] = fields.get("id_number", "").upper()
        checks = validate_fields(fields)
        failed = [c for c in checks if not c["passed"]]
        if failed:
            words, words_zh = _checks_words(checks)
            raise Conflict(words, words_zh)
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
            basis=_card_basis(check),
        )
        call_event_record(
            call_id=call_id,
            kind="kyc_fields",
            actor=f"teller:{teller.pk}",
            data={
                "corrections": [_correction_masked(c) for c in corrections],
                "id_number": mask_id_number(fields["id_number"]),
            },
        )
        # An elderly/accessibility claim is settled by the birth date the teller confirmed.
        call_priority_claim_settle(call_id=call_id, birth=fields.get("birth", ""))
        _national_start(check)
        return _save(check, step=Step.FIELDS)


def _masked_field(name: str, value: str) -> str:
    return mask_id_number(value) if name == "id_number" else value


def _correction_masked(correction: dict[str, Any]) -> dict[str, Any]:
    """A correction as the timeline keeps it: name and address masked like the ID number."""
    mask = {"name": name_mask, "address": address_mask}.get(correction["field"])
    if mask is None:
        return correction
    return {**correction, "from": mask(correction["from"]), "to": mask(correction["to"])}


def identity_national_request(*, call_id: uuid.UUID, teller: User) -> IdentityCheck:
    """Run the national ID check again (after an outage, say)."""
    with transaction.atomic():
        check = _check_for_teller(call_id=call_id, teller=teller)
        _require_consent(check)
        if _step_status(check, Step.FIELDS) != StepStatus.PASSED:
            raise Conflict("Confirm the card's fields first.", "请先核对证件信息。")
        _national_start(check, retry=True)
        return _save(check, step=Step.NATIONAL)


def _business_risk(check: IdentityCheck) -> str:
    key = Call.objects.filter(pk=check.call_id).values_list("business__key", flat=True).first()
    return "high" if key in settings.KYC_HIGH_RISK_BUSINESSES else "low"


def _national_start(check: IdentityCheck, *, retry: bool = False) -> None:
    """Ask the national check about the confirmed fields and the card's photo — exactly the photo
    the front passed with, verified by hash. The step keeps which photo (evidence id, sha256) and
    which card evidence it was run on: the face match is bound to that photo."""
    portrait = _card_portrait(check)
    jpeg = portrait_bytes(check_id=check.id, portrait=portrait) if portrait else None
    basis = _card_basis(check)
    before = check.steps.get(Step.NATIONAL, {})
    same_evidence = before.get("basis") == basis and _sha(before.get("portrait")) == _sha(portrait)
    factors = 3 if portrait else 2
    _step_set(
        check,
        Step.NATIONAL,
        StepStatus.RUNNING,
        detail="Asking the national ID service…",
        detail_zh="正在进行公安联网核查…",
        factors=factors,
        portrait=portrait,
        basis=basis,
    )
    if retry and check.national_check_id and same_evidence:
        national = national_check_retry(check_id=check.national_check_id)
    else:
        national = national_check_start(
            # Missing ones are refused by the national check in words (KycError).
            name=check.fields.get("name", ""),
            id_number=check.fields.get("id_number", ""),
            portrait_jpeg=jpeg,
            business_risk=_business_risk(check),
            call_id=check.call_id,
        )
    check.national_check_id = national.id
    call_event_record(
        call_id=check.call_id,
        kind="kyc_national",
        data={
            "asked": True,
            "factors": factors,
            "national_check": str(national.id),
            "portrait": portrait_named(portrait),
        },
    )


def identity_national_result(*, check_id: uuid.UUID) -> None:
    """Listens to ``events.NationalCheckFinished``: the national check ``check_id`` reached a
    result."""
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
        asked = check.steps.get(Step.NATIONAL, {})
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
            # What it was asked about stays with the answer (the face match binds to it).
            portrait=asked.get("portrait"),
            basis=asked.get("basis"),
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
    if check is None or _result_lapsed(check):
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
    "identity_upload_admit",
    "mask_id_number",
]


# --- kiosk peripherals ------------------------------------------------------------------------


def peripheral_report(
    *, call_id: uuid.UUID, device: str, event: str, data: dict[str, Any], actor: str = "customer"
) -> None:
    """A VTM peripheral reported: on the call's timeline and the teller's console; the ID-card
    reader's chip goes on to the identity check. Whether the sender is a kiosk is the
    transport's check (``signaling.access.access_kiosk_call``); ``actor`` names it."""
    summary = {"device": device, "event": event}
    if device == "id_card_reader" and data.get("fields"):
        summary["id_number"] = mask_id_number(data["fields"].get("id_number", ""))
        summary["name"] = name_mask(data["fields"].get("name", ""))  # in full on the KYC panel
    elif data.get("detail"):
        summary["detail"] = data["detail"][:200]
    with transaction.atomic():
        call = Call.objects.filter(pk=call_id).first()
        if call is None:
            raise NotFound("No such call.", "没有这个通话。")
        call_event_record(call_id=call_id, kind="peripheral", actor=actor, data=summary)
        if call.teller_id:
            notify.forward_on_commit(
                notify.teller_group(call.teller_id),
                "peripheral",
                call_id=str(call_id),
                **summary,
            )
    if device == "id_card_reader" and event == "card_read":
        if not data.get("fields"):
            raise Conflict("The card reader sent no fields.", "读卡器未发送证件信息。")
        photo = None
        if data.get("photo_jpeg_b64"):
            try:
                photo = base64.b64decode(data["photo_jpeg_b64"], validate=True)
            except (binascii.Error, ValueError):
                raise Conflict(
                    "The card reader's photo is not valid base64.",
                    "读卡器发送的照片不是有效的 base64。",
                ) from None
        identity_chip_read(call_id=call_id, fields=data["fields"], photo_jpeg=photo)


def simulated_card_issue(*, photo_jpeg: bytes) -> tuple[dict[str, Any], bytes]:
    """For the kiosk's simulated card reader: a random valid card holder with this face as the
    chip photo (102x126, as a real chip's), registered with the national-ID stub."""
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
