"""Quality review of a recorded call: the reviewer's checklist, score, verdict and timed notes,
and the process checks the timeline itself can answer.

The checklist is what a reviewer judges by watching (greeting, explanations, privacy...). The
process checks are what the call's timeline proves or disproves without watching: identity
verified before a business started, the agreement read before the customer confirmed, the
customer's confirmation before the PIN, the PIN before the core-bank submission, every PIN span
closed. They are shown to the reviewer as findings to look at, not as the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import models, transaction

from queueing.models import Offer, OfferStatus
from recordings.models import QaNote, QaReview, Recording, ReviewKind, Verdict
from videobank.errors import Forbidden, Invalid

if TYPE_CHECKING:
    from django.contrib.auth.models import User

ANSWERS = ("yes", "no", "na")
NOTE_MAX = 500
COMMENT_MAX = 2000
NOTE_MARGIN_MS = 60_000  # a note may sit a little before or after the recorded media


@dataclass(frozen=True)
class Item:
    key: str
    zh: str
    en: str


CHECKLIST: tuple[Item, ...] = (
    Item(
        "greeting",
        "柜员规范问候，并告知客户全程录音录像",
        "The teller greeted the customer and said the call is recorded",
    ),
    Item(
        "identity",
        "办理业务前已核实客户身份（证件、人脸、联网核查）",
        "Identity verified before any business (card, face, national check)",
    ),
    Item(
        "explained",
        "用通俗语言讲清业务内容与风险",
        "The business and its risks explained in plain words",
    ),
    Item(
        "confirmed",
        "客户本人阅读协议并在自己屏幕上确认",
        "The customer read the agreement and confirmed on their own screen",
    ),
    Item(
        "privacy",
        "未口述或展示密码、验证码、完整证件号",
        "No PIN, code or full ID number said aloud or shown",
    ),
    Item(
        "closing",
        "柜员总结办理结果并规范结束通话",
        "The teller summed up the result and closed the call properly",
    ),
)
CHECKLIST_KEYS = tuple(item.key for item in CHECKLIST)


class ReviewInvalid(Invalid):
    """The review or note cannot be saved; the words say what to fix (400)."""


class ReviewRefused(Forbidden):
    """This person may not write this review or note; the words say why (403). Nothing is
    stored."""


def _own_call() -> ReviewRefused:
    return ReviewRefused(
        "You served this call as its teller: someone else must review it.",
        "您是本通话的柜员，不能评定自己的通话，请由其他质检员评定。",
    )


def _fail_stands() -> ReviewRefused:
    return ReviewRefused(
        "The latest review of this call is a fail: only a supervisor's override, with a reason, "
        "can change it.",
        "本通话最近一次评定为不合格：只有主管填写理由后改判才能更改。",
    )


def call_served_by(*, recording: Recording, user) -> bool:
    """Did ``user`` serve this recording's call as a teller (its teller now, or one who
    accepted it before a drop or a move)?"""
    call = recording.call
    if call.teller_id == user.pk:
        return True
    return Offer.objects.filter(
        call_id=call.pk,
        teller_id=user.pk,
        status__in=(OfferStatus.ACCEPTED, OfferStatus.DROPPED),
    ).exists()


def review_latest(*, recording: Recording) -> QaReview | None:
    """The call's current judgement: its newest review or override."""
    return QaReview.objects.filter(recording=recording).order_by("-created_at", "-id").first()


def _lock(recording: Recording) -> None:
    # One judgement at a time per recording: the "latest is a fail" rule reads what it guards.
    Recording.objects.select_for_update().filter(pk=recording.pk).first()


def review_score(checklist: dict[str, str]) -> int | None:
    """Percentage of the applicable items met; None when none applies."""
    applicable = [answer for answer in checklist.values() if answer != "na"]
    if not applicable:
        return None
    return round(100 * applicable.count("yes") / len(applicable))


