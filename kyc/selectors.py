"""Reads of the identity check: the teller's panel, the customer's progress words."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet

from .liveness import START_PROMPT, WORDS
from .models import STEP_ORDER, CheckStatus, IdentityCheck, IdentityEvidence, Step, StepStatus

if TYPE_CHECKING:
    from .liveness import Challenge
    from .national.models import NationalCheck

PROGRESS_TEXT: dict[str, tuple[str, str]] = {
    StepStatus.PENDING: ("Waiting", "等待中"),
    StepStatus.RUNNING: ("Verifying identity…", "正在核验身份…"),
    StepStatus.PASSED: ("Done", "已完成"),
    StepStatus.FAILED: ("Please try again as the teller asks", "请按柜员提示重试"),
}

STEP_WORDS: dict[str, tuple[str, str]] = {
    Step.CONSENT: ("Consent", "授权同意"),
    Step.CARD_FRONT: ("ID card, front", "身份证人像面"),
    Step.CARD_BACK: ("ID card, back", "身份证国徽面"),
    Step.FIELDS: ("Fields checked by the teller", "柜员核对信息"),
    Step.FACE_MATCH: ("Face match", "人脸比对"),
    Step.LIVENESS: ("Liveness", "活体检测"),
    Step.NATIONAL: ("National ID check", "公安联网核查"),
}

# The fields a checksum cannot vouch for: the panel makes the teller look at them.
NEEDS_EYES = ("name", "address")


def identity_panel(check: IdentityCheck) -> dict[str, Any]:
    """Everything the teller's KYC panel shows. The teller is the one person who must see the
    full ID number (to compare it with the card); logs and the timeline only get it masked."""
    steps = []
    for step in STEP_ORDER:
        entry = dict(check.steps.get(step, {"status": StepStatus.PENDING}))
        en, zh = STEP_WORDS[step]
        steps.append({"step": step, "label": {"en": en, "zh": zh}, **entry})
    return {
        "check_id": str(check.id),
        "status": check.status,
        "level": check.level,
        "source": check.source,
        "steps": steps,
        "fields_read": check.fields_read,
        "fields": check.fields,
        "needs_review": list(NEEDS_EYES),
        "corrections": check.corrections,
        "face_distance": check.face_distance,
        "liveness": check.liveness_challenge,
        "consent_at": check.consent_at.isoformat() if check.consent_at else None,
        "geolocation": check.geolocation,
        "passed_at": check.passed_at.isoformat() if check.passed_at else None,
        "expires_at": check.expires_at.isoformat() if check.expires_at else None,
    }


def identity_progress(check: IdentityCheck, *, step: str | None = None) -> dict[str, Any]:
    """What the customer's page says: which step, how it is going — no fields, no scores."""
    step = step or next(
        (s for s in STEP_ORDER if check.steps.get(s, {}).get("status") != StepStatus.PASSED),
        Step.NATIONAL,
    )
    status = check.steps.get(step, {}).get("status", StepStatus.PENDING)
    en, zh = STEP_WORDS[step]
    state_en, state_zh = PROGRESS_TEXT[status]
    if check.status == CheckStatus.PASSED:
        text = {"en": "Identity verified.", "zh": "身份核验通过。"}
    elif check.status == CheckStatus.REFUSED:
        text = {"en": "You declined the identity check.", "zh": "您已拒绝身份核验。"}
    else:
        text = {"en": f"{en}: {state_en}", "zh": f"{zh}：{state_zh}"}
        if status == StepStatus.FAILED:
            detail = check.steps.get(step, {})
            if detail.get("customer_detail"):
                text = {
                    "en": f"{en}: {detail['customer_detail']}",
                    "zh": f"{zh}：{detail.get('customer_detail_zh') or detail['customer_detail']}",
                }
    done = sum(1 for s in STEP_ORDER if check.steps.get(s, {}).get("status") == StepStatus.PASSED)
    return {
        "step": step,
        "status": status,
        "overall": check.status,
        "done": done,
        "total": len(STEP_ORDER),
        "text": text,
    }


MOVE_MS = 1500  # how long the customer is asked to hold a move
BACK_MS = 1200  # then to face the camera again (the check needs neutral between moves)


def liveness_steps(challenge: Challenge) -> list[dict[str, Any]]:
    """The challenge as the customer's page plays it: each move, then back to neutral."""
    steps = []
    for step in challenge.steps:
        en, zh = WORDS.get(step.kind, (step.prompt_en, step.prompt_zh))
        steps.append({"kind": step.kind, "prompt": {"en": en, "zh": zh}, "duration_ms": MOVE_MS})
        steps.append(
            {
                "kind": "neutral",
                "prompt": {"en": START_PROMPT[0], "zh": START_PROMPT[1]},
                "duration_ms": BACK_MS,
            }
        )
    return steps


def national_words(national: NationalCheck) -> tuple[str, str]:
    """The national check's result in words (the client fills them for every final state)."""
    en = national.detail or "The national ID check did not pass."
    zh = national.detail_zh or en
    if national.from_cache:
        en += " (a pass from earlier, reused for a low-risk business)"
        zh += "（复用此前的核查结果，仅限低风险业务）"
    return en, zh


def identity_evidence_for_call(*, call_id: uuid.UUID) -> QuerySet[IdentityEvidence]:
    """The call's identity-check pictures, oldest first (sealed with the call recording's key;
    the QA console lists them through recordings/evidence.py)."""
    return (
        IdentityEvidence.objects.filter(identity_check__call_id=call_id)
        .select_related("identity_check")
        .order_by("captured_at")
    )


def identity_evidence_get(*, call_id: uuid.UUID, evidence_id: uuid.UUID) -> IdentityEvidence | None:
    return identity_evidence_for_call(call_id=call_id).filter(pk=evidence_id).first()
