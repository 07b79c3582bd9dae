"""Background analysis of identity evidence: OCR of the card, face match, liveness.

Each takes a second or two of CPU, so it never runs on a server's event loop or its database
thread: in production it is a Celery task on the workers; on the embedded profile (Celery
eager) it runs on one background thread of the process — like a single worker, one at a time.
"""

from __future__ import annotations

import io
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from celery import shared_task
from django.conf import settings
from django.db import OperationalError, close_old_connections
from PIL import Image

from .errors import KycError
from .faces import card_min_size_px, face_find_one, face_match
from .liveness import Challenge, liveness_verify
from .models import IdentityCheck, Step
from .ocr import id_card_read_back, id_card_read_front, image_sharpness
from .services import evidence_for_analysis, identity_step_result, portrait_bytes, portrait_words

log = logging.getLogger(__name__)

_embedded = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kyc-analysis")


def identity_analyse_dispatch(check_id: str, purpose: str, evidence_ids: list[str]) -> None:
    """Queue the analysis (called on commit of the evidence)."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        _embedded.submit(_run_embedded, check_id, purpose, evidence_ids)
    else:
        identity_analyse_task.delay(check_id, purpose, evidence_ids)


def _run_embedded(check_id: str, purpose: str, evidence_ids: list[str]) -> None:
    close_old_connections()
    try:
        identity_analyse(check_id=uuid.UUID(check_id), purpose=purpose, evidence_ids=evidence_ids)
    except Exception:
        log.exception("identity analysis %s of %s failed", purpose, check_id)
    finally:
        close_old_connections()


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def identity_analyse_task(check_id: str, purpose: str, evidence_ids: list[str]) -> None:
    identity_analyse(check_id=uuid.UUID(check_id), purpose=purpose, evidence_ids=evidence_ids)


def _array(jpeg: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(jpeg)) as image:
        return np.asarray(image.convert("RGB"))


def identity_analyse(*, check_id: uuid.UUID, purpose: str, evidence_ids: list[str]) -> None:
    """Analyse the evidence of one grab or upload and record the step's result. Never raises
    for a bad picture: the step fails with the reason in words and the teller retries."""
    items = sorted(evidence_for_analysis(evidence_ids=evidence_ids), key=lambda x: x[0].captured_at)
    try:
        if purpose in (Step.CARD_FRONT, Step.CARD_BACK):
            outcome = _analyse_card(purpose, items)
        elif purpose == Step.FACE_MATCH:
            outcome = _analyse_face(check_id, items)
        elif purpose == Step.LIVENESS:
            outcome = _analyse_liveness(check_id, items)
        else:
            raise ValueError(f"unknown purpose {purpose!r}")
    except KycError as exc:  # upside down, blurred, no card, no face...: the customer can fix it
        outcome = {
            "passed": False,
            "detail": exc.detail,
            "detail_zh": exc.detail_zh,
            "data": {
                "code": exc.code,
                "customer_detail": exc.detail,
                "customer_detail_zh": exc.detail_zh,
            },
        }
    identity_step_result(check_id=check_id, step=purpose, evidence_ids=evidence_ids, **outcome)


def _analyse_card(purpose: str, items) -> dict:
    """Read the sharpest of the grabbed frames; the front also yields the card's portrait."""
    arrays = [(evidence, _array(jpeg)) for evidence, jpeg in items]
    evidence, array = max(arrays, key=lambda pair: image_sharpness(pair[1]))
    read = id_card_read_front if purpose == Step.CARD_FRONT else id_card_read_back
    result = read(Image.fromarray(array))
    side = "front" if purpose == Step.CARD_FRONT else "back"
    fields_read = {side: result["fields"], f"{side}_checks": result["checks"]}
    data = {
        "code": "read" if result["ok"] else "problems",
        "evidence": str(evidence.id),
        "confidence": result.get("confidence", {}),
        "needs_review": result.get("needs_review", []),
        "seconds": result.get("seconds"),
    }
    problems = result.get("problems") or []
    blocking = [
        p
        for p in problems
        if p.get("code") == "blurred"
        or (p.get("code") == "field_missing" and p.get("field") in ("id_number", "validity"))
    ]
    if blocking:  # the picture does not give what the check rests on: capture again
        first = blocking[0]
        return {
            "passed": False,
            "detail": first["detail"],
            "detail_zh": first.get("detail_zh") or first["detail"],
            "data": {
                **data,
                "code": first.get("code", "unreadable"),
                "customer_detail": first["detail"],
                "customer_detail_zh": first.get("detail_zh") or first["detail"],
            },
            "fields_read": fields_read,
        }
    # Rules that fail and fields read with doubt are shown; the teller corrects them when
    # confirming the fields (where every rule must pass).
    notes = [c for c in result["checks"] if not c["passed"]] + problems
    outcome = {
        "passed": True,
        "detail": "Read. " + (" ".join(c["detail"] for c in notes) or "All card rules passed."),
        "detail_zh": "已识别。"
        + (" ".join(c.get("detail_zh") or c["detail"] for c in notes) or "证件规则校验全部通过。"),
        "data": data,
        "fields_read": fields_read,
    }
    if purpose == Step.CARD_FRONT:
        portrait = _portrait(array)
        if portrait is None:
            return {
                **outcome,
                "passed": False,
                "detail": "The card's photo could not be found; hold the front of the card "
                "flat and close to the camera, then capture again.",
                "detail_zh": "未能找到证件上的照片，请将证件人像面平放并靠近摄像头后重新截取。",
                "data": {**data, "code": "no_portrait"},
            }
        outcome["portrait_jpeg"] = portrait
    return outcome