def review_submit(
    *, recording: Recording, reviewer: User, checklist: Any, verdict: Any, comment: Any
) -> QaReview:
    """A reviewer's judgement (a new row). Refused for the call's own teller, and for anyone
    while the call's latest judgement is a fail (that takes a supervisor's override)."""
    with transaction.atomic():
        _lock(recording)
        if call_served_by(recording=recording, user=reviewer):
            raise _own_call()
        latest = review_latest(recording=recording)
        if latest is not None and latest.verdict == Verdict.FAIL:
            raise _fail_stands()
        return _review_create(
            recording=recording,
            reviewer=reviewer,
            checklist=checklist,
            verdict=verdict,
            comment=comment,
        )


def _review_create(
    *, recording: Recording, reviewer: User, checklist: Any, verdict: Any, comment: Any
) -> QaReview:
    # checklist, verdict, comment: the reviewer's JSON as it came, checked here.
    if not isinstance(checklist, dict) or set(checklist) != set(CHECKLIST_KEYS):
        raise ReviewInvalid(
            "Answer every checklist item (yes, no or not applicable).",
            "请回答每一项检查（是、否或不适用）。",
        )
    if any(answer not in ANSWERS for answer in checklist.values()):
        raise ReviewInvalid(
            "Each checklist answer must be yes, no or not applicable.",
            "每项检查的回答只能是是、否或不适用。",
        )
    if verdict not in Verdict.values:
        raise ReviewInvalid(
            "Choose a verdict: pass, pass with coaching or fail.",
            "请选择评定结果：合格、合格需辅导或不合格。",
        )
    comment = (comment or "").strip() if isinstance(comment, str) else None
    if comment is None or len(comment) > COMMENT_MAX:
        raise ReviewInvalid(
            f"The comment must be text of at most {COMMENT_MAX} characters.",
            f"评语须为文字，最多 {COMMENT_MAX} 个字符。",
        )
    if verdict != Verdict.PASS and not comment:
        raise ReviewInvalid(
            "Say in the comment why the call did not simply pass.",
            "评定不是合格时，请在评语中说明原因。",
        )
    return QaReview.objects.create(
        recording=recording,
        reviewer=reviewer,
        checklist={key: checklist[key] for key in CHECKLIST_KEYS},
        score=review_score(checklist),
        verdict=verdict,
        comment=comment,
    )


def review_override(
    *, recording: Recording, supervisor: User, review_id: Any, verdict: Any, reason: Any
) -> QaReview:
    """A supervisor changes the call's failed judgement: a new row of kind ``override`` linked
    to the failed review, with the reason; the failed review stays. The caller has checked that
    ``supervisor`` is one (``videobank.access.access_supervisor``)."""
    if isinstance(review_id, bool) or not isinstance(review_id, int):
        raise ReviewInvalid(
            "Say which review is overridden (its number).", "请指明要改判的评定（其编号）。"
        )
    if verdict not in (Verdict.PASS, Verdict.COACHING):
        raise ReviewInvalid(
            "An override changes a fail: choose pass or pass with coaching.",
            "改判只针对不合格的评定：请选择合格或合格需辅导。",
        )
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason or len(reason) > COMMENT_MAX:
        raise ReviewInvalid(
            f"Give the reason for the override (1 to {COMMENT_MAX} characters).",
            f"请填写改判理由（1 至 {COMMENT_MAX} 个字符）。",
        )
    with transaction.atomic():
        _lock(recording)
        if call_served_by(recording=recording, user=supervisor):
            raise _own_call()
        failed = QaReview.objects.filter(recording=recording, pk=review_id).first()
        if failed is None:
            raise ReviewInvalid("There is no such review of this call.", "本通话没有这条评定。")
        if failed.verdict != Verdict.FAIL:
            raise ReviewInvalid("Only a failed review is overridden.", "只有不合格的评定可以改判。")
        latest = review_latest(recording=recording)
        if latest is not None and latest.pk != failed.pk:
            raise ReviewInvalid(
                "That review is no longer the call's latest judgement.",
                "该评定已不是本通话最新的评定结果。",
            )
        return QaReview.objects.create(
            recording=recording,
            reviewer=supervisor,
            kind=ReviewKind.OVERRIDE,
            overrides=failed,
            checklist=failed.checklist,
            score=failed.score,
            verdict=verdict,
            comment=reason,
        )


def note_add(*, recording: Recording, author, at_ms, text, media_ms: int | None) -> QaNote:
    if isinstance(at_ms, bool) or not isinstance(at_ms, int):
        raise ReviewInvalid(
            "The note's time must be a whole number of milliseconds.",
            "备注的时间点须为整数毫秒。",
        )
    upper = (media_ms or 0) + NOTE_MARGIN_MS
    if not -NOTE_MARGIN_MS <= at_ms <= upper:
        raise ReviewInvalid(
            "The note's time is outside the recording.", "备注的时间点不在录像范围内。"
        )
    text = text.strip() if isinstance(text, str) else ""
    if not text or len(text) > NOTE_MAX:
        raise ReviewInvalid(
            f"Write the note (1 to {NOTE_MAX} characters).",
            f"请填写备注（1 至 {NOTE_MAX} 个字符）。",
        )
    if call_served_by(recording=recording, user=author):
        raise _own_call()
    return QaNote.objects.create(recording=recording, author=author, at_ms=at_ms, text=text)


def review_json(review: QaReview) -> dict:
    return {
        "id": review.pk,
        "kind": review.kind,
        "overrides": review.overrides_id,
        "reviewer": review.reviewer.get_username(),
        "verdict": review.verdict,
        "score": review.score,
        "checklist": review.checklist,
        "comment": review.comment,
        "at": review.created_at.isoformat(),
    }


def review_panel(*, recording: Recording, viewer, may_override: bool) -> dict:
    """What the replay page shows besides the media: reviews and overrides (newest first),
    notes (by time), and what this viewer may do: review (not their own call, not over a
    standing fail) or override the failed latest judgement (a supervisor)."""
    rows = list(
        QaReview.objects.filter(recording=recording)
        .select_related("reviewer")
        .order_by("-created_at", "-id")
    )
    notes = [
        note_json(note)
        for note in QaNote.objects.filter(recording=recording).select_related("author")
    ]
    own = call_served_by(recording=recording, user=viewer)
    failed = rows[0] if rows and rows[0].verdict == Verdict.FAIL else None
    return {
        "reviews": [review_json(review) for review in rows],
        "notes": notes,
        "own_call": own,
        "failed_review": failed.pk if failed else None,
        "may_review": not own and failed is None,
        "may_override": bool(may_override and failed is not None and not own),
        "supervisor": bool(may_override),
    }


def teller_review_feedback(*, teller, limit: int = 100) -> list[dict]:
    """The reviews of a teller's own calls, newest first, as feedback: the review, its call, the
    checklist items answered "no", and the reviewers' notes (times as m:ss)."""
    labels = {item.key: item for item in CHECKLIST}
    notes = QaNote.objects.filter(at_ms__gte=0).order_by("at_ms", "id")
    reviews = (
        QaReview.objects.filter(recording__call__teller=teller)
        .select_related("recording", "recording__call", "recording__call__business")
        .prefetch_related(models.Prefetch("recording__notes", queryset=notes))
        .order_by("-created_at", "-id")[:limit]
    )
    rows = []
    for review in reviews:
        rows.append(
            {
                "review": review,
                "call": review.recording.call,
                "missed": [
                    labels[key]
                    for key, answer in review.checklist.items()
                    if answer == "no" and key in labels
                ],
                "notes": [
                    {"at": f"{n.at_ms // 60000}:{n.at_ms // 1000 % 60:02d}", "text": n.text}
                    for n in review.recording.notes.all()
                ],
            }
        )
    return rows