def _portrait(card: np.ndarray) -> bytes | None:
    """The card's photo, cropped with a margin, as JPEG (the face the live video must match)."""
    try:
        found = face_find_one(card, ghost_ok=True, min_size=card_min_size_px())
    except KycError:
        return None
    box = found.box
    margin_x, margin_y = box.width // 2, box.height // 2
    height, width = card.shape[:2]
    crop = card[
        max(0, box.top - margin_y) : min(height, box.bottom + margin_y),
        max(0, box.left - margin_x) : min(width, box.right + margin_x),
    ]
    out = io.BytesIO()
    Image.fromarray(crop).save(out, format="JPEG", quality=95)
    return out.getvalue()


def _bound_portrait(check_id: uuid.UUID) -> tuple[dict, np.ndarray]:
    """The photo this face match is bound to (the one the national check was run with, named on
    the step when the frames were taken), opened and verified by its hash — never merely the
    newest photo on file."""
    steps = IdentityCheck.objects.values_list("steps", flat=True).get(pk=check_id)
    portrait = steps.get(Step.FACE_MATCH, {}).get("portrait")
    if not portrait:
        raise KycError(
            "There is no card photo to compare with; capture the card front first.",
            detail_zh="没有可比对的证件照片，请先截取证件人像面。",
            code="no_portrait",
        )
    return portrait, _array(portrait_bytes(check_id=check_id, portrait=portrait))


def _analyse_face(check_id: uuid.UUID, items) -> dict:
    portrait, card = _bound_portrait(check_id)
    result = face_match(card=card, frames=[_array(jpeg) for _, jpeg in items])
    which_en, which_zh = portrait_words(portrait)
    meta = {
        str(evidence.id): {
            **evidence.meta,
            "distance": distance,
            "problem": problem["code"] if problem else None,
        }
        for (evidence, _), distance, problem in zip(
            items, result.distances, result.problems, strict=True
        )
    }
    return {
        "passed": result.decision,
        "detail": f"{result.reason} {which_en}",
        "detail_zh": f"{result.reason_zh}{which_zh}",
        "data": {
            "portrait": portrait,
            "code": result.reason_code,
            "distances": result.distances,
            "threshold": result.threshold,
            "usable_frames": result.usable_frames,
            "median_distance": result.median_distance,
            "seconds": result.seconds,
            "evidence": list(meta),
            "customer_detail": None if result.decision else result.reason,
            "customer_detail_zh": None if result.decision else result.reason_zh,
        },
        "evidence_meta": meta,
        "face_distance": result.median_distance,
    }


def _analyse_liveness(check_id: uuid.UUID, items) -> dict:
    stored = IdentityCheck.objects.values_list("liveness_challenge", flat=True).get(pk=check_id)
    if stored is None:
        raise KycError(
            "There is no liveness challenge to check these frames against; start it again.",
            detail_zh="没有可据以核对这些画面的活体动作，请重新开始活体检测。",
            code="no_challenge",
        )
    challenge = Challenge.from_dict(stored)
    # Seconds since sampling began: the neutral lead-in first, then the moves in order.
    frames = [(evidence.meta.get("t_ms", 0) / 1000, _array(jpeg)) for evidence, jpeg in items]
    result = liveness_verify(challenge=challenge, frames=frames)
    # The outcome's code, for whoever looks into a failed check (no face data, no ID).
    log.info(
        "identity check %s: liveness %s (%s) on %d frames in %.2f s",
        check_id,
        "passed" if result.passed else "failed",
        result.reason_code,
        len(frames),
        result.seconds,
    )
    return {
        "passed": result.passed,
        "detail": result.detail,
        "detail_zh": result.detail_zh,
        "data": {
            "code": result.reason_code,
            "evidence": [str(evidence.id) for evidence, _ in items],
            "customer_detail": None if result.passed else result.detail,
            "customer_detail_zh": None if result.passed else result.detail_zh,
        },
    }