# What a reviewer is shown of a picture's findings: what the checks measured, never the
# fields read off the card.
EVIDENCE_META_SHOWN = ("distance", "problem", "t_ms")


def evidence_shown(item) -> dict:
    """One identity-check picture as the replay page lists it (the page adds its link)."""
    return {
        "id": str(item.id),
        "kind": item.kind,
        "source": item.source,
        "offset_ms": item.offset_ms,
        "meta": {k: item.meta[k] for k in EVIDENCE_META_SHOWN if k in item.meta},
    }


def note_json(note: QaNote) -> dict:
    return {
        "id": note.pk,
        "author": note.author.get_username(),
        "at_ms": note.at_ms,
        "text": note.text,
        "at": note.created_at.isoformat(),
    }


# --- process checks from the timeline ------------------------------------------------------------


def process_checks(timeline: list[dict]) -> list[dict]:
    """Per business of the call, what its timeline shows about the required order of steps.

    Each finding: ``{"case", "business", "key", "ok", "offset_ms"}`` where ``offset_ms`` points at
    the event to look at. Only steps that happened are judged (a business cancelled before its
    agreement is not faulted for the missing confirmation)."""
    identity_passed_at = None
    for event in timeline:
        if event["kind"] == "kyc_result" and (event.get("data") or {}).get("passed"):
            identity_passed_at = event["offset_ms"]
            break
    cases: dict[str, list[dict]] = {}
    for event in timeline:
        data = event.get("data") or {}
        if event["kind"] == "business" and data.get("case"):
            cases.setdefault(data["case"], []).append(event)
    findings: list[dict] = []
    for case_id, events in cases.items():
        findings += _case_findings(case_id, events, identity_passed_at)
    return findings


def _case_findings(case_id: str, events: list[dict], identity_passed_at: int | None) -> list[dict]:
    findings: list[dict] = []
    business = (events[0].get("data") or {}).get("business", "")

    def first(step: str, **match):
        for event in events:
            data = event.get("data") or {}
            if data.get("step") == step and all(data.get(k) == v for k, v in match.items()):
                return event
        return None

    def finding(key: str, ok: bool, event) -> None:
        findings.append(
            {
                "case": case_id,
                "business": business,
                "key": key,
                "ok": ok,
                "offset_ms": event["offset_ms"] if event else None,
            }
        )

    start = first("start")
    if start is not None:
        level = (start.get("data") or {}).get("identity_level")
        verified = level not in (None, "", "none") or (
            identity_passed_at is not None and identity_passed_at <= start["offset_ms"]
        )
        finding("identity_before_business", verified, start)
    confirm = first("confirm", accepted=True)
    if confirm is not None:
        sent = first("agreement_sent")
        read = first("agreement_read")
        if sent is not None:
            finding(
                "agreement_read_before_confirm",
                read is not None and read["offset_ms"] <= confirm["offset_ms"],
                read or confirm,
            )
    authorised = first("authorise", ok=True)
    if authorised is not None:
        finding(
            "confirm_before_pin",
            confirm is not None and confirm["offset_ms"] <= authorised["offset_ms"],
            authorised,
        )
    submitted = first("submitted")
    if submitted is not None:
        if first("pin_requested") is not None:  # the business asks a PIN or a one-time code
            finding(
                "pin_before_submission",
                authorised is not None and authorised["offset_ms"] <= submitted["offset_ms"],
                submitted,
            )
        else:  # the on-screen confirmation is the customer's consent
            finding(
                "confirm_before_submission",
                confirm is not None and confirm["offset_ms"] <= submitted["offset_ms"],
                submitted,
            )
    spans = [e for e in events if (e.get("data") or {}).get("masked") in ("start", "end")]
    if spans:
        # Every span the PIN pad opened was closed (authorised, locked out) by the end.
        finding("pin_span_closed", spans[-1]["data"]["masked"] == "end", spans[-1])
    return findings
